/**
 * One uplink run: bring the link up, check it answers, send the queue, bring mail home, bring
 * the link down, and record what it cost per account. Only one run at a time, whoever starts
 * it (the daemon's schedule, `mailmule sync` through the daemon, or a standalone `mailmule
 * sync`): a lock file in the data directory holds the pid of the running one.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { spawn } from 'node:child_process';
import type { ResolvedAccount, ResolvedUser } from '../config';
import type { Logger } from '../log';
import { QueueDelivery } from '../queue';
import type { Store } from '../store';
import { RunBudget, type AccountProgress, type UplinkContext } from './context';
import { AccountMeter, WireMeter } from './meter';
import { TokenCache } from './oauth2';
// send and receive load nodemailer and imapflow (about 20 MB of heap together): they are
// required when a run starts, so a daemon that only serves the LAN never carries them.
type SendModule = typeof import('./send');
type ReceiveModule = typeof import('./receive');

export interface UplinkSettings {
    up: string | null;
    probe: string | null;
    down: string | null;
    hookTimeoutMs: number;
    budgetPerRun: number;
    budgetPerDay: number;
    queueMaxAgeMs: number;
    flagScanIntervalMs: number;
    hostname: string;
    localDomain: string;
}

export interface RunOptions {
    trigger: string;
    user?: string;
    account?: string;
    sendOnly?: boolean;
    receiveOnly?: boolean;
    onProgress?: (progress: ProgressSnapshot) => void;
}

export interface ProgressSnapshot {
    account: string;
    user: string;
    phase: 'send' | 'receive' | 'done';
    messagesSent: number;
    messagesReceived: number;
    bytesSent: number;
    bytesReceived: number;
}

export interface RunReport {
    runId: number | null;
    status: 'ok' | 'partial' | 'failed' | 'skipped';
    message: string | null;
    accounts: (Omit<AccountProgress, 'report'> & { durationMs: number })[];
    bytesTotal: number;
    waiting: string[];
}

export class RunInProgressError extends Error {
    constructor(pid: number) {
        super(`an uplink run is already in progress (pid ${pid})`);
    }
}

function startOfDay(): number {
    const d = new Date();
    d.setHours(0, 0, 0, 0);
    return d.getTime();
}

/** Runs a hook command with a time limit; its output goes to the log. */
function runHook(command: string, timeoutMs: number, logger: Logger, name: string): Promise<boolean> {
    return new Promise(resolve => {
        const child = spawn('/bin/sh', ['-c', command], { stdio: ['ignore', 'pipe', 'pipe'] });
        let output = '';
        child.stdout.on('data', chunk => (output += chunk).length > 8192 && (output = output.slice(-8192)));
        child.stderr.on('data', chunk => (output += chunk).length > 8192 && (output = output.slice(-8192)));
        const timer = setTimeout(() => {
            child.kill('SIGKILL');
            logger.warn({ hook: name, timeoutMs }, `uplink ${name} hook timed out`);
        }, timeoutMs);
        child.on('close', code => {
            clearTimeout(timer);
            logger.info({ hook: name, exitCode: code, output: output.trim().slice(-2000) }, `uplink ${name} hook finished`);
            resolve(code === 0);
        });
        child.on('error', err => {
            clearTimeout(timer);
            logger.warn({ hook: name, err: { message: err.message } }, `uplink ${name} hook could not run`);
            resolve(false);
        });
    });
}

function probe(target: string, timeoutMs: number): Promise<boolean> {
    const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
    return new Promise(resolve => {
        const socket = net.connect({ host, port });
        const done = (ok: boolean) => {
            socket.destroy();
            resolve(ok);
        };
        socket.setTimeout(timeoutMs, () => done(false));
        socket.once('connect', () => done(true));
        socket.once('error', () => done(false));
    });
}

export class UplinkRunner {
    private running: Promise<RunReport> | null = null;
    private readonly tokens = new TokenCache();
    private readonly lockFile: string;

    constructor(
        private readonly store: Store,
        private readonly logger: Logger,
        private readonly users: () => readonly ResolvedUser[],
        private readonly settings: () => UplinkSettings
    ) {
        this.lockFile = path.join(store.dataDir, 'uplink.lock');
    }

