/**
 * The `messages` table's writes shared by every way mail arrives or moves (APPEND, delivery,
 * the uplink, COPY/MOVE): a row takes the mailbox's next UID and a new modseq, and remembers
 * its keywords for FLAGS. Each runs inside the caller's transaction.
 */
import type { Tx } from '../connection';
import { insertBlob } from '../blob-rows';
import { isSystemFlag } from '../flags';
import type { AnalysedMessage } from '../mime';
import type { UpstreamRef } from '../types';
import { appendJournal, bumpModseq } from './journal';

/**
 * messages.stub: 0 a message as it came (or one not from the uplink); 1 a stub of a message too
 * large to download whole ("Fetch full" brings it); STUB_NOTE a note standing in for a message
 * the store refuses for good (too complex), left on the provider (src/uplink/too-complex.ts): no
 * "Fetch full" for it, `mailmule status` counts them (SyncState.leftUpstream), and expunging one
 * dismisses the note, never deletes the original upstream (expunge.ts).
 */
export const STUB_NOTE = 2;

/** Adds custom keywords to the mailbox's list (FLAGS/PERMANENTFLAGS on SELECT), at most 256. */
export function rememberKeywords(tx: Tx, mailboxId: number, flags: string[]): void {
    const keywords = flags.filter(flag => !isSystemFlag(flag));
    if (!keywords.length) {
        return;
    }
    const known = JSON.parse(tx.stmt('SELECT keywords FROM mailboxes WHERE id = ?').pluck().get(mailboxId) as string) as string[];
    const lower = new Set(known.map(k => k.toLowerCase()));
    const added = keywords.filter(k => !lower.has(k.toLowerCase()));
    if (added.length) {
        tx.stmt('UPDATE mailboxes SET keywords = ? WHERE id = ?').run(JSON.stringify([...known, ...added].slice(0, 256)), mailboxId);
    }
}

/** Inserts a message row (its blob row already referenced); returns its UID and modseq. Not journalled. */
export function insertMessageRow(
    tx: Tx,
    mailboxId: number,
    blobHash: string,
    size: number,
    messageId: string | null,
    flags: string[],
    idate: number,
    upstream: UpstreamRef | null
): { uid: number; modseq: number } {
    const uid = tx.stmt('UPDATE mailboxes SET uid_next = uid_next + 1 WHERE id = ? RETURNING uid_next - 1').pluck().get(mailboxId) as number;
    const modseq = bumpModseq(tx, mailboxId);
    const { lastInsertRowid: id } = tx
        .stmt(
            `INSERT INTO messages (mailbox_id, uid, modseq, flags, seen, deleted, idate, size, blob_hash, message_id,
                               upstream_account, upstream_folder, upstream_uidvalidity, upstream_uid)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
        )
        .run(
            mailboxId,
            uid,
            modseq,
            JSON.stringify(flags),
            flags.includes('\\Seen') ? 1 : 0,
            flags.includes('\\Deleted') ? 1 : 0,
            idate,
            size,
            blobHash,
            messageId,
            upstream?.account ?? null,
            upstream?.folder ?? null,
            upstream?.uidValidity ?? null,
            upstream?.uid ?? null
        );
    rememberKeywords(tx, mailboxId, flags);
    insertHeaderSummary(tx, Number(id), blobHash);
    return { uid, modseq };
}

/**
 * The header summary (header-summary.ts) of the message row just inserted: from the message
 * analysed in this transaction, else copied from another message row of the same content (a COPY,
 * a link by the uplink). Without either the row has none, and FETCH reads its whole header.
 */
function insertHeaderSummary(tx: Tx, id: number, blobHash: string): void {
    const summary = tx.headerSummaries.get(blobHash);
    if (summary) {
        tx.stmt('INSERT INTO message_headers (id, fields, lines) VALUES (?, ?, ?)').run(id, summary.fields, summary.lines);
        return;
    }
    tx.stmt(
        `INSERT INTO message_headers (id, fields, lines)
         SELECT ?, h.fields, h.lines FROM messages m JOIN message_headers h ON h.id = m.id WHERE m.blob_hash = ? AND m.id <> ? LIMIT 1`
    ).run(id, blobHash, id);
}

/**
 * Stores one analysed message (its file already written) in a mailbox and journals it. With
 * `dedupeByMessageId`, only the copy mailmule filed itself stands in for the client's, and only
 * once: any other APPEND (an edited message re-saved under the same Message-ID) is stored.
 * `existing` says the filed copy was used.
 */
export function insertIntoMailbox(
    tx: Tx,
    mailboxId: number,
    message: AnalysedMessage,
    flags: string[],
    idate: number,
    upstream: UpstreamRef | null,
    options: { ignoreSession?: string; dedupeByMessageId?: boolean }
): { uid: number; modseq: number; existing: boolean } {
    if (options.dedupeByMessageId && message.messageId) {
        const filed = tx.stmt('SELECT uid, modseq FROM messages WHERE mailbox_id = ? AND message_id = ? AND filed_by_gateway = 1 ORDER BY uid LIMIT 1').get(mailboxId, message.messageId) as
            { uid: number; modseq: number } | undefined;
        if (filed) {
            tx.stmt('UPDATE messages SET filed_by_gateway = 0 WHERE mailbox_id = ? AND uid = ?').run(mailboxId, filed.uid);
            return { ...filed, existing: true };
        }
    }
    insertBlob(tx, message);
    const { uid, modseq } = insertMessageRow(tx, mailboxId, message.hash, message.size, message.messageId, flags, idate, upstream);
    appendJournal(tx, mailboxId, { command: 'EXISTS', uid, modseq, ignore: options.ignoreSession });
    return { uid, modseq, existing: false };
}

/** Deletes one message row and journals the EXPUNGE; returns the change's modseq. The caller releases its blob. */
export function deleteMessageRow(tx: Tx, mailboxId: number, uid: number, ignoreSession?: string): number {
    tx.stmt('DELETE FROM messages WHERE mailbox_id = ? AND uid = ?').run(mailboxId, uid);
    const modseq = bumpModseq(tx, mailboxId);
    appendJournal(tx, mailboxId, { command: 'EXPUNGE', uid, modseq, ignore: ignoreSession });
    return modseq;
}

/**
 * Rows of `uids` in a mailbox, in UID order: one range scan between the lowest and highest UID,
 * then filtered, which is faster than an IN list for the ranges clients send.
 */
export function selectByUids<Row extends { uid: number }>(tx: Tx, mailboxId: number, uids: number[], columns: string): Row[] {
    if (!uids.length) {
        return [];
    }
    const sorted = uids.length > 1 && uids.some((uid, i) => i && uid < uids[i - 1]) ? [...uids].sort((a, b) => a - b) : uids;
    const wanted = new Set(sorted);
    const rows = tx.stmt(`SELECT ${columns} FROM messages WHERE mailbox_id = ? AND uid BETWEEN ? AND ? ORDER BY uid`).all(mailboxId, sorted[0], sorted[sorted.length - 1]) as Row[];
    return rows.filter(row => wanted.has(row.uid));
}
