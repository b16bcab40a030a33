/** SEARCH (compiled to SQL by ../search.ts), SORT and THREAD's records, and new UIDs. */
import v8 from 'node:v8';
import type { Reader } from '../connection';
import { compileSearch, type SearchTerm } from '../search';
import { splitSummaryLines } from '../header-summary';
import type { MessageFiles } from '../message-files';
import type { SortRecord } from '../sort';
import type { SearchResult } from '../types';

/** SEARCH in a mailbox of the user's; nothing matches in another's. */
export function searchMessages(db: Reader, userId: number, mailboxId: number, terms: SearchTerm[]): SearchResult {
    const compiled = compileSearch(terms);
    const sql = `SELECT m.uid, m.modseq FROM messages m ${compiled.needsBlob ? 'JOIN blobs b ON b.hash = m.blob_hash' : ''}
                 WHERE m.mailbox_id = ? AND m.mailbox_id IN (SELECT id FROM mailboxes WHERE user_id = ?) AND (${compiled.where})
                 ORDER BY m.uid`;
    const rows = db.prepare(sql).all(mailboxId, userId, ...compiled.params) as { uid: number; modseq: number }[];
    let highestModseq = 0;
    for (const row of rows) {
        if (row.modseq > highestModseq) highestModseq = row.modseq;
    }
    return { uids: rows.map(row => row.uid), highestModseq, modseqByUid: new Map(rows.map(row => [row.uid, row.modseq])) };
}

interface SortDbRow {
    uid: number;
    idate: number;
    size: number;
    sent_date: number | null;
    envelope?: Buffer;
    blob_hash: string;
    header_lines?: string | null;
}

/**
 * SORT and THREAD: what their keys are computed from (sort.ts), for `uids` of a mailbox in
 * UID order. The envelope (subject, addresses) and the raw header lines (THREAD's
 * References) are deserialised only when asked for: they are most of the cost.
 */
export function sortRecords(db: Reader, files: MessageFiles, userId: number, mailboxId: number, uids: number[], columns: { envelope: boolean; headerLines: boolean }): SortRecord[] {
    const sql = `SELECT m.uid, m.idate, m.size, b.sent_date, m.blob_hash${columns.envelope ? ', b.envelope' : ''}${columns.headerLines ? ', h.lines AS header_lines' : ''}
                 FROM messages m JOIN blobs b ON b.hash = m.blob_hash${columns.headerLines ? ' LEFT JOIN message_headers h ON h.id = m.id' : ''}
                 WHERE m.mailbox_id = ? AND m.mailbox_id IN (SELECT id FROM mailboxes WHERE user_id = ?)
                   AND m.uid IN (SELECT value FROM json_each(?))
                 ORDER BY m.uid`;
    const rows = db.stmt(sql).all(mailboxId, userId, JSON.stringify(uids)) as SortDbRow[];
    return rows.map(row => ({
        uid: row.uid,
        idate: row.idate,
        size: row.size,
        sentDate: row.sent_date,
        envelope: row.envelope ? (v8.deserialize(row.envelope) as unknown[]) : [],
        // THREAD's fields (Message-ID, References, In-Reply-To) are in the header summary; a message without one is read from its file.
        headerLines: !columns.headerLines ? undefined : typeof row.header_lines === 'string' ? splitSummaryLines(row.header_lines) : files.readRootHeaderLines(row.blob_hash)
    }));
}

/** UIDs in a mailbox above `afterUid`, ascending (what a session has not been told of yet). */
export function uidsAfter(db: Reader, mailboxId: number, afterUid: number): number[] {
    return db.stmt('SELECT uid FROM messages WHERE mailbox_id = ? AND uid > ? ORDER BY uid').pluck().all(mailboxId, afterUid) as number[];
}
