/**
 * The uplink's history for the admin's status page: the latest runs with their totals, and the
 * wire bytes per account per calendar day or month (local time, as uplink.budget.perDay counts).
 * Read-only; the rows are written by runs.ts.
 */
import type { Connection } from './connection';
import { runFromRow, type RunDbRow } from './runs';
import type { UplinkRun } from './types';

/** A run with its accounts' figures added up. */
export interface RunSummary extends Omit<UplinkRun, 'accounts'> {
    bytesSent: number;
    bytesReceived: number;
    messagesSent: number;
    messagesReceived: number;
}

export interface PeriodBytes {
    /** 'YYYY-MM-DD' for a day, 'YYYY-MM' for a month (local time). */
    period: string;
    account: string;
    bytesSent: number;
    bytesReceived: number;
}

interface RunSummaryDbRow extends RunDbRow {
    bytes_sent: number;
    bytes_received: number;
    messages_sent: number;
    messages_received: number;
}

/** At most this many rows from any one query: the page shows a few weeks, not years. */
const MAX_ROWS = 5000;

const PERIOD_FORMAT = { day: '%Y-%m-%d', month: '%Y-%m' } as const;

export class RunHistory {
    constructor(private readonly db: Connection) {}

    /** The latest `limit` runs (newest first), each with its accounts' figures added up. */
    recent(limit: number): RunSummary[] {
        const rows = this.db
            .stmt(
                `SELECT r.id, r.trigger, r.started_at, r.finished_at, r.status, r.message,
                    COALESCE(SUM(a.bytes_sent), 0) AS bytes_sent, COALESCE(SUM(a.bytes_received), 0) AS bytes_received,
                    COALESCE(SUM(a.messages_sent), 0) AS messages_sent, COALESCE(SUM(a.messages_received), 0) AS messages_received
                 FROM (SELECT * FROM uplink_runs ORDER BY id DESC LIMIT ?) r LEFT JOIN uplink_run_accounts a ON a.run_id = r.id
                 GROUP BY r.id ORDER BY r.id DESC`
            )
            .all(Math.min(Math.max(Math.floor(limit), 0), MAX_ROWS)) as RunSummaryDbRow[];
        return rows.map(r => ({
            ...runFromRow(r),
            bytesSent: r.bytes_sent,
            bytesReceived: r.bytes_received,
            messagesSent: r.messages_sent,
            messagesReceived: r.messages_received
        }));
    }

    /** Wire bytes per account per local calendar day or month, for runs started at or after `since` (ms); oldest period first. */
    bytesPer(period: 'day' | 'month', since: number): PeriodBytes[] {
        return this.db
            .stmt(
                `SELECT strftime('${PERIOD_FORMAT[period]}', r.started_at / 1000, 'unixepoch', 'localtime') AS period, a.account AS account,
                    SUM(a.bytes_sent) AS bytesSent, SUM(a.bytes_received) AS bytesReceived
                 FROM uplink_run_accounts a JOIN uplink_runs r ON r.id = a.run_id
                 WHERE r.started_at >= ? GROUP BY period, a.account ORDER BY period, a.account LIMIT ${MAX_ROWS}`
            )
            .all(since) as PeriodBytes[];
    }
}
