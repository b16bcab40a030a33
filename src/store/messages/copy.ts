/** COPY and MOVE (RFC 6851): the copies share the source's message file and blob row. */
import type { Tx } from '../connection';
import { addBlobRef, releaseBlobs } from '../blob-rows';
import { StoreError } from '../errors';
import { mailboxById, mailboxByPath } from '../mailboxes';
import type { CopyResult } from '../types';
import { appendJournal } from './journal';
import { deleteMessageRow, insertMessageRow, selectByUids } from './rows';

interface CopyDbRow {
    uid: number;
    flags: string;
    idate: number;
    size: number;
    blob_hash: string;
    message_id: string | null;
    upstream_account: string | null;
    upstream_folder: string | null;
    upstream_uidvalidity: number | null;
    upstream_uid: number | null;
    upstream_flags: string | null;
    stub: number;
}

/**
 * Copies `uids` into the user's mailbox at `destinationPath`; with `move`, also removes them from
 * the source, in the same transaction. Returns the UID mapping for COPYUID. Throws TRYCREATE
 * when either mailbox is not the user's.
 */
export function copyMessages(tx: Tx, userId: number, mailboxId: number, uids: number[], destinationPath: string, options: { move: boolean; ignoreSession?: string }): CopyResult {
    const source = mailboxById(tx, userId, mailboxId);
    const destination = mailboxByPath(tx, userId, destinationPath);
    if (!source || !destination) {
        throw new StoreError('TRYCREATE', 'no such mailbox');
    }
    const rows = selectByUids<CopyDbRow>(
        tx,
        mailboxId,
        uids,
        'uid, flags, idate, size, blob_hash, message_id, upstream_account, upstream_folder, upstream_uidvalidity, upstream_uid, upstream_flags, stub'
    );
    const sourceUid: number[] = [];
    const destinationUid: number[] = [];
    const expunged: { uid: number; modseq: number }[] = [];
    for (const row of rows) {
        addBlobRef(tx, row.blob_hash);
        const flags = JSON.parse(row.flags) as string[];
        // A moved message is still the same upstream message (and still a stub); a copy is a new local one.
        const carry = options.move && row.upstream_uid !== null;
        if (carry) {
            tx.stmt('UPDATE messages SET upstream_uid = NULL WHERE mailbox_id = ? AND uid = ?').run(mailboxId, row.uid);
        }
        const added = insertMessageRow(
            tx,
            destination.id,
            row.blob_hash,
            row.size,
            row.message_id,
            flags,
            row.idate,
            carry ? { account: row.upstream_account!, folder: row.upstream_folder!, uidValidity: row.upstream_uidvalidity!, uid: row.upstream_uid! } : null
        );
        if (carry || row.stub) {
            tx.stmt('UPDATE messages SET upstream_flags = ?, stub = ? WHERE mailbox_id = ? AND uid = ?').run(carry ? row.upstream_flags : null, row.stub, destination.id, added.uid);
        }
        // Into the source mailbox itself, the acting session announces the copy (and no other session is it).
        appendJournal(tx, destination.id, {
            command: 'EXISTS',
            uid: added.uid,
            modseq: added.modseq,
            ignore: destination.id === source.id ? options.ignoreSession : undefined
        });
        sourceUid.push(row.uid);
        destinationUid.push(added.uid);
    }
    if (options.move) {
        for (const row of rows) {
            expunged.push({ uid: row.uid, modseq: deleteMessageRow(tx, mailboxId, row.uid, options.ignoreSession) });
        }
        // The blob references moved with the rows: one added per copy, one dropped per delete.
        releaseBlobs(
            tx,
            rows.map(row => row.blob_hash)
        );
    }
    if (sourceUid.length) {
        tx.changed(userId);
    }
    return { uidValidity: destination.uidValidity, sourceUid, destinationUid, expunged };
}
