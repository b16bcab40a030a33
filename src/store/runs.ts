/** Run accounting: each uplink run, and per account what it sent, received and cost on the wire. */
import type { Connection } from './connection';
import type { RunAccountFigures, UplinkRun } from './types';

export type RunStatus = 'ok' | 'partial' | 'failed' | 'skipped';

/** An uplink_runs row as SQLite returns it. */
export interface RunDbRow {
    id: number;
    trigger: string;
    started_at: number;
    finished_at: number | null;
    status: string;
    message: string | null;
}

/** A run's own fields (those of UplinkRun but its accounts) from its row. */
export function runFromRow(row: RunDbRow): Omit<UplinkRun, 'accounts'> {
    return { id: row.id, trigger: row.trigger, startedAt: row.started_at, finishedAt: row.finished_at, status: row.status, message: row.message };
}

interface RunAccountDbRow {
    account: string;
    bytes_sent: number;
    bytes_received: number;
    messages_sent: number;
    messages_received: number;
    duration_ms: number;
    errors: string;
}

export class Runs {
    constructor(private readonly db: Connection) {}

    /** Records a run as started; returns its id. */
    start(trigger: string): number {
        return this.db.write(tx => Number(tx.stmt("INSERT INTO uplink_runs (trigger, started_at, status) VALUES (?, ?, 'running')").run(trigger, Date.now()).lastInsertRowid));
    }

    finish(id: number, status: RunStatus, message: string | null): void {
        this.db.write(tx => tx.stmt('UPDATE uplink_runs SET finished_at = ?, status = ?, message = ? WHERE id = ?').run(Date.now(), status, message, id));
    }

    /** One account's figures for a run (replacing any recorded before). */
    recordAccount(runId: number, figures: RunAccountFigures): void {
        this.db.write(tx =>
            tx
                .stmt(
                    `INSERT INTO uplink_run_accounts (run_id, account, bytes_sent, bytes_received, messages_sent, messages_received, duration_ms, errors)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                     ON CONFLICT (run_id, account) DO UPDATE SET bytes_sent = excluded.bytes_sent, bytes_received = excluded.bytes_received,
                        messages_sent = excluded.messages_sent, messages_received = excluded.messages_received, duration_ms = excluded.duration_ms, errors = excluded.errors`
                )
                .run(runId, figures.account, figures.bytesSent, figures.bytesReceived, figures.messagesSent, figures.messagesReceived, figures.durationMs, JSON.stringify(figures.errors))
        );
    }

    /** The latest run with its accounts' figures, or null before the first. */
    last(): UplinkRun | null {
        const row = this.db.stmt('SELECT id, trigger, started_at, finished_at, status, message FROM uplink_runs ORDER BY id DESC LIMIT 1').get() as RunDbRow | undefined;
        if (!row) return null;
        const accounts = (
            this.db
                .stmt('SELECT account, bytes_sent, bytes_received, messages_sent, messages_received, duration_ms, errors FROM uplink_run_accounts WHERE run_id = ? ORDER BY account')
                .all(row.id) as RunAccountDbRow[]
        ).map(a => ({
            account: a.account,
            bytesSent: a.bytes_sent,
            bytesReceived: a.bytes_received,
            messagesSent: a.messages_sent,
            messagesReceived: a.messages_received,
            durationMs: a.duration_ms,
            errors: JSON.parse(a.errors) as string[]
        }));
        return { ...runFromRow(row), accounts };
    }

    /** Wire bytes per account since `since` (ms), both ways. */
    bytesSince(since: number): { account: string; bytesSent: number; bytesReceived: number }[] {
        return this.db
            .stmt(
                `SELECT a.account AS account, SUM(a.bytes_sent) AS bytesSent, SUM(a.bytes_received) AS bytesReceived
                 FROM uplink_run_accounts a JOIN uplink_runs r ON r.id = a.run_id WHERE r.started_at >= ? GROUP BY a.account ORDER BY a.account`
            )
            .all(since) as { account: string; bytesSent: number; bytesReceived: number }[];
    }
}
