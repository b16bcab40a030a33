/**
 * The uplink's state in the store: per upstream folder how far its headers have been read, the
 * bodies still to download, the link between a local message and its upstream original (with
 * the flags the provider last had), deletions to push, and the messages the uplink stores.
 */
import v8 from 'node:v8';
import { addBlobRef, insertBlob, releaseBlobs } from './blob-rows';
import type { Connection, Tx } from './connection';
import { StoreError } from './errors';
import { canonicalFlags } from './flags';
import { mailboxById } from './mailboxes';
import type { MessageFiles } from './message-files';
import { normaliseMessageId, type AnalysedMessage } from './mime';
import { appendJournal } from './messages/journal';
import { deleteMessageRow, insertMessageRow, STUB_NOTE } from './messages/rows';
import type { LinkedMessage, PendingDownload, SyncFolderState, UpstreamRef } from './types';

/** One upstream message seen in the header pass. */
export interface UpstreamHeader {
    uid: number;
    size: number;
    messageId: string | null;
    idate: number;
    flags: string[];
    /** Its identity within the account (src/uplink/identity.ts); null when none is known. */
    key: string | null;
}

/** A stub (a message too large for the uplink, left upstream) and where it is here. */
export interface HeldMessage {
    mailboxId: number;
    mailboxPath: string;
    uid: number;
    account: string;
    subject: string | null;
    idate: number;
}

/** A stub in "Fetch full", with where its original is upstream. */
export interface StubRequest {
    uid: number;
    ref: UpstreamRef;
    flags: string[];
    idate: number;
}

interface SyncFolderDbRow {
    uid_validity: number;
    last_uid: number;
    highest_modseq: number;
    last_flag_scan: number;
}

interface PendingDbRow {
    account: string;
    folder: string;
    uid_validity: number;
    uid: number;
    size: number;
    message_id: string | null;
    idate: number;
    flags: string;
    upstream_key: string | null;
}

interface LinkedDbRow {
    mailbox_id: number;
    user_id: number;
    uid: number;
    upstream_uid: number;
    flags: string;
    upstream_flags: string | null;
    message_id: string | null;
    size: number;
    idate: number;
}

interface StubDbRow {
    uid: number;
    upstream_account: string;
    upstream_folder: string;
    upstream_uidvalidity: number;
    upstream_uid: number;
    flags: string;
    idate: number;
}

const LINKED_COLUMNS = 'm.mailbox_id, mb.user_id, m.uid, m.upstream_uid, m.flags, m.upstream_flags, m.message_id, m.size, m.idate';

function linkedFromRow(row: LinkedDbRow): LinkedMessage {
    return {
        userId: row.user_id,
        mailboxId: row.mailbox_id,
        uid: row.uid,
        upstreamUid: row.upstream_uid,
        flags: JSON.parse(row.flags) as string[],
        upstreamFlags: row.upstream_flags ? (JSON.parse(row.upstream_flags) as string[]) : null,
        messageId: row.message_id,
        size: row.size,
        idate: row.idate
    };
}

function saveFolder(tx: Tx, state: SyncFolderState): void {
    tx.stmt(
        `INSERT INTO sync_folders (account, folder, uid_validity, last_uid, highest_modseq, last_flag_scan) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (account, folder) DO UPDATE SET uid_validity = excluded.uid_validity, last_uid = excluded.last_uid,
            highest_modseq = excluded.highest_modseq, last_flag_scan = excluded.last_flag_scan`
    ).run(state.account, state.folder, state.uidValidity, state.lastUid, state.highestModseq, state.lastFlagScan);
}

function dropPending(tx: Tx, ref: UpstreamRef): void {
    tx.stmt('DELETE FROM sync_pending WHERE account = ? AND folder = ? AND uid_validity = ? AND uid = ?').run(ref.account, ref.folder, ref.uidValidity, ref.uid);
}

