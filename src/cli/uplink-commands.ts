/**
 * `mailmule sync` and `mailmule status`.
 *
 * sync asks the running daemon (over its control socket) to start a run and shows its
 * progress; with no daemon running it runs the uplink itself. One run at a time either way.
 */
import type { Command } from 'commander';
import cron from 'node-cron';
import type { LoadedConfig } from '../config';
import type { Store } from '../store';
import { createLogger } from '../log';
import { controlSocketPath, createUplinkRunner, requestDaemon, RunInProgressError, type ProgressSnapshot, type RunReport } from '../uplink';

export interface UplinkCommandDeps {
    load(options: { config?: string }): LoadedConfig;
    openStore(config: LoadedConfig): Store;
    withConfigOption(command: Command): Command;
}

/** Exit codes of `mailmule sync` beyond the common ones. */
export const SYNC_EXIT = { SKIPPED: 4, BUSY: 5 } as const;

function kb(bytes: number): string {
    return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(2)} MB` : `${(bytes / 1024).toFixed(1)} KB`;
}

function printReport(report: RunReport): void {
    for (const account of report.accounts) {
        console.log(
            `${account.account}: sent ${account.messagesSent} msg, received ${account.messagesReceived} msg; ${kb(account.bytesSent)} up, ${kb(account.bytesReceived)} down, ${(account.durationMs / 1000).toFixed(1)} s`
        );
        for (const error of account.errors) console.log(`  error: ${error}`);
    }
    for (const line of report.waiting) console.log(`waiting: ${line}`);
    console.log(`run ${report.runId ?? '-'}: ${report.status}${report.message ? ` (${report.message})` : ''}; ${kb(report.bytesTotal)} on the wire`);
}

export function registerUplinkCommands(program: Command, deps: UplinkCommandDeps): void {
    deps.withConfigOption(program.command('sync'))
        .description('run the uplink now: send the queue, then bring new mail home (through the daemon when it runs)')
        .option('--user <name>', 'only this local user')
        .option('--account <address>', 'only this upstream account (address or name)')
        .option('--send-only', 'only send the queue')
        .option('--receive-only', 'only download')
        .action(async (options: { config?: string; user?: string; account?: string; sendOnly?: boolean; receiveOnly?: boolean }) => {
            const config = deps.load(options);
            const runOptions = { user: options.user, account: options.account, sendOnly: options.sendOnly, receiveOnly: options.receiveOnly };
            const live = process.stdout.isTTY;
            const showProgress = (p: ProgressSnapshot) => {
                if (!live) return;
                process.stdout.write(`\r${p.account} [${p.phase}] sent ${p.messagesSent}, received ${p.messagesReceived}; ${kb(p.bytesSent)} up, ${kb(p.bytesReceived)} down   `);
            };
            let report: RunReport | null = null;
            let failure: string | null = null;
            const viaDaemon = await requestDaemon(controlSocketPath(config.paths.dataDir), { command: 'sync', options: runOptions }, message => {
                if (message.type === 'progress') showProgress(message);
                else if (message.type === 'done') report = message.report;
                else if (message.type === 'error') failure = message.message;
            });
            if (!viaDaemon) {
                const store = deps.openStore(config);
                try {
                    store.recover();
                    const runner = createUplinkRunner(store, createLogger(config.gateway.log.level === 'info' ? 'warn' : config.gateway.log.level, process.stderr as never), () => config);
                    report = await runner.run({ trigger: 'mailmule sync (standalone)', ...runOptions, onProgress: showProgress });
                } catch (err) {
                    failure = (err as Error).message;
                    if (err instanceof RunInProgressError) process.exitCode = SYNC_EXIT.BUSY;
                } finally {
                    store.close();
                }
            }
            if (live) process.stdout.write('\n');
            if (failure) {
                process.stderr.write(`mailmule: ${failure}\n`);
                if (!process.exitCode) process.exitCode = /already in progress/.test(failure) ? SYNC_EXIT.BUSY : 1;
                return;
            }
            const final = report as RunReport | null;
            if (!final) {
                process.stderr.write('mailmule: the daemon closed the connection without a result\n');
                process.exitCode = 1;
                return;
            }
            printReport(final);
            process.exitCode = final.status === 'failed' ? 1 : final.status === 'skipped' ? SYNC_EXIT.SKIPPED : 0;
        });

    deps.withConfigOption(program.command('status'))
        .description('last uplink run, next scheduled run, queue size, and bytes spent today and this month per account')
        .option('--json', 'print JSON')
        .action(async (options: { config?: string; json?: boolean }) => {
            const config = deps.load(options);
            let daemon: { running?: boolean; nextRun?: string | null; pid?: number } | null = null;
            await requestDaemon(controlSocketPath(config.paths.dataDir), { command: 'status' }, message => {
                if (message.type === 'status') daemon = message;
            }).catch(() => false);
            const store = deps.openStore(config);
            try {
                const now = new Date();
                const day = new Date(now.getFullYear(), now.getMonth(), now.getDate()).getTime();
                const month = new Date(now.getFullYear(), now.getMonth(), 1).getTime();
                const next =
                    (daemon as { nextRun?: string | null } | null)?.nextRun ??
                    config.gateway.uplink.schedule
                        .map(expression => {
                            const task = cron.createTask(expression, () => undefined);
                            const at = task.getNextRun();
                            task.destroy();
                            return at;
                        })
                        .filter((d): d is Date => d instanceof Date)
                        .sort((a, b) => a.getTime() - b.getTime())[0]
                        ?.toISOString() ??
                    null;
                const status = {
                    daemon: daemon ? { running: true, pid: (daemon as { pid?: number }).pid ?? null, uplinkRunning: Boolean((daemon as { running?: boolean }).running) } : { running: false },
                    lastRun: store.lastRun(),
                    nextRun: next,
                    queue: store.queueCounts(),
                    bytesToday: store.bytesSince(day),
                    bytesThisMonth: store.bytesSince(month)
                };
                if (options.json) {
                    console.log(JSON.stringify(status, null, 2));
                    return;
                }
                console.log(`daemon:    ${status.daemon.running ? `running (pid ${(status.daemon as { pid?: number }).pid})` : 'not running'}`);
                const last = status.lastRun;
                console.log(
                    `last run:  ${last ? `${new Date(last.startedAt).toISOString()} ${last.status}${last.message ? ` (${last.message})` : ''}, ${last.trigger}` : 'never'}`
                );
                console.log(`next run:  ${status.nextRun ?? 'not scheduled'}`);
                console.log(`queue:     ${Object.entries(status.queue).map(([state, n]) => `${n} ${state}`).join(', ')}`);
                const accounts = new Set([...status.bytesToday, ...status.bytesThisMonth].map(row => row.account));
                for (const account of accounts) {
                    const today = status.bytesToday.find(row => row.account === account);
                    const monthRow = status.bytesThisMonth.find(row => row.account === account);
                    console.log(
                        `${account}: today ${kb((today?.bytesSent ?? 0) + (today?.bytesReceived ?? 0))}, this month ${kb((monthRow?.bytesSent ?? 0) + (monthRow?.bytesReceived ?? 0))}`
                    );
                }
            } finally {
                store.close();
            }
        });
}
