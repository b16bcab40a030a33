/**
 * Header summaries (header-summary.ts) for message rows that have none: every message of a store
 * from before schema migration 12, and any row inserted without one. Read from each message's file,
 * in batches, each its own transaction: interrupted, it goes on where it stopped at the next start.
 */
import type { Connection } from '../connection';
import { summariseHeader } from '../header-summary';
import type { MessageFiles } from '../message-files';

const BATCH = 500;

/** Fills the missing summaries; returns how many were filled. A message whose file cannot be read keeps none (FETCH reads its file). */
export function fillHeaderSummaries(db: Connection, files: MessageFiles): number {
    let filled = 0;
    let after = 0;
    for (;;) {
        const rows = db
            .rawStmt(
                `SELECT m.id, m.blob_hash FROM messages m
                 WHERE m.id > ? AND NOT EXISTS (SELECT 1 FROM message_headers h WHERE h.id = m.id)
                 ORDER BY m.id LIMIT ${BATCH}`
            )
            .all(after) as [id: number, hash: string][];
        if (!rows.length) return filled;
        after = rows[rows.length - 1][0];
        const summaries: [number, number, string][] = [];
        const byHash = new Map<string, ReturnType<typeof summariseHeader>>();
        for (const [id, hash] of rows) {
            let summary = byHash.get(hash);
            if (!summary) {
                try {
                    summary = summariseHeader(files.readRootHeaderLines(hash));
                } catch {
                    continue;
                }
                byHash.set(hash, summary);
            }
            summaries.push([id, summary.fields, summary.lines]);
        }
        filled += db.write(tx => {
            let inserted = 0;
            for (const [id, fields, lines] of summaries) {
                // The row may have gone (expunged) since it was read: only a message that is still there gets one.
                inserted += tx.stmt('INSERT OR IGNORE INTO message_headers (id, fields, lines) SELECT id, ?, ? FROM messages WHERE id = ?').run(fields, lines, id).changes;
            }
            return inserted;
        });
    }
}
