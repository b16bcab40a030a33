/** FETCH: message rows a page at a time, and the raw bytes through message-files.ts. */
import v8 from 'node:v8';
import type { Connection } from '../connection';
import type { MailboxIndex } from './mailbox-index';
import type { MimeNode } from '../mime';
import type { MessageFiles } from '../message-files';
import { unpackMimeTree, withRootHeader } from '../blob-rows';
import type { FetchColumns, FetchedMessage } from '../types';

/**
 * Messages of a mailbox for FETCH, in UID order, a page at a time (better-sqlite3 cannot run
 * writes while a cursor is open, and FETCH may mark messages \Seen as it goes). [] when the
 * mailbox is not the user's. When no per-message column beyond the index's is asked for (FLAGS,
 * UID, MODSEQ, RFC822.SIZE, INTERNALDATE), the rows come from the mailbox index
 * (mailbox-index.ts). The returned objects are read-only.
 */
export function fetchPage(db: Connection, files: MessageFiles, index: MailboxIndex, userId: number, mailboxId: number, uids: number[], columns: FetchColumns, changedSince = 0): FetchedMessage[] {
    if (!uids.length) {
        return [];
    }
    if (!columns.envelope && !columns.bodystructure && !columns.mimeTree) {
        const messages = fromIndex(index.messages(db, userId, mailboxId), uids, changedSince);
        if (columns.headerLines) return messages.map(message => ({ ...message, headerLines: files.readRootHeaderLines(message.blobHash) }));
        return columns.headerSummary ? withHeaderSummaries(db, mailboxId, messages) : messages;
    }
    // Hot path (a FETCH 1:* of 10,000 messages): ownership checked once, raw rows, no Set for a
    // contiguous page, each distinct flags string parsed once.
    if (!db.stmt('SELECT 1 FROM mailboxes WHERE id = ? AND user_id = ?').get(mailboxId, userId)) {
        return [];
    }
    const extra: string[] = [];
    if (columns.envelope) extra.push('b.envelope');
    if (columns.bodystructure) extra.push('b.bodystructure');
    if (columns.mimeTree) extra.push('b.mime_tree');
    if (columns.headerSummary) extra.push('s.fields', 's.lines');
    const joins = [];
    if (extra.some(column => column.startsWith('b.'))) joins.push('JOIN blobs b ON b.hash = m.blob_hash');
    if (columns.headerSummary) joins.push('LEFT JOIN message_headers s ON s.id = m.id');
    const join = joins.join(' ');
    const statement = db.rawStmt(`SELECT m.uid, m.modseq, m.flags, m.idate, m.size, m.blob_hash${extra.length ? ', ' + extra.join(', ') : ''}
                     FROM messages m ${join}
                     WHERE m.mailbox_id = ? AND m.uid BETWEEN ? AND ? AND m.modseq > ?
                     ORDER BY m.uid`);
    const first = uids[0];
    const last = uids[uids.length - 1];
    const wanted = last - first + 1 === uids.length ? null : new Set(uids);
    // Raw rows: uid, modseq, flags, idate, size, blob_hash, then the asked-for columns in order.
    const rows = statement.all(mailboxId, first, last, changedSince) as unknown[][];
    const parsedFlags = new Map<string, string[]>();
    const out: FetchedMessage[] = [];
    for (const row of rows) {
        const uid = row[0] as number;
        if (wanted && !wanted.has(uid)) {
            continue;
        }
        const flagsText = row[2] as string;
        let flags = parsedFlags.get(flagsText);
        if (!flags) {
            flags = JSON.parse(flagsText) as string[];
            parsedFlags.set(flagsText, flags);
        }
        // Messages with the same flags share one array (read-only: callers replace it, never change it).
        const message: FetchedMessage = { uid, modseq: row[1] as number, flags, idate: row[3] as number, size: row[4] as number, blobHash: row[5] as string };
        let index = 6;
        if (columns.envelope) message.envelope = v8.deserialize(row[index++] as Buffer) as unknown[];
        if (columns.bodystructure) message.bodystructure = v8.deserialize(row[index++] as Buffer) as unknown[];
        if (columns.mimeTree) message.mimeTree = withRootHeader(v8.deserialize(unpackMimeTree(row[index++] as Buffer)) as MimeNode, () => files.readRootHeaderLines(message.blobHash));
        // A message without a summary row (LEFT JOIN) has null: FETCH reads its whole header from the file.
        if (columns.headerLines) message.headerLines = files.readRootHeaderLines(message.blobHash);
        if (columns.headerSummary) message.headerSummary = row[index] === null ? null : { fields: row[index] as number, lines: row[index + 1] as string };
        out.push(message);
    }
    return out;
}

/**
 * The index's messages of a page with their header summaries: the page's rows of the
 * (mailbox_id, uid) index, which hold the message ids, and message_headers by id, both read in
 * order. New objects: the index's own are shared.
 */
function withHeaderSummaries(db: Connection, mailboxId: number, messages: FetchedMessage[]): FetchedMessage[] {
    if (!messages.length) return messages;
    const rows = db
        .rawStmt(
            `SELECT m.uid, h.fields, h.lines FROM messages m JOIN message_headers h ON h.id = m.id
             WHERE m.mailbox_id = ? AND m.uid BETWEEN ? AND ? ORDER BY m.uid`
        )
        .all(mailboxId, messages[0].uid, messages[messages.length - 1].uid) as [uid: number, fields: number, lines: string][];
    const out = new Array<FetchedMessage>(messages.length);
    let next = 0;
    for (let position = 0; position < messages.length; position++) {
        const message = messages[position];
        while (next < rows.length && rows[next][0] < message.uid) next++;
        const row = next < rows.length && rows[next][0] === message.uid ? rows[next] : null;
        // Its fields listed, not spread: one object of a fixed shape per message (a 1:* fetch makes 10,000).
        out[position] = {
            uid: message.uid,
            modseq: message.modseq,
            flags: message.flags,
            idate: message.idate,
            size: message.size,
            blobHash: message.blobHash,
            headerSummary: row ? { fields: row[1], lines: row[2] } : null
        };
    }
    return out;
}

/**
 * The messages of `uids` (ascending) with a modseq above `changedSince`, from the mailbox index:
 * a binary search for the first, then a walk. The objects are the index's own (read-only).
 */
function fromIndex(all: readonly FetchedMessage[] | null, uids: number[], changedSince: number): FetchedMessage[] {
    if (!all) {
        return [];
    }
    const first = uids[0];
    const last = uids[uids.length - 1];
    const wanted = last - first + 1 === uids.length ? null : new Set(uids);
    let low = 0;
    let high = all.length;
    while (low < high) {
        const mid = (low + high) >>> 1;
        if (all[mid].uid < first) low = mid + 1;
        else high = mid;
    }
    const out: FetchedMessage[] = [];
    for (let position = low; position < all.length && all[position].uid <= last; position++) {
        const message = all[position];
        if (message.modseq > changedSince && (!wanted || wanted.has(message.uid))) out.push(message);
    }
    return out;
}
