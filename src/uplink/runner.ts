/**
 * One uplink run, in the phases execute() takes one after the other:
 *
 * 1. hooks and probe: bring the link up (uplink.up) and check that it answers (uplink.probe);
 * 2. budget: what this run may spend on the wire (budget.ts);
 * 3. send: the due queue, account by account (send.ts);
 * 4. receive: new mail, account by account, while the budget lasts (receive.ts);
 * 5. accounting: what each account did and cost, into the run report and the store;
 *
 * and the link is brought down (uplink.down) whatever happened after it came up.
 *
 * Only one run at a time, whoever starts it (the daemon's schedule, `mailmule sync` through the
 * daemon, or a standalone `mailmule sync`): a lock file in the data directory holds the pid of
 * the running one.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ResolvedUser } from '../config';
import type { Logger } from '../log';
import { QueueDelivery } from '../queue';
import type { Store } from '../store';
import { RunBudget, runLimit, startOfDay } from './budget';
import type { AccountProgress, UplinkContext } from './context';
import { probe, runHook } from './link';
import { openEarly, WireMeter } from './meter';
import { TokenCache } from './oauth2';
import { AccountRun, accountingRow, runVerdict, selectTargets } from './run-accounts';
import { RunInProgressError } from './run-in-progress';
import type { UplinkSettings } from './settings';
// send and receive load nodemailer and imapflow (about 20 MB of heap together): they are
// required when a run starts, so a daemon that only serves the LAN never carries them.
type SendModule = typeof import('./send');
type ReceiveModule = typeof import('./receive');

/** How long a provider may take to accept a connection and greet, and to answer once connected. */
const PROVIDER_TIMEOUTS = { connectMs: 60_000, socketMs: 5 * 60_000 };
/** The probe waits at most this long, however long the hooks may take. */
const PROBE_TIMEOUT_MS = 30_000;
/** An account's receive step starts only when at least this much of the budget is left. */
const RECEIVE_MIN_BYTES = 1024;

export interface RunOptions {
    trigger: string;
    user?: string;
    account?: string;
    sendOnly?: boolean;
    receiveOnly?: boolean;
    onProgress?: (progress: ProgressSnapshot) => void;
}

/**
 * One account's live figures. Sent when the run starts (every account `waiting`), whenever a
 * step begins or a message is done, and every PROGRESS_TICK_MS while the account is active, so
 * the bytes of a slow download move and a watcher knows the run is alive.
 */
export interface ProgressSnapshot {
    account: string;
    user: string;
    phase: 'waiting' | 'send' | 'receive' | 'done';
    /** What it does now, for people: "connecting to imap.example.com", "downloading". */
    activity: string;
    /** Since the account's first step began (0 while waiting). */
    elapsedMs: number;
    messagesSent: number;
    messagesReceived: number;
    bytesSent: number;
    bytesReceived: number;
}

export interface RunReport {
    runId: number | null;
    status: 'ok' | 'partial' | 'failed' | 'skipped';
    message: string | null;
    accounts: (Omit<AccountProgress, 'report' | 'step'> & { durationMs: number })[];
    bytesTotal: number;
    waiting: string[];
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
                let alive: boolean;
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
        const run = new RunRecord(this.store, this.logger, options);

