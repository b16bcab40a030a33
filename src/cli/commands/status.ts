/**
 * `mailmule status`: the daemon, the last and next uplink run (with what each account could not do in it), the
 * queue, failing accounts, and what the uplink cost today and this month per account.
 */
import type { Command } from 'commander';
import type { LoadedConfig } from '../../config';
import { kb, withConfigOption, withStore, type ConfigOption } from '../common';

interface DaemonStatus {
    running?: boolean;
    nextRun?: string | null;
    pid?: number;
}

/** The daemon's own answer over the control socket, or null when none runs (or it does not answer). */
async function askDaemon(config: LoadedConfig): Promise<DaemonStatus | null> {
    // The control socket's client alone (the CLI's way to the daemon, docs/architecture.md), not the uplink's
    // runner and the queue behind it: this command never runs the uplink.
    const { controlSocketPath, requestDaemon } = await import('../../uplink/control');
    let status: DaemonStatus | null = null;
    await requestDaemon(controlSocketPath(config.paths.dataDir), { command: 'status' }, (message: DaemonStatus & { type?: string }) => {
        if (message.type === 'status') status = message;
    }).catch(() => false);
    return status;
}

/** When the schedule in the config fires next; what the daemon would say, computed here when it is not running. */
async function nextScheduledRun(config: LoadedConfig): Promise<string | null> {
    if (!config.gateway.uplink.schedule.length) return null;
    const { default: cron } = await import('node-cron');
    const runs: Date[] = [];
    for (const expression of config.gateway.uplink.schedule) {
        const task = cron.createTask(expression, () => undefined);
        const at = task.getNextRun();
        // Synchronous for an in-process task; node-cron's type allows a promise (forked tasks).
        await task.destroy();
        if (at instanceof Date) runs.push(at);
    }
    const next = runs.sort((a, b) => a.getTime() - b.getTime())[0];
    return next?.toISOString() ?? null;
}

export function registerStatus(program: Command): void {
    withConfigOption(program.command('status'))
        .description('last uplink run, next scheduled run, queue size, and bytes spent today and this month per account')
        .option('--json', 'print JSON')
        .action((options: ConfigOption & { json?: boolean }) =>
            withStore(options, async (store, config) => {
                const daemon = await askDaemon(config);
                const now = new Date();
                const day = new Date(now.getFullYear(), now.getMonth(), now.getDate()).getTime();
                const month = new Date(now.getFullYear(), now.getMonth(), 1).getTime();
                const status = {
                    daemon: daemon ? { running: true, pid: daemon.pid ?? null, uplinkRunning: Boolean(daemon.running) } : { running: false },
                    lastRun: store.runs.last(),
                    nextRun: daemon?.nextRun ?? (await nextScheduledRun(config)),
                    queue: store.queue.counts(),
                    // Accounts whose provider refuses the login: failing until a login succeeds.
                    failingAccounts: store.accountProblems.list(),
                    // Messages the store refuses (too complex), left on the provider; a note in their folder stands in for each.
                    leftUpstream: store.sync.leftUpstream(),
                    bytesToday: store.runs.bytesSince(day),
                    bytesThisMonth: store.runs.bytesSince(month)
                };
                if (options.json) {
                    console.log(JSON.stringify(status, null, 2));
                    return;
                }
                console.log(`daemon:    ${daemon ? `running (pid ${daemon.pid})` : 'not running'}`);
                const last = status.lastRun;
                console.log(`last run:  ${last ? `${new Date(last.startedAt).toISOString()} ${last.status}${last.message ? ` (${last.message})` : ''}, ${last.trigger}` : 'never'}`);
                console.log(`next run:  ${status.nextRun ?? 'not scheduled'}`);
                console.log(
                    `queue:     ${Object.entries(status.queue)
                        .map(([state, n]) => `${n} ${state}`)
                        .join(', ')}`
                );
                for (const problem of status.failingAccounts) {
                    console.log(`${problem.account}: FAILING since ${new Date(problem.since).toISOString()}: ${problem.error}`);
                }
                for (const left of status.leftUpstream) {
                    console.log(`${left.account}: ${left.messages} message(s) left on the provider, too complex to store here; a note in their folder stands in for each`);
                }
                // What the last run could not do, in its words (an upstream folder not found, …).
                for (const account of last?.accounts ?? []) {
                    for (const error of account.errors) console.log(`${account.account}: ${error}`);
                }
                const accounts = new Set([...status.bytesToday, ...status.bytesThisMonth].map(row => row.account));
                for (const account of accounts) {
                    const today = status.bytesToday.find(row => row.account === account);
                    const monthRow = status.bytesThisMonth.find(row => row.account === account);
                    console.log(`${account}: today ${kb((today?.bytesSent ?? 0) + (today?.bytesReceived ?? 0))}, this month ${kb((monthRow?.bytesSent ?? 0) + (monthRow?.bytesReceived ?? 0))}`);
                }
            })
        );
}
