/**
 * What one villager's page shows of their own mail, in words: their outgoing messages and what
 * became of them, their use of the link this month, and the health of their upstream accounts.
 * Built only from rows that belong to the user (queue entries by user id, figures and problems
 * by the user's own account addresses): nobody sees another's.
 */
import type { AccountProblem, HeldMessage, QueueEntry, UplinkRun } from '../store';
import type { Strings } from './strings';

export interface OutgoingRow {
    id: number;
    subject: string;
    to: string;
    state: string;
    kind: 'waiting' | 'sent' | 'failed';
}

export interface UsageRow {
    account: string;
    up: number;
    down: number;
}

export interface HealthRow {
    account: string;
    text: string;
    failing: boolean;
}

export interface HeldRow {
    mailboxId: number;
    uid: number;
    subject: string;
    folder: string;
    account: string;
    date: string;
}

export interface MineInput {
    userId: number;
    /** The user's upstream account addresses, lower-cased. */
    accounts: string[];
    queue: readonly QueueEntry[];
    usage: readonly { account: string; bytesSent: number; bytesReceived: number }[];
    lastRun: UplinkRun | null;
    problems: readonly AccountProblem[];
    nextRun: Date | null;
    /** The user's own stubs (the store selects them by user id). */
    held: readonly HeldMessage[];
    formatTime(at: number): string;
}

export interface MineView {
    outgoing: OutgoingRow[];
    usage: UsageRow[];
    health: HealthRow[];
    held: HeldRow[];
}

/** At most this many outgoing messages, newest first. */
const MAX_OUTGOING = 50;

/** A queue entry's state in words (the admin's page says it the same way). */
export function describeEntry(entry: QueueEntry, s: Strings, input: Pick<MineInput, 'nextRun' | 'formatTime'>): Pick<OutgoingRow, 'state' | 'kind'> {
    switch (entry.state) {
        case 'queued':
            return { state: s.queued(input.nextRun ? input.formatTime(input.nextRun.getTime()) : null), kind: 'waiting' };
        case 'sending':
            return { state: s.sending, kind: 'waiting' };
        case 'deferred':
            return { state: s.deferred(entry.nextAttemptAt ? input.formatTime(entry.nextAttemptAt) : null, entry.lastError), kind: 'waiting' };
        case 'sent':
            return { state: s.sent, kind: 'sent' };
        case 'failed':
            return { state: s.failed(entry.recipients.find(r => r.state === 'failed')?.lastError ?? entry.lastError), kind: 'failed' };
    }
}

export function mineView(s: Strings, input: MineInput): MineView {
    const own = new Set(input.accounts.map(a => a.toLowerCase()));
    const outgoing = input.queue
        .filter(entry => entry.userId === input.userId)
        .sort((a, b) => b.createdAt - a.createdAt || b.id - a.id)
        .slice(0, MAX_OUTGOING)
        .map(entry => ({ id: entry.id, subject: entry.subject || s.noSubject, to: entry.recipients.map(r => r.address).join(', '), ...describeEntry(entry, s, input) }));
    const usage = [...own].map(account => {
        const row = input.usage.find(u => u.account.toLowerCase() === account);
        return { account, up: row?.bytesSent ?? 0, down: row?.bytesReceived ?? 0 };
    });
    const health = [...own].map(account => {
        const problem = input.problems.find(p => p.account.toLowerCase() === account);
        if (problem) return { account, text: s.failing(input.formatTime(problem.since), problem.error), failing: true };
        const figures = input.lastRun?.accounts.find(a => a.account.toLowerCase() === account);
        if (!input.lastRun || !figures) return { account, text: s.neverRun, failing: false };
        return { account, text: s.lastRun(input.formatTime(input.lastRun.startedAt), figures.errors), failing: figures.errors.length > 0 };
    });
    const held = input.held.map(m => ({ mailboxId: m.mailboxId, uid: m.uid, subject: m.subject || s.noSubject, folder: m.mailboxPath, account: m.account, date: input.formatTime(m.idate) }));
    return { outgoing, usage, health, held };
}

/** Bytes in words a villager reads: 0 B, 12 KB, 3.4 MB. */
export function formatBytes(bytes: number): string {
    if (bytes < 1024) return `${bytes} B`;
    if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
    if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MB`;
    return `${(bytes / 1024 ** 3).toFixed(2)} GB`;
}