        // 1. Hooks and probe.
        if (settings.up && !(await runHook(settings.up, settings.hookTimeoutMs, run.log, 'up'))) {
            return run.finish('skipped', 'the up hook failed; no run');
        }
        let accounts: AccountRun[] = [];
        try {
            if (settings.probe && !(await probe(settings.probe, Math.min(settings.hookTimeoutMs, PROBE_TIMEOUT_MS)))) {
                return run.finish('skipped', `no link: ${settings.probe} does not answer`);
            }

            // 2. Budget.
            const runMeter = new WireMeter();
            const usedToday = this.store.runs.bytesSince(startOfDay()).reduce((sum, row) => sum + row.bytesSent + row.bytesReceived, 0);
            const budget = new RunBudget(runMeter, runLimit(settings.budgetPerRun, settings.budgetPerDay, usedToday));
            if (budget.limit <= 0) return run.finish('skipped', 'the daily budget is spent');
            accounts = selectTargets(this.users(), options).map(target => new AccountRun(target, runMeter, options.onProgress));
            for (const account of accounts) account.report();
            const ctx = this.context(settings, run.log, budget);

            // 3 and 4 in relay mode: one exchange with the relay, which does both (src/relay).
            if (settings.relay) return await this.relayExchange(settings, run, accounts, budget);

            // 3. Send. Outgoing mail first: it is what people are waiting on, and it is already paid for in effort.
            if (!options.receiveOnly) await sendQueue(ctx, accounts);

            // 4. Receive.
            if (!options.sendOnly) await receiveMail(ctx, accounts);

            // 5. Accounting.
            for (const account of accounts) {
                account.end('done');
                const figures = account.figures();
                run.report.accounts.push(figures);
                run.report.waiting.push(...figures.waiting);
                this.store.runs.recordAccount(run.id, accountingRow(figures));
            }
            run.report.bytesTotal = runMeter.total();
            const verdict = runVerdict(run.report.accounts);
            return run.finish(verdict.status, verdict.message);
        } catch (err) {
            run.log.error({ err: { message: (err as Error).message } }, 'uplink run failed');
            return run.finish('failed', (err as Error).message);
        } finally {
            for (const account of accounts) account.stopTicking();
            if (settings.down) await runHook(settings.down, settings.hookTimeoutMs, run.log, 'down');
        }
    }

    /** Phases 3 and 4 in relay mode: the exchange, and its figures into the run report. */
    private async relayExchange(settings: UplinkSettings, run: RunRecord, accounts: AccountRun[], budget: RunBudget): Promise<RunReport> {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const { exchangeWithRelay, PiRelayFiles } = require('../relay/pi') as typeof import('../relay/pi');
        const queue = new QueueDelivery({ store: this.store, logger: run.log, reportingMta: settings.hostname, maxAgeMs: settings.queueMaxAgeMs });
        const started = Date.now();
        const exchange = await exchangeWithRelay({ store: this.store, logger: run.log, users: this.users(), queue }, new PiRelayFiles(this.store.dataDir), settings.relay!, budget.limit);
        for (const account of accounts) account.end('done');
        run.report.bytesTotal = exchange.wire.sent + exchange.wire.received;
        run.report.waiting.push(...exchange.waiting);
        // One accounting row for the exchange: today's budget (uplink.budget.perDay) counts it.
        this.store.runs.recordAccount(run.id, {
            account: `relay ${settings.relay!.id}`,
            bytesSent: exchange.wire.sent,
            bytesReceived: exchange.wire.received,
            messagesSent: exchange.messagesUp,
            messagesReceived: exchange.down.reduce((sum, down) => sum + down.messages, 0),
            durationMs: Date.now() - started,
            errors: []
        });
        const received = exchange.down.reduce((sum, down) => sum + down.messages, 0);
        const notes = exchange.down.flatMap(down => down.notes);
        run.log.info(
            { up: exchange.upSeq, messagesUp: exchange.messagesUp, received, retries: exchange.retries, upBytes: exchange.upBytes, downBytes: exchange.downBytes, resumedFrom: exchange.resumedFrom },
            'relay exchange done'
        );
        return run.finish(
            'ok',
            `relay: up bundle ${exchange.upSeq} (${exchange.messagesUp} messages), ${exchange.down.length} down bundles (${received} messages)${notes.length ? `; ${notes.join('; ')}` : ''}`
        );
    }

    private context(settings: UplinkSettings, log: Logger, budget: RunBudget): UplinkContext {
        return {
            store: this.store,
            logger: log,
            users: this.users,
            hostname: () => settings.hostname,
            localDomain: () => settings.localDomain,
            queue: new QueueDelivery({ store: this.store, logger: log, reportingMta: settings.hostname, maxAgeMs: settings.queueMaxAgeMs }),
            flagScanIntervalMs: () => settings.flagScanIntervalMs,
            tokens: this.tokens,
            budget,
            timeouts: PROVIDER_TIMEOUTS
        };
    }
}

/** The run's row in the store, its log and its report; finished exactly once. */
class RunRecord {
    readonly id: number;
    readonly log: Logger;
    readonly report: RunReport;

    constructor(
        private readonly store: Store,
        logger: Logger,
        options: RunOptions
    ) {
        this.id = store.runs.start(options.trigger);
        this.log = logger.child({ run: this.id });
        this.report = { runId: this.id, status: 'ok', message: null, accounts: [], bytesTotal: 0, waiting: [] };
        this.log.info({ trigger: options.trigger, user: options.user, account: options.account }, 'uplink run starting');
    }

    finish(status: RunReport['status'], message: string | null): RunReport {
        this.report.status = status;
        this.report.message = message;
        this.store.runs.finish(this.id, status, message);
        this.log.info({ status, message, bytes: this.report.bytesTotal, waiting: this.report.waiting }, 'uplink run finished');
        return this.report;
    }
}

/** Phase 3: each account with due entries sends them over its own provider. */
async function sendQueue(ctx: UplinkContext, accounts: AccountRun[]): Promise<void> {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { sendAccount } = require('./send') as SendModule;
    const due = ctx.queue.due();
    for (const account of accounts) {
        const entries = due.filter(entry => entry.account.toLowerCase() === account.account.toLowerCase());
        if (!entries.length) continue;
        account.begin('send');
        try {
            await sendAccount(ctx, account.target.account, entries, account.meter, account);
        } catch (err) {
            account.errors.push(`send: ${(err as Error).message}`);
            ctx.logger.warn({ account: account.account, err: { message: (err as Error).message } }, 'sending failed');
        }
        account.end('waiting');
    }
}

/** Phase 4: each account brings its new mail home, unless the budget is spent. */
async function receiveMail(ctx: UplinkContext, accounts: AccountRun[]): Promise<void> {
    // The first account's connection opens before the receive modules load (imapflow: about a
    // second the first time at load), so its handshake and greeting cross the link meanwhile.
    const first = accounts.find(account => !account.budgetStopped) ?? null;
    let early = first && ctx.budget.allows(RECEIVE_MIN_BYTES) ? openEarly(first.meter, first.target.account.imap.host, first.target.account.imap.port, ctx.timeouts.connectMs) : null;
    try {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const { receiveAccount } = require('./receive') as ReceiveModule;
        for (const account of accounts) {
            if (account.budgetStopped || !ctx.budget.allows(RECEIVE_MIN_BYTES)) {
                account.waiting.push('receiving waits for the next run: budget');
                continue;
            }
            account.begin('receive');
            const taken = account === first ? early : null;
            if (taken) early = null;
            try {
                await receiveAccount(ctx, account.target.user, account.target.account, account.target.index, account.meter, account, taken);
            } catch (err) {
                const message = (err as Error & { responseText?: string }).responseText || (err as Error).message;
                account.errors.push(`receive: ${message}`);
                ctx.logger.warn({ account: account.account, error: message }, 'receiving failed');
            } finally {
                // Closed with its session, or never taken (the pass failed before it connected).
                taken?.destroy();
            }
            account.end('done');
        }
    } finally {
        early?.destroy();
    }
}
