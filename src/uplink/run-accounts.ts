/**
 * The accounts of one run: which ones it covers (all, or those `mailmule sync --user/--account`
 * names), each one's live progress and wire meter while it runs, and at the end its figures
 * for the run report and the store, and the verdict on the whole run.
 */
import type { ResolvedAccount, ResolvedUser } from '../config';
import type { RunAccountFigures } from '../store';
import type { AccountProgress } from './context';
import { AccountMeter, type WireMeter } from './meter';
import type { ProgressSnapshot, RunOptions, RunReport } from './runner';

/** While an account is active, its figures go out at least this often, whether or not the provider says anything. */
export const PROGRESS_TICK_MS = 1000;

export interface AccountTarget {
    user: ResolvedUser;
    account: ResolvedAccount;
    /** The account's position among its user's (the first maps to the top-level folders). */
    index: number;
}

/** The accounts a run covers, in configuration order. `account` matches an address or a name. */
export function selectTargets(users: readonly ResolvedUser[], options: Pick<RunOptions, 'user' | 'account'>): AccountTarget[] {
    const targets: AccountTarget[] = [];
    for (const user of users) {
        if (options.user && user.name.toLowerCase() !== options.user.toLowerCase()) continue;
        user.accounts.forEach((account, index) => {
            if (options.account && account.address.toLowerCase() !== options.account.toLowerCase() && account.name !== options.account) return;
            targets.push({ user, account, index });
        });
    }
    return targets;
}

/** One account's share of a run: what the send and receive steps report into. */
export class AccountRun implements AccountProgress {
    readonly account: string;
    readonly user: string;
    messagesSent = 0;
    messagesReceived = 0;
    bytesSent = 0;
    bytesReceived = 0;
    errors: string[] = [];
    waiting: string[] = [];
    budgetStopped = false;
    leftUpstream: string[] = [];
    /** Counts this account's connections; they also count towards the run's meter. */
    readonly meter: AccountMeter;
    phase: ProgressSnapshot['phase'] = 'waiting';
    activity = 'waiting';
    /** When the account's first step began (0: it had nothing to do). */
    private started = 0;
    private ticker?: NodeJS.Timeout;

    constructor(
        readonly target: AccountTarget,
        runMeter: WireMeter,
        private readonly onProgress?: (progress: ProgressSnapshot) => void
    ) {
        this.account = target.account.address;
        this.user = target.user.name;
        this.meter = new AccountMeter(runMeter);
    }

    /** Marks the start of a phase (send or receive); figures go out every PROGRESS_TICK_MS until end(). */
    begin(phase: 'send' | 'receive'): void {
        this.started ||= Date.now();
        this.phase = phase;
        this.activity = phase === 'send' ? 'sending' : 'receiving';
        if (this.onProgress && !this.ticker) {
            this.ticker = setInterval(() => this.report(), PROGRESS_TICK_MS);
            this.ticker.unref();
        }
        this.report();
    }

    step(activity: string): void {
        this.activity = activity;
        this.report();
    }

    /** The end of a phase: waiting for the next one, or done with the run. */
    end(phase: 'waiting' | 'done'): void {
        this.stopTicking();
        this.phase = phase;
        this.activity = phase === 'waiting' ? 'waiting' : this.errors.length ? 'failed' : 'done';
        this.report();
    }

    stopTicking(): void {
        clearInterval(this.ticker);
        this.ticker = undefined;
    }

    report(): void {
        const counts = this.meter.totals();
        this.bytesSent = counts.sent;
        this.bytesReceived = counts.received;
        this.onProgress?.({
            account: this.account,
            user: this.user,
            phase: this.phase,
            activity: this.activity,
            elapsedMs: this.started ? Date.now() - this.started : 0,
            messagesSent: this.messagesSent,
            messagesReceived: this.messagesReceived,
            bytesSent: counts.sent,
            bytesReceived: counts.received
        });
    }

    /** The account's line in the run report (plain data: it travels as JSON over the control socket). */
    figures(): RunReport['accounts'][number] {
        const counts = this.meter.totals();
        return {
            account: this.account,
            user: this.user,
            messagesSent: this.messagesSent,
            messagesReceived: this.messagesReceived,
            bytesSent: counts.sent,
            bytesReceived: counts.received,
            errors: this.errors,
            waiting: this.waiting,
            budgetStopped: this.budgetStopped,
            leftUpstream: this.leftUpstream,
            durationMs: this.started ? Date.now() - this.started : 0
        };
    }
}

/** The row the store keeps for an account's share of a run (run accounting, `mailmule status`). */
export function accountingRow(figures: RunReport['accounts'][number]): RunAccountFigures {
    return {
        account: figures.account,
        bytesSent: figures.bytesSent,
        bytesReceived: figures.bytesReceived,
        messagesSent: figures.messagesSent,
        messagesReceived: figures.messagesReceived,
        durationMs: figures.durationMs,
        errors: figures.errors
    };
}

/** A finished run's status and message: partial when any account had an error or hit the budget. */
export function runVerdict(accounts: Pick<AccountProgress, 'errors' | 'budgetStopped'>[]): { status: 'ok' | 'partial'; message: string | null } {
    const errors = accounts.reduce((sum, account) => sum + account.errors.length, 0);
    const stopped = accounts.some(account => account.budgetStopped);
    if (stopped) return { status: 'partial', message: 'budget reached; the rest waits for the next run' };
    if (errors) return { status: 'partial', message: `${errors} error(s)` };
    return { status: 'ok', message: null };
}
