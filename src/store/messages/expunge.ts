/** EXPUNGE: removes \Deleted messages; a synced one is remembered for deletion upstream. */
import type { Tx } from '../connection';
import { releaseBlobs } from '../blob-rows';
import { deleteMessageRow, STUB_NOTE } from './rows';

interface ExpungeDbRow {
    uid: number;
    blob_hash: string;
    upstream_account: string | null;
    upstream_folder: string | null;
    upstream_uidvalidity: number | null;
    upstream_uid: number | null;
    stub: number;
}

/** Inside `tx`, for a mailbox whose ownership the caller has checked. Returns the removed UIDs in order. */
export function expungeDeleted(tx: Tx, mailboxId: number, options: { uids?: number[]; ignoreSession?: string }): { uid: number; modseq: number }[] {
    let rows = tx
        .stmt('SELECT uid, blob_hash, upstream_account, upstream_folder, upstream_uidvalidity, upstream_uid, stub FROM messages WHERE mailbox_id = ? AND deleted = 1 ORDER BY uid')
        .all(mailboxId) as ExpungeDbRow[];
    if (options.uids) {
        const wanted = new Set(options.uids);
        rows = rows.filter(row => wanted.has(row.uid));
    }
    const out: { uid: number; modseq: number }[] = [];
    for (const row of rows) {
        const modseq = deleteMessageRow(tx, mailboxId, row.uid, options.ignoreSession);
        out.push({ uid: row.uid, modseq });
        // The uplink deletes it upstream too when the account says deleteUpstream; not for a note
        // standing in for a message left there (STUB_NOTE): the user dismisses the note, never
        // having seen the message here.
        if (row.upstream_uid !== null && row.stub !== STUB_NOTE) {
            tx.stmt('INSERT OR IGNORE INTO sync_deletions (account, folder, uid_validity, uid, created_at) VALUES (?, ?, ?, ?, ?)').run(
                row.upstream_account,
                row.upstream_folder,
                row.upstream_uidvalidity,
                row.upstream_uid,
                Date.now()
            );
        }
    }
    releaseBlobs(
        tx,
        rows.map(row => row.blob_hash)
    );
    return out;
}
