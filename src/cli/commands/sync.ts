/**
 * `mailmule sync`: asks the running daemon (over its control socket) to start an uplink run and
 * shows its progress; with no daemon running it runs the uplink itself. One run at a time
 * either way.
 *
 * On a terminal (stderr) one live line per account (../progress.ts), erased when the run ends;
 * then the report on stdout, as text or, with --json, the run report as one JSON object.
 *
 * Its exit code is what cron acts on (exit-codes.ts): 0 only when every account succeeded,
 * SYNC_ACCOUNT_FAILED when any failed, SYNC_SKIPPED when there was no run (no link, no budget),
 * SYNC_BUSY when another run holds the lock.
 */
import type { Command } from 'commander';
import type { LoadedConfig } from '../../config';
import type { ProgressSnapshot, RunOptions, RunReport } from '../../uplink';
import { kb, loadConfig, openStore, withConfigOption, type ConfigOption } from '../common';
import { SyncAccountsFailed, SyncBusy, SyncSkipped } from '../exit-codes';
import type { LiveDisplay } from '../progress';

interface SyncOptions extends ConfigOption {
    user?: string;
    account?: string;
    sendOnly?: boolean;
    receiveOnly?: boolean;
    json?: boolean;
}

/**
 * The daemon's reply to a sync request, one JSON line each (src/uplink/control.ts). An error
 * reply names its kind in `code`, so the CLI need not read the words of `message`: the daemon
 * sends `run-in-progress` when its runner refuses with RunInProgressError.
 */
type DaemonReply = ({ type: 'progress' } & ProgressSnapshot) | { type: 'done'; report: RunReport } | { type: 'error'; message: string; code?: string };

const RUN_IN_PROGRESS = 'run-in-progress';

function printReport(report: RunReport): void {
    for (const account of report.accounts) {
        console.log(
            `${account.account}: sent ${account.messagesSent} msg, received ${account.messagesReceived} msg; ${kb(account.bytesSent)} up, ${kb(account.bytesReceived)} down, ${(account.durationMs / 1000).toFixed(1)} s`
        );
        for (const error of account.errors) console.log(`  error: ${error}`);
        // `?? []`: a report from a daemon older than leftUpstream has none.
        for (const line of account.leftUpstream ?? []) console.log(`  left on the provider: ${line}`);
    }
    for (const line of report.waiting) console.log(`waiting: ${line}`);
    console.log(`run ${report.runId ?? '-'}: ${report.status}${report.message ? ` (${report.message})` : ''}; ${kb(report.bytesTotal)} on the wire`);
}

/**
 * Throws the typed outcome of a run that was not a full success. A run the budget stopped is
 * one: what is left waits for the next run by design, and no account failed.
 */
function checkOutcome(report: RunReport): void {
    if (report.status === 'skipped') throw new SyncSkipped(report.message ?? 'the run was skipped');
    if (report.status === 'failed') throw new Error(`the uplink run failed: ${report.message ?? 'no reason given'}`);
    const failed = report.accounts.filter(account => account.errors.length > 0).map(account => account.account);
    if (failed.length) throw new SyncAccountsFailed(failed);
}

/** Through the daemon; null when no daemon listens on the control socket. */
async function viaDaemon(config: LoadedConfig, runOptions: Omit<RunOptions, 'trigger'>, onProgress: (p: ProgressSnapshot) => void): Promise<RunReport | null> {
    // The control socket's client alone: the runner and its modules are the daemon's to load.
    const { controlSocketPath, requestDaemon } = await import('../../uplink/control');
    let report: RunReport | null = null;
    let refusal: { message: string; code?: string } | null = null;
    const answered = await requestDaemon(controlSocketPath(config.paths.dataDir), { command: 'sync', options: runOptions }, (message: DaemonReply) => {
        if (message.type === 'progress') onProgress(message);
        else if (message.type === 'done') report = message.report;
        else if (message.type === 'error') refusal = { message: message.message, code: message.code };
    });
    if (!answered) return null;
    const failure = refusal as { message: string; code?: string } | null;
    if (failure) throw failure.code === RUN_IN_PROGRESS ? new SyncBusy(failure.message) : new Error(failure.message);
    if (!report) throw new Error('the daemon closed the connection without a result');
    return report;
}

/**
 * No daemon: this process runs the uplink against the store (the lock file still allows one run
 * at a time). Its log goes to stderr, above the live lines when there are some.
 */
async function standalone(config: LoadedConfig, runOptions: Omit<RunOptions, 'trigger'>, onProgress: (p: ProgressSnapshot) => void, live: LiveDisplay | null): Promise<RunReport> {
    const store = await openStore(config);
    try {
        store.recover();
        const { createUplinkRunner } = await import('../../uplink');
        const { createLogger } = await import('../../log');
        const level = config.gateway.log.level === 'info' ? 'warn' : config.gateway.log.level;
        const logger = live ? createLogger(level, { write: (line: string) => live.log(line) }, 'pretty') : createLogger(level, process.stderr, config.gateway.log.format);
        const runner = createUplinkRunner(store, logger, () => config);
        return await runner.run({ trigger: 'mailmule sync (standalone)', ...runOptions, onProgress });
    } finally {
        store.close();
    }
}

export function registerSync(program: Command): void {
    withConfigOption(program.command('sync'))
        .description('run the uplink now: send the queue, then bring new mail home (through the daemon when it runs)')
        .option('--user <name>', 'only this local user')
        .option('--account <address>', 'only this upstream account (address or name)')
        .option('--send-only', 'only send the queue')
        .option('--receive-only', 'only download')
        .option('--json', 'print the run report as JSON (figures per account, errors, what waits)')
        .action(async (options: SyncOptions) => {
            const config = await loadConfig(options);
            const runOptions = { user: options.user, account: options.account, sendOnly: options.sendOnly, receiveOnly: options.receiveOnly };
            let live: LiveDisplay | null = null;
            if (process.stderr.isTTY) {
                // Loaded before the first line is drawn: loading it blocks the event loop, which would freeze the clock on the line.
                await import('../../uplink');
                const { LiveDisplay } = await import('../progress');
                live = new LiveDisplay(process.stderr).start();
            }
            const showProgress = (p: ProgressSnapshot) => live?.update(p);
            let report: RunReport;
            try {
                report = (await viaDaemon(config, runOptions, showProgress)) ?? (await standalone(config, runOptions, showProgress, live));
            } finally {
                // The live lines make way for the report or an error.
                live?.stop();
            }
            if (options.json) console.log(JSON.stringify(report, null, 2));
            else printReport(report);
            checkOutcome(report);
        });
}