    isRunning(): boolean {
        return this.running !== null;
    }

    /** Starts a run, or fails with RunInProgressError when one is going on here or in another process. */
    run(options: RunOptions): Promise<RunReport> {
        if (this.running) return Promise.reject(new RunInProgressError(process.pid));
        this.acquireLock();
        this.running = this.execute(options).finally(() => {
            this.running = null;
            fs.rmSync(this.lockFile, { force: true });
        });
        return this.running;
    }

    private acquireLock(): void {
        for (let attempt = 0; attempt < 2; attempt++) {
            try {
                fs.writeFileSync(this.lockFile, String(process.pid), { flag: 'wx', mode: 0o600 });
                return;
            } catch (err) {
                if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
                const pid = Number(fs.readFileSync(this.lockFile, 'utf8')) || 0;
                let alive = false;
                try {
                    process.kill(pid, 0);
                    alive = pid > 0;
                } catch {
                    alive = false;
                }
                if (alive) throw new RunInProgressError(pid);
                // Left by a run that died: take it over.
                fs.rmSync(this.lockFile, { force: true });
            }
        }
        throw new Error('could not take the uplink lock');
    }

    private async execute(options: RunOptions): Promise<RunReport> {
        const settings = this.settings();
        const runId = this.store.startRun(options.trigger);
        const log = this.logger.child({ run: runId });
        const report: RunReport = { runId, status: 'ok', message: null, accounts: [], bytesTotal: 0, waiting: [] };
        const finish = (status: RunReport['status'], message: string | null): RunReport => {
            report.status = status;
            report.message = message;
            this.store.finishRun(runId, status, message);
            log.info({ status, message, bytes: report.bytesTotal, waiting: report.waiting }, 'uplink run finished');
            return report;
        };

        log.info({ trigger: options.trigger, user: options.user, account: options.account }, 'uplink run starting');
        if (settings.up && !(await runHook(settings.up, settings.hookTimeoutMs, log, 'up'))) {
            return finish('skipped', 'the up hook failed; no run');
        }
        try {
            if (settings.probe && !(await probe(settings.probe, Math.min(settings.hookTimeoutMs, 30000)))) {
                return finish('skipped', `no link: ${settings.probe} does not answer`);
            }

            const usedToday = this.store.bytesSince(startOfDay()).reduce((sum, row) => sum + row.bytesSent + row.bytesReceived, 0);
            const limits = [settings.budgetPerRun || Infinity, settings.budgetPerDay ? Math.max(settings.budgetPerDay - usedToday, 0) : Infinity];
            const runMeter = new WireMeter();
            const budget = new RunBudget(runMeter, Math.min(...limits));
            if (budget.limit <= 0) return finish('skipped', 'the daily budget is spent');

            const targets: { user: ResolvedUser; account: ResolvedAccount; index: number }[] = [];
            for (const user of this.users()) {
                if (options.user && user.name.toLowerCase() !== options.user.toLowerCase()) continue;
                user.accounts.forEach((account, index) => {
                    if (options.account && account.address.toLowerCase() !== options.account.toLowerCase() && account.name !== options.account) return;
                    targets.push({ user, account, index });
                });
            }

            const progressOf = new Map<string, AccountProgress & { meter: AccountMeter; started: number; phase: ProgressSnapshot['phase'] }>();
            for (const target of targets) {
                const meter = new AccountMeter(runMeter);
                const entry = {
                    account: target.account.address,
                    user: target.user.name,
                    messagesSent: 0,
                    messagesReceived: 0,
                    bytesSent: 0,
                    bytesReceived: 0,
                    errors: [] as string[],
                    waiting: [] as string[],
                    budgetStopped: false,
                    meter,
                    started: 0,
                    phase: 'send' as ProgressSnapshot['phase'],
                    report: () => {
                        const counts = meter.totals();
                        entry.bytesSent = counts.sent;
                        entry.bytesReceived = counts.received;
                        options.onProgress?.({
                            account: entry.account,
                            user: entry.user,
                            phase: entry.phase,
                            messagesSent: entry.messagesSent,
                            messagesReceived: entry.messagesReceived,
                            bytesSent: counts.sent,
                            bytesReceived: counts.received
                        });
                    }
                };
                progressOf.set(target.account.address, entry);
            }

            const context = (): UplinkContext => ({
                store: this.store,
                logger: log,
                users: this.users,
                hostname: () => settings.hostname,
                localDomain: () => settings.localDomain,
                queue: new QueueDelivery({ store: this.store, logger: log, reportingMta: settings.hostname, maxAgeMs: settings.queueMaxAgeMs }),
                flagScanIntervalMs: () => settings.flagScanIntervalMs,
                tokens: this.tokens,
                budget,
                timeouts: { connectMs: 60_000, socketMs: 5 * 60_000 }
            });
            const ctx = context();
            // eslint-disable-next-line @typescript-eslint/no-require-imports
            const { sendAccount } = require('./send') as SendModule;
            // eslint-disable-next-line @typescript-eslint/no-require-imports
            const { receiveAccount } = require('./receive') as ReceiveModule;

            // Outgoing mail first: it is what people are waiting on, and it is already paid for in effort.
            if (!options.receiveOnly) {
                const due = ctx.queue.due();
                for (const target of targets) {
                    const entries = due.filter(entry => entry.account.toLowerCase() === target.account.address.toLowerCase());
                    if (!entries.length) continue;
                    const progress = progressOf.get(target.account.address)!;
                    progress.started ||= Date.now();
                    progress.phase = 'send';
                    try {
                        await sendAccount(ctx, target.account, entries, progress.meter, progress);
                    } catch (err) {
                        progress.errors.push(`send: ${(err as Error).message}`);
                        log.warn({ account: target.account.address, err: { message: (err as Error).message } }, 'sending failed');
                    }
                    progress.report();
                }
            }

            if (!options.sendOnly) {
                for (const target of targets) {
                    const progress = progressOf.get(target.account.address)!;
                    if (progress.budgetStopped || !budget.allows(1024)) {
                        progress.waiting.push('receiving waits for the next run: budget');
                        continue;
                    }
                    progress.started ||= Date.now();
                    progress.phase = 'receive';
                    try {
                        await receiveAccount(ctx, target.user, target.account, target.index, progress.meter, progress);
                    } catch (err) {
                        const message = (err as Error & { responseText?: string }).responseText || (err as Error).message;
                        progress.errors.push(`receive: ${message}`);
                        log.warn({ account: target.account.address, error: message }, 'receiving failed');
                    }
                    progress.phase = 'done';
                    progress.report();
                }
            }

            for (const progress of progressOf.values()) {
                const durationMs = progress.started ? Date.now() - progress.started : 0;
                const counts = progress.meter.totals();
                const { meter, started, phase, report: _report, ...figures } = progress;
                void meter; void started; void phase; void _report;
                figures.bytesSent = counts.sent;
                figures.bytesReceived = counts.received;
                report.accounts.push({ ...figures, durationMs });
                report.waiting.push(...progress.waiting);
                this.store.recordRunAccount(runId, {
                    account: progress.account,
                    bytesSent: counts.sent,
                    bytesReceived: counts.received,
                    messagesSent: progress.messagesSent,
                    messagesReceived: progress.messagesReceived,
                    durationMs,
                    errors: progress.errors
                });
            }
            report.bytesTotal = runMeter.total();
            const errors = report.accounts.reduce((sum, account) => sum + account.errors.length, 0);
            const stopped = report.accounts.some(account => account.budgetStopped);
            return finish(errors || stopped ? 'partial' : 'ok', stopped ? 'budget reached; the rest waits for the next run' : errors ? `${errors} error(s)` : null);
        } catch (err) {
            log.error({ err: { message: (err as Error).message } }, 'uplink run failed');
            return finish('failed', (err as Error).message);
        } finally {
            if (settings.down) await runHook(settings.down, settings.hookTimeoutMs, log, 'down');
        }
    }
}