function isLinked(tx: Tx, ref: UpstreamRef): boolean {
    return Boolean(
        tx.stmt('SELECT 1 FROM messages WHERE upstream_account = ? AND upstream_folder = ? AND upstream_uidvalidity = ? AND upstream_uid = ?').get(ref.account, ref.folder, ref.uidValidity, ref.uid)
    );
}

/** Links the mailbox's first unlinked message with this Message-ID to the upstream one; false when there is none. */
function linkByMessageId(tx: Tx, mailboxId: number, messageId: string, ref: UpstreamRef, upstreamFlags: string, key: string | null): boolean {
    // INDEXED BY: without statistics SQLite would walk the mailbox's UID order for the ORDER BY,
    // reading every row of the mailbox per lookup (a first sync of n messages: n² rows).
    const local = tx
        .stmt('SELECT id FROM messages INDEXED BY messages_mailbox_message_id WHERE mailbox_id = ? AND message_id = ? AND upstream_uid IS NULL ORDER BY uid LIMIT 1')
        .get(mailboxId, messageId) as { id: number } | undefined;
    if (!local) return false;
    tx.stmt('UPDATE messages SET upstream_account = ?, upstream_folder = ?, upstream_uidvalidity = ?, upstream_uid = ?, upstream_flags = ?, upstream_key = ? WHERE id = ?').run(
        ref.account,
        ref.folder,
        ref.uidValidity,
        ref.uid,
        upstreamFlags,
        key,
        local.id
    );
    return true;
}

/**
 * A message of the same account that is already home under `key` (another upstream folder, a
 * Gmail label), in one of the user's mailboxes: what a new row needs to share its message file.
 */
function homeCopy(tx: Tx, userId: number, account: string, key: string): { blob_hash: string; size: number; message_id: string | null; stub: number } | undefined {
    return tx
        .stmt(
            `SELECT m.blob_hash, m.size, m.message_id, m.stub FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id
             WHERE m.upstream_account = ? AND m.upstream_key = ? AND mb.user_id = ? LIMIT 1`
        )
        .get(account, key, userId) as { blob_hash: string; size: number; message_id: string | null; stub: number } | undefined;
}

/**
 * Files the upstream message `ref` in `mailboxId` as a new row sharing the message file of its
 * copy already home under `key`, linked to `ref`: nothing is downloaded. Returns its UID, or
 * null when no copy is home.
 */
function linkToHomeCopy(tx: Tx, userId: number, mailboxId: number, ref: UpstreamRef, key: string, flags: string[], idate: number): number | null {
    const home = homeCopy(tx, userId, ref.account, key);
    if (!home) return null;
    addBlobRef(tx, home.blob_hash);
    const { uid, modseq } = insertMessageRow(tx, mailboxId, home.blob_hash, home.size, home.message_id, flags, idate, ref);
    tx.stmt('UPDATE messages SET upstream_flags = ?, upstream_key = ?, stub = ? WHERE mailbox_id = ? AND uid = ?').run(JSON.stringify(flags), key, home.stub, mailboxId, uid);
    appendJournal(tx, mailboxId, { command: 'EXISTS', uid, modseq });
    tx.changed(userId);
    return uid;
}

/** How a downloaded upstream message is filed (importUpstream). */
export interface UpstreamImportOptions {
    flags: string[];
    idate: number;
    stub?: boolean;
    key?: string | null;
    standsIn?: boolean;
}

/** One downloaded message for importUpstreamBatch. */
export interface UpstreamDownload {
    raw: Buffer;
    analysed: AnalysedMessage;
    ref: UpstreamRef;
    options: UpstreamImportOptions;
    /** What stageUpstream returned for it, if it was staged. */
    staged?: Promise<void>;
}

/**
 * The rows of one downloaded upstream message, inside the caller's transaction (the mailbox
 * checked): its pending row goes, and the message is inserted unless that upstream message, or
 * its Message-ID in the mailbox, is here already (then null).
 */
