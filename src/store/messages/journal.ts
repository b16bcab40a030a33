/**
 * The change journal: what happened to a mailbox, by modseq, so that every other session (IDLE
 * or not) catches up. A change's modseq and its journal entry are written in the transaction
 * that makes the change, so modseq order is commit order and a reader never misses or repeats one.
 */
import type { Reader, Tx } from '../connection';
import type { JournalEntry } from '../types';

/** Raises the mailbox's HIGHESTMODSEQ; returns the new value, the change's modseq. */
export function bumpModseq(tx: Tx, mailboxId: number): number {
    return tx.stmt('UPDATE mailboxes SET modify_index = modify_index + 1 WHERE id = ? RETURNING modify_index').pluck().get(mailboxId) as number;
}

export function appendJournal(tx: Tx, mailboxId: number, entry: JournalEntry): void {
    tx.stmt('INSERT INTO journal (mailbox_id, modseq, command, uid, flags, ignore_session, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)').run(
        mailboxId,
        entry.modseq,
        entry.command,
        entry.uid,
        entry.flags ? JSON.stringify(entry.flags) : null,
        entry.ignore ?? null,
        Date.now()
    );
}

interface JournalDbRow {
    id: number;
    command: JournalEntry['command'];
    uid: number;
    modseq: number;
    flags: string | null;
    ignore_session: string | null;
}

/** Journal entries of a mailbox after `sinceModseq`, oldest first. */
export function journalSince(db: Reader, mailboxId: number, sinceModseq: number): JournalEntry[] {
    const rows = db
        .stmt('SELECT rowid AS id, command, uid, modseq, flags, ignore_session FROM journal WHERE mailbox_id = ? AND modseq > ? ORDER BY modseq')
        .all(mailboxId, sinceModseq) as JournalDbRow[];
    return rows.map(row => {
        const entry: JournalEntry = { id: row.id, command: row.command, uid: row.uid, modseq: row.modseq };
        if (row.flags) entry.flags = JSON.parse(row.flags) as string[];
        if (row.ignore_session) entry.ignore = row.ignore_session;
        return entry;
    });
}

/** Forgets entries older than `maxAgeMs`: a session away longer than that re-reads the mailbox. */
export function pruneJournal(tx: Tx, maxAgeMs: number): number {
    return tx.stmt('DELETE FROM journal WHERE created_at < ?').run(Date.now() - maxAgeMs).changes;
}
