/**
 * Account problems: an upstream account whose provider refused its login. Kept from the first
 * refusal until a login succeeds, so `mailmule status` can show the account as failing and its
 * owner is told once (notified_at), not at every run while it lasts.
 */
import type { Connection } from './connection';

export interface AccountProblem {
    account: string;
    /** What the provider said, in words (the queue entries' last error). */
    error: string;
    since: number;
    lastSeenAt: number;
    /** When the owner's notice was filed, or null before it was. */
    notifiedAt: number | null;
}

interface AccountProblemDbRow {
    account: string;
    error: string;
    since: number;
    last_seen_at: number;
    notified_at: number | null;
}

export class AccountProblems {
    constructor(private readonly db: Connection) {}

    /** Records a refusal (the first one starts the problem, later ones update what it says). */
    record(account: string, error: string, at: number = Date.now()): void {
        this.db.write(tx =>
            tx
                .stmt(
                    `INSERT INTO account_problems (account, error, since, last_seen_at) VALUES (?, ?, ?, ?)
                     ON CONFLICT (account) DO UPDATE SET error = excluded.error, last_seen_at = excluded.last_seen_at`
                )
                .run(account, error, at, at)
        );
    }

    /** True for the one caller that is to tell the owner about the current problem (marks it told). */
    claimNotice(account: string, at: number = Date.now()): boolean {
        return this.db.write(tx => tx.stmt('UPDATE account_problems SET notified_at = ? WHERE account = ? AND notified_at IS NULL').run(at, account).changes > 0);
    }

    /** A login succeeded: the problem is over (a later refusal is a new one, with a new notice). */
    clear(account: string): boolean {
        return this.db.write(tx => tx.stmt('DELETE FROM account_problems WHERE account = ?').run(account).changes > 0);
    }

    list(): AccountProblem[] {
        return (this.db.stmt('SELECT account, error, since, last_seen_at, notified_at FROM account_problems ORDER BY account').all() as AccountProblemDbRow[]).map(row => ({
            account: row.account,
            error: row.error,
            since: row.since,
            lastSeenAt: row.last_seen_at,
            notifiedAt: row.notified_at
        }));
    }
}