function importUpstreamRow(tx: Tx, userId: number, mailboxId: number, analysed: AnalysedMessage, ref: UpstreamRef, options: UpstreamImportOptions): number | null {
    const flags = canonicalFlags(options.flags);
    dropPending(tx, ref);
    if (isLinked(tx, ref)) {
        return null;
    }
    if (analysed.messageId && linkByMessageId(tx, mailboxId, analysed.messageId, ref, JSON.stringify(flags), options.key ?? null)) {
        return null;
    }
    insertBlob(tx, analysed);
    return insertUpstreamMessage(tx, userId, mailboxId, { hash: analysed.hash, size: analysed.size, messageId: analysed.messageId }, flags, ref, options);
}

/**
 * importUpstreamRow for a message whose bytes are here already under `hash` (relay mode's
 * messageRef): a new row sharing that message file. 'missing' when no message file has that
 * hash here (nothing changed).
 */
function importHeldRow(tx: Tx, userId: number, mailboxId: number, hash: string, ref: UpstreamRef, options: UpstreamImportOptions): number | null | 'missing' {
    const flags = canonicalFlags(options.flags);
    if (isLinked(tx, ref)) return null;
    const held = tx.stmt('SELECT size, message_id FROM blobs WHERE hash = ?').get(hash) as { size: number; message_id: string | null } | undefined;
    if (!held) return 'missing';
    dropPending(tx, ref);
    if (held.message_id && linkByMessageId(tx, mailboxId, held.message_id, ref, JSON.stringify(flags), options.key ?? null)) return null;
    addBlobRef(tx, hash);
    return insertUpstreamMessage(tx, userId, mailboxId, { hash, size: held.size, messageId: held.message_id }, flags, ref, options);
}

/**
 * The message row of an upstream message whose blob row is in place (the caller has inserted it or
 * added a reference to it), with its upstream state, journalled as EXISTS. Returns its UID.
 */
function insertUpstreamMessage(
    tx: Tx,
    userId: number,
    mailboxId: number,
    blob: { hash: string; size: number; messageId: string | null },
    flags: string[],
    ref: UpstreamRef,
    options: UpstreamImportOptions
): number {
    const { uid, modseq } = insertMessageRow(tx, mailboxId, blob.hash, blob.size, blob.messageId, flags, options.idate, ref);
    tx.stmt('UPDATE messages SET upstream_flags = ?, stub = ?, upstream_key = ? WHERE mailbox_id = ? AND uid = ?').run(
        JSON.stringify(flags),
        options.standsIn ? STUB_NOTE : options.stub ? 1 : 0,
        options.key ?? null,
        mailboxId,
        uid
    );
    appendJournal(tx, mailboxId, { command: 'EXISTS', uid, modseq });
    tx.changed(userId);
    return uid;
}

export class SyncState {
    constructor(
        private readonly db: Connection,
        private readonly files: MessageFiles
    ) {}

    getFolder(account: string, folder: string): SyncFolderState | null {
        const row = this.db.stmt('SELECT uid_validity, last_uid, highest_modseq, last_flag_scan FROM sync_folders WHERE account = ? AND folder = ?').get(account, folder) as
            SyncFolderDbRow | undefined;
        return row ? { account, folder, uidValidity: row.uid_validity, lastUid: row.last_uid, highestModseq: row.highest_modseq, lastFlagScan: row.last_flag_scan } : null;
    }

    saveFolder(state: SyncFolderState): void {
        this.db.write(tx => saveFolder(tx, state));
    }

    /** Where each of the account's upstream folders lands locally, as kept since its first run (folder → local path). */
    localPaths(account: string): Map<string, string> {
        const rows = this.db.stmt('SELECT folder, local_path FROM sync_folders WHERE account = ? AND local_path IS NOT NULL').all(account) as { folder: string; local_path: string }[];
        return new Map(rows.map(row => [row.folder, row.local_path]));
    }

    /** Keeps where an upstream folder lands locally (once its sync state exists; before that, nothing). */
    setLocalPath(account: string, folder: string, localPath: string): void {
        this.db.write(tx => tx.stmt('UPDATE sync_folders SET local_path = ? WHERE account = ? AND folder = ? AND local_path IS NOT ?').run(localPath, account, folder, localPath));
    }

    /**
     * Records upstream headers seen in one batch: a message whose Message-ID the local mailbox
     * already holds (delivered locally, or sent from here) is linked to that copy; the others
     * wait in sync_pending for their bodies. The folder's last seen UID advances in the same
     * commit, so a cut link never makes us list or download a message twice. Throws NONEXISTENT
     * when the mailbox is not the user's.
     */
    recordHeaders(userId: number, mailboxId: number, state: SyncFolderState, headers: readonly UpstreamHeader[]): { linked: number; pending: number } {
        return this.db.write(tx => {
            if (!mailboxById(tx, userId, mailboxId)) throw new StoreError('NONEXISTENT', 'mailbox does not belong to the user');
            let linked = 0;
            let pending = 0;
            for (const header of headers) {
                const flags = JSON.stringify(canonicalFlags(header.flags));
                const ref = { account: state.account, folder: state.folder, uidValidity: state.uidValidity, uid: header.uid };
                if (isLinked(tx, ref)) {
                    continue;
                }
                const messageId = header.messageId ? normaliseMessageId(header.messageId) : null;
                if (messageId && linkByMessageId(tx, mailboxId, messageId, ref, flags, header.key)) {
                    linked++;
                    continue;
                }
                // Home already from another folder or label of the account: linked, not downloaded.
                if (header.key && linkToHomeCopy(tx, userId, mailboxId, ref, header.key, canonicalFlags(header.flags), header.idate) !== null) {
                    linked++;
                    continue;
                }
                tx.stmt(`INSERT OR IGNORE INTO sync_pending (account, folder, uid_validity, uid, size, message_id, idate, flags, upstream_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(
                    state.account,
                    state.folder,
                    state.uidValidity,
                    header.uid,
                    header.size,
                    messageId,
                    header.idate,
                    flags,
                    header.key
                );
                pending++;
            }
            saveFolder(tx, state);
            return { linked, pending };
        });
    }

    /** Bodies still to download for an account (current UIDVALIDITY only), smallest first. */
    pendingDownloads(account: string): PendingDownload[] {
        const rows = this.db
            .stmt(
                `SELECT p.account, p.folder, p.uid_validity, p.uid, p.size, p.message_id, p.idate, p.flags, p.upstream_key
                 FROM sync_pending p JOIN sync_folders f ON f.account = p.account AND f.folder = p.folder AND f.uid_validity = p.uid_validity
                 WHERE p.account = ? ORDER BY p.size, p.uid`
            )
            .all(account) as PendingDbRow[];
        return rows.map(row => ({
            account: row.account,
            folder: row.folder,
            uidValidity: row.uid_validity,
            uid: row.uid,
            size: row.size,
            messageId: row.message_id,
            idate: row.idate,
            flags: JSON.parse(row.flags) as string[],
            key: row.upstream_key
        }));
    }

    /**
     * Pending downloads whose copy is home by now (downloaded from another folder or label of the
     * account since they were listed) are filed from that copy instead, each in the mailbox
     * `mailboxFor` names for its folder, and leave sync_pending, in one commit. Returns those linked.
     */
    linkPendingToHome<T extends PendingDownload>(userId: number, items: readonly T[], mailboxFor: (item: T) => number | undefined): T[] {
        return this.db.write(tx => {
            const linked: T[] = [];
            for (const item of items) {
                const mailboxId = mailboxFor(item);
                if (!item.key || mailboxId === undefined || !mailboxById(tx, userId, mailboxId) || isLinked(tx, item)) continue;
                if (linkToHomeCopy(tx, userId, mailboxId, item, item.key, canonicalFlags(item.flags), item.idate) === null) continue;
                dropPending(tx, item);
                linked.push(item);
            }
            return linked;
        });
    }

    /** Forgets a pending download (gone upstream since it was listed). */
    dropPending(ref: UpstreamRef): void {
        this.db.write(tx => dropPending(tx, ref));
    }

    /**
     * Stores a downloaded upstream message and clears its pending row in one commit; returns its
     * UID, or null when that upstream message (or its Message-ID in this mailbox) is here
     * already. Throws TRYCREATE when the mailbox is gone.
     */
    importUpstream(userId: number, mailboxId: number, raw: Buffer, analysed: AnalysedMessage, ref: UpstreamRef, options: UpstreamImportOptions): number | null {
        return this.files.commitWith([{ hash: analysed.hash, raw }], () =>
            this.db.write(tx => {
                if (!mailboxById(tx, userId, mailboxId)) throw new StoreError('TRYCREATE', 'no such mailbox');
                return importUpstreamRow(tx, userId, mailboxId, analysed, ref, options);
            })
        );
    }

    /**
     * Starts making a downloaded message's file durable, on the thread pool, while the caller
     * goes on reading the next one; the message is committed later with `importUpstreamBatch`,
     * which waits for it. The promise never rejects on its own: a failed write is tried again,
     * on the event loop, by that commit (and fails it there).
     */
    stageUpstream(raw: Buffer, analysed: AnalysedMessage): Promise<void> {
        return this.files.put([{ hash: analysed.hash, raw }]).catch(() => undefined);
    }

    /**
     * `importUpstream` for a group of downloaded messages of one mailbox, in one commit: every
     * message stored with its pending row cleared, or (a throw) none of them. Waits first for
     * the files `stageUpstream` started. Returns each message's UID, or null as importUpstream
     * does. Throws TRYCREATE when the mailbox is gone; MessageTooComplexError when one of them
     * cannot be stored (then nothing is, and the caller stores them one at a time).
     */
    async importUpstreamBatch(userId: number, mailboxId: number, downloads: readonly UpstreamDownload[]): Promise<(number | null)[]> {
        await Promise.all(downloads.flatMap(download => (download.staged ? [download.staged] : [])));
        return this.files.commitWith(
            downloads.map(download => ({ hash: download.analysed.hash, raw: download.raw })),
            () =>
                this.db.write(tx => {
                    if (!mailboxById(tx, userId, mailboxId)) throw new StoreError('TRYCREATE', 'no such mailbox');
                    return downloads.map(download => importUpstreamRow(tx, userId, mailboxId, download.analysed, download.ref, download.options));
                })
        );
    }

    /**
     * After a UIDVALIDITY change upstream: points local messages of the old generation at their
     * new UIDs (matched by the caller by Message-ID, size and date) and forgets the rest of the
     * old generation's pending downloads.
     */
    remap(account: string, folder: string, oldValidity: number, newValidity: number, matches: readonly { oldUid: number; newUid: number }[]): number {
        return this.db.write(tx => {
            let moved = 0;
            for (const match of matches) {
                moved += tx
                    .stmt('UPDATE messages SET upstream_uidvalidity = ?, upstream_uid = ? WHERE upstream_account = ? AND upstream_folder = ? AND upstream_uidvalidity = ? AND upstream_uid = ?')
                    .run(newValidity, match.newUid, account, folder, oldValidity, match.oldUid).changes;
            }
            // Old-generation messages that matched nothing are no longer upstream: unlink them.
            tx.stmt(
                'UPDATE messages SET upstream_account = NULL, upstream_folder = NULL, upstream_uidvalidity = NULL, upstream_uid = NULL, upstream_flags = NULL WHERE upstream_account = ? AND upstream_folder = ? AND upstream_uidvalidity = ?'
            ).run(account, folder, oldValidity);
            tx.stmt('DELETE FROM sync_pending WHERE account = ? AND folder = ? AND uid_validity = ?').run(account, folder, oldValidity);
            tx.stmt('DELETE FROM sync_deletions WHERE account = ? AND folder = ? AND uid_validity = ?').run(account, folder, oldValidity);
            return moved;
        });
    }

    /** Local messages linked to an upstream folder generation, with their local and last-known upstream flags. */
    linkedMessages(account: string, folder: string, uidValidity: number): LinkedMessage[] {
        const rows = this.db
            .stmt(
                `SELECT ${LINKED_COLUMNS} FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id
                 WHERE m.upstream_account = ? AND m.upstream_folder = ? AND m.upstream_uidvalidity = ? ORDER BY m.upstream_uid`
            )
            .all(account, folder, uidValidity) as LinkedDbRow[];
        return rows.map(linkedFromRow);
    }

    /** The local message linked to the upstream message `ref`, or null (relay mode names messages by where they are upstream). */
    /** The stub here of the upstream message `ref` (a message over maxMessageSize, or relay mode's header stub), or null. */
    linkedStub(ref: UpstreamRef): LinkedMessage | null {
        const row = this.db
            .stmt(
                `SELECT ${LINKED_COLUMNS} FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id
                 WHERE m.upstream_account = ? AND m.upstream_folder = ? AND m.upstream_uidvalidity = ? AND m.upstream_uid = ? AND m.stub = 1 LIMIT 1`
            )
            .get(ref.account, ref.folder, ref.uidValidity, ref.uid) as LinkedDbRow | undefined;
        return row ? linkedFromRow(row) : null;
    }

    linkedMessage(ref: UpstreamRef): LinkedMessage | null {
        const row = this.db
            .stmt(
                `SELECT ${LINKED_COLUMNS} FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id
                 WHERE m.upstream_account = ? AND m.upstream_folder = ? AND m.upstream_uidvalidity = ? AND m.upstream_uid = ? LIMIT 1`
            )
            .get(ref.account, ref.folder, ref.uidValidity, ref.uid) as LinkedDbRow | undefined;
        return row ? linkedFromRow(row) : null;
    }

    /**
     * Every linked message whose flags differ from what upstream last had (keywords included:
     * the caller compares the synced flags), with where it is upstream: relay mode's up bundle,
     * which has no folder to go through as direct mode's pass has.
     */
    linkedWithLocalChanges(): (LinkedMessage & { ref: UpstreamRef })[] {
        const rows = this.db
            .stmt(
                `SELECT ${LINKED_COLUMNS}, m.upstream_account, m.upstream_folder, m.upstream_uidvalidity FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id
                 WHERE m.upstream_uid IS NOT NULL AND m.upstream_flags IS NOT NULL AND m.flags <> m.upstream_flags ORDER BY m.id`
            )
            .all() as (LinkedDbRow & { upstream_account: string; upstream_folder: string; upstream_uidvalidity: number })[];
        return rows.map(row => ({
            ...linkedFromRow(row),
            ref: { account: row.upstream_account, folder: row.upstream_folder, uidValidity: row.upstream_uidvalidity, uid: row.upstream_uid }
        }));
    }

    /** Every synced message expunged locally and waiting to be deleted upstream, of every folder (relay mode's up bundle). */
    allPendingDeletions(): UpstreamRef[] {
        const rows = this.db.stmt('SELECT account, folder, uid_validity, uid FROM sync_deletions ORDER BY account, folder, uid_validity, uid').all() as {
            account: string;
            folder: string;
            uid_validity: number;
            uid: number;
        }[];
        return rows.map(row => ({ account: row.account, folder: row.folder, uidValidity: row.uid_validity, uid: row.uid }));
    }

    /** Records what the provider now holds as a message's flags (after a push, or a pull). */
    setUpstreamFlags(mailboxId: number, uid: number, flags: string[]): void {
        this.db.write(tx => tx.stmt('UPDATE messages SET upstream_flags = ? WHERE mailbox_id = ? AND uid = ?').run(JSON.stringify(canonicalFlags(flags)), mailboxId, uid));
    }

    /** Synced messages expunged locally, waiting to be deleted upstream. */
    pendingDeletions(account: string, folder: string, uidValidity: number): number[] {
        return this.db.stmt('SELECT uid FROM sync_deletions WHERE account = ? AND folder = ? AND uid_validity = ? ORDER BY uid').pluck().all(account, folder, uidValidity) as number[];
    }

    clearDeletions(account: string, folder: string, uidValidity: number, uids: readonly number[]): void {
        this.db.write(tx => {
            const remove = tx.stmt('DELETE FROM sync_deletions WHERE account = ? AND folder = ? AND uid_validity = ? AND uid = ?');
            for (const uid of uids) remove.run(account, folder, uidValidity, uid);
        });
    }

    /** The user's stubs outside the mailbox `exceptPath` ("Fetch full"), newest first, at most `limit`. */
    heldUpstream(userId: number, exceptPath: string, limit = 200): HeldMessage[] {
        const rows = this.db
            .stmt(
                `SELECT mb.id AS mailboxId, mb.path AS mailboxPath, m.uid, m.upstream_account AS account, m.idate, b.envelope
                 FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id JOIN blobs b ON b.hash = m.blob_hash
                 WHERE mb.user_id = ? AND m.stub = 1 AND m.upstream_uid IS NOT NULL AND mb.path <> ? ORDER BY m.idate DESC, m.id DESC LIMIT ?`
            )
            .all(userId, exceptPath, limit) as (Omit<HeldMessage, 'subject'> & { envelope: Buffer })[];
        return rows.map(({ envelope, ...row }) => {
            // ENVELOPE's subject, decoded (as the queue keeps it).
            const subject = (v8.deserialize(envelope) as unknown[])[1] as Buffer | string | null | undefined;
            return { ...row, subject: subject == null ? null : Buffer.isBuffer(subject) ? subject.toString('utf8') : String(subject) };
        });
    }

    /**
     * Per account, how many messages are left on the provider for good, a note standing in for each
     * (STUB_NOTE), for `mailmule status`; a note filed in two folders (a Gmail label) counts once.
     */
    leftUpstream(): { account: string; messages: number }[] {
        return this.db
            .stmt(
                'SELECT upstream_account AS account, COUNT(DISTINCT blob_hash) AS messages FROM messages WHERE stub = ? AND upstream_account IS NOT NULL GROUP BY upstream_account ORDER BY upstream_account'
            )
            .all(STUB_NOTE) as { account: string; messages: number }[];
    }

    /** Stubs the user moved into `mailboxId` ("Fetch full"), with their upstream origin. */
    stubsIn(userId: number, mailboxId: number): StubRequest[] {
        const rows = this.db
            .stmt(
                `SELECT m.uid, m.upstream_account, m.upstream_folder, m.upstream_uidvalidity, m.upstream_uid, m.flags, m.idate FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id
                 WHERE mb.user_id = ? AND m.mailbox_id = ? AND m.stub = 1 AND m.upstream_uid IS NOT NULL ORDER BY m.uid`
            )
            .all(userId, mailboxId) as StubDbRow[];
        return rows.map(row => ({
            uid: row.uid,
            ref: { account: row.upstream_account, folder: row.upstream_folder, uidValidity: row.upstream_uidvalidity, uid: row.upstream_uid },
            flags: JSON.parse(row.flags) as string[],
            idate: row.idate
        }));
    }

    /**
     * `importUpstream` for a message whose bytes this store holds already under their SHA-256
     * `hash` (relay mode's messageRef: another user's, another folder's, an earlier bundle's copy):
     * the new row shares that message file, in one commit. Returns its UID, null as importUpstream
     * does, or 'missing' when no message file with that hash is here (expunged and gone since):
     * then nothing changed. Throws TRYCREATE when the mailbox is gone.
     */
    importUpstreamHeld(userId: number, mailboxId: number, hash: string, ref: UpstreamRef, options: UpstreamImportOptions): number | null | 'missing' {
        return this.db.write(tx => {
            if (!mailboxById(tx, userId, mailboxId)) throw new StoreError('TRYCREATE', 'no such mailbox');
            return importHeldRow(tx, userId, mailboxId, hash, ref, options);
        });
    }

    /** The stub linked to the upstream message `ref` (in whichever mailbox it is now), or null: what a full copy of it replaces (relay mode). */
    stubLinkedTo(ref: UpstreamRef): (StubRequest & { userId: number; mailboxId: number }) | null {
        const row = this.db
            .stmt(
                `SELECT mb.user_id, m.mailbox_id, m.uid, m.upstream_account, m.upstream_folder, m.upstream_uidvalidity, m.upstream_uid, m.flags, m.idate
                 FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id
                 WHERE m.upstream_account = ? AND m.upstream_folder = ? AND m.upstream_uidvalidity = ? AND m.upstream_uid = ? AND m.stub = 1 LIMIT 1`
            )
            .get(ref.account, ref.folder, ref.uidValidity, ref.uid) as (StubDbRow & { user_id: number; mailbox_id: number }) | undefined;
        if (!row) return null;
        return {
            userId: row.user_id,
            mailboxId: row.mailbox_id,
            uid: row.uid,
            ref: { account: row.upstream_account, folder: row.upstream_folder, uidValidity: row.upstream_uidvalidity, uid: row.upstream_uid },
            flags: JSON.parse(row.flags) as string[],
            idate: row.idate
        };
    }

    /**
     * Replaces a stub with the full message: the full one goes into `targetMailboxId` carrying the
     * upstream link, and the stub leaves its mailbox, in one commit. Returns the new UID. Throws
     * TRYCREATE when either mailbox is gone (and then nothing changed, and the file is not kept).
     * `standsIn`: what replaces the stub is the note for a message the store refuses (STUB_NOTE).
     * `upstreamFlags`: what upstream is known to have (default: `flags`, as if pushed).
     */
    replaceStub(
        userId: number,
        stubMailboxId: number,
        stubUid: number,
        targetMailboxId: number,
        raw: Buffer,
        analysed: AnalysedMessage,
        ref: UpstreamRef,
        flags: string[],
        idate: number,
        standsIn = false,
        upstreamFlags: string[] = flags
    ): number {
        const canonical = canonicalFlags(flags);
        return this.files.commitWith([{ hash: analysed.hash, raw }], () =>
            this.db.write(tx => {
                if (!mailboxById(tx, userId, stubMailboxId) || !mailboxById(tx, userId, targetMailboxId)) throw new StoreError('TRYCREATE', 'no such mailbox');
                const stub = tx.stmt('SELECT blob_hash FROM messages WHERE mailbox_id = ? AND uid = ?').get(stubMailboxId, stubUid) as { blob_hash: string } | undefined;
                if (stub) {
                    deleteMessageRow(tx, stubMailboxId, stubUid);
                    releaseBlobs(tx, [stub.blob_hash]);
                }
                insertBlob(tx, analysed);
                const added = insertMessageRow(tx, targetMailboxId, analysed.hash, analysed.size, analysed.messageId, canonical, idate, ref);
                tx.stmt('UPDATE messages SET upstream_flags = ?, stub = ? WHERE mailbox_id = ? AND uid = ?').run(
                    JSON.stringify(canonicalFlags(upstreamFlags)),
                    standsIn ? STUB_NOTE : 0,
                    targetMailboxId,
                    added.uid
                );
                appendJournal(tx, targetMailboxId, { command: 'EXISTS', uid: added.uid, modseq: added.modseq });
                tx.changed(userId);
                return added.uid;
            })
        );
    }
}
