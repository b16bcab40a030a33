/**
 * What tests check or arrange in a store beyond its API: reference counts, files without rows,
 * rows put into a state no API call makes (a queue entry caught mid-send, a deferred entry due
 * now), and injected database faults. This is the one test module that knows the schema; it
 * opens its own connection to the database file, which WAL lets sit beside a running daemon's
 * (or read a stopped daemon's).
 */
import fs from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import zlib from 'node:zlib';
import Database from 'better-sqlite3';
import { rootHeaderLines } from '../../src/store/header-summary';
import { unpackRaw } from '../../src/store/inline-messages';
import type { Store } from '../../src/store';
import type { Connection } from '../../src/store/connection';

/**
 * Alice's INBOX in `store`, created if need be, with `raws` added in order (UIDs 1, 2, …): the start of the
 * migration tests, which then turn the store back to an older schema and reopen it.
 */
export function fillAliceInbox(store: Store, raws: readonly Buffer[]): { userId: number; inboxId: number } {
    const userId = store.users.ensure('alice').id;
    const inboxId = store.mailboxes.get(userId, 'INBOX')!.id;
    for (const raw of raws) store.messages.add(userId, inboxId, raw);
    return { userId, inboxId };
}

/** A data directory, or anything that has one (a Store). */
export type StoreDir = string | { dataDir: string };

function dirOf(target: StoreDir): string {
    return typeof target === 'string' ? target : target.dataDir;
}

/** Runs `fn` with a connection of its own to the store's database, closed afterwards. */
export function withStoreDb<T>(target: StoreDir, fn: (db: Database.Database) => T): T {
    const db = new Database(path.join(dirOf(target), 'mailmule.sqlite'));
    try {
        db.pragma('busy_timeout = 5000');
        return fn(db);
    } finally {
        db.close();
    }
}

/** Where the store keeps the message file of `hash`. */
export function messageFilePath(target: StoreDir, hash: string): string {
    return path.join(dirOf(target), 'blobs', hash.slice(0, 2), hash);
}

export function messageFileExists(target: StoreDir, hash: string): boolean {
    return fs.existsSync(messageFilePath(target, hash));
}

/** The bytes the store holds for `hash`: inline in its row (src/store/inline-messages.ts) or its file; null when neither. */
export function messageBytes(target: StoreDir, hash: string): Buffer | null {
    const packed = withStoreDb(target, db => db.prepare('SELECT raw FROM blobs WHERE hash = ?').pluck().get(hash) as Buffer | null | undefined);
    if (packed) return unpackRaw(packed);
    return messageFileExists(target, hash) ? fs.readFileSync(messageFilePath(target, hash)) : null;
}

/** Whether the store holds the message `hash`: as a file, or inline in its row (src/store/inline-messages.ts). */
export function messageStored(target: StoreDir, hash: string): boolean {
    return messageFileExists(target, hash) || withStoreDb(target, db => Boolean(db.prepare('SELECT 1 FROM blobs WHERE hash = ? AND raw IS NOT NULL').get(hash)));
}

/** Hashes of every message file on disk. */
export function messageFiles(target: StoreDir): string[] {
    const root = path.join(dirOf(target), 'blobs');
    return fs
        .readdirSync(root)
        .filter(dir => /^[0-9a-f]{2}$/.test(dir))
        .flatMap(dir => fs.readdirSync(path.join(root, dir)).filter(name => /^[0-9a-f]{64}$/.test(name)));
}

/** Message files on disk that no `blobs` row accounts for. */
export function orphanFiles(target: StoreDir): string[] {
    const known = new Set(withStoreDb(target, db => db.prepare('SELECT hash FROM blobs').pluck().all() as string[]));
    return messageFiles(target).filter(hash => !known.has(hash));
}

/** Files in the store's tmp/ (a write in progress, or one a failure left behind). */
export function tmpFiles(target: StoreDir): string[] {
    return fs.readdirSync(path.join(dirOf(target), 'tmp'));
}

export function blobCount(target: StoreDir): number {
    return withStoreDb(target, db => Number(db.prepare('SELECT COUNT(*) FROM blobs').pluck().get()));
}

/** The reference count of a `blobs` row; undefined when there is no row. */
export function blobRefs(target: StoreDir, hash: string): number | undefined {
    return withStoreDb(target, db => db.prepare('SELECT refs FROM blobs WHERE hash = ?').pluck().get(hash) as number | undefined);
}

/** Every `blobs` row with its reference count and the rows (messages, queue entries) that actually point at it. */
export function blobUsage(target: StoreDir): { hash: string; refs: number; users: number }[] {
    return withStoreDb(
        target,
        db =>
            db
                .prepare(
                    `SELECT b.hash, b.refs,
                            (SELECT COUNT(*) FROM messages m WHERE m.blob_hash = b.hash) + (SELECT COUNT(*) FROM queue q WHERE q.blob_hash = b.hash) AS users
                     FROM blobs b`
                )
                .all() as { hash: string; refs: number; users: number }[]
    );
}

/** PRAGMA foreign_key_check: [] when every reference holds. */
export function foreignKeyViolations(target: StoreDir): unknown[] {
    return withStoreDb(target, db => db.pragma('foreign_key_check') as unknown[]);
}

export interface MessageRow {
    uid: number;
    size: number;
    messageId: string | null;
    blobHash: string;
    upstreamUid: number | null;
    upstreamUidValidity: number | null;
}

/** The rows of a mailbox, in UID order, with what the IMAP view does not show (file, upstream link). */
export function messageRows(target: StoreDir, mailboxId: number): MessageRow[] {
    return withStoreDb(
        target,
        db =>
            db
                .prepare(
                    `SELECT uid, size, message_id AS messageId, blob_hash AS blobHash, upstream_uid AS upstreamUid, upstream_uidvalidity AS upstreamUidValidity
                     FROM messages WHERE mailbox_id = ? ORDER BY uid`
                )
                .all(mailboxId) as MessageRow[]
    );
}

/** The UID of the message in a Sent mailbox that shares the file `hash`, if any. */
export function sentCopyUid(target: StoreDir, hash: string): number | undefined {
    return withStoreDb(
        target,
        db => db.prepare("SELECT m.uid FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id WHERE mb.path = 'Sent' AND m.blob_hash = ?").pluck().get(hash) as number | undefined
    );
}

/** Headers seen upstream whose bodies are not home yet, every folder generation (all accounts without `account`). */
export function pendingRows(target: StoreDir, account?: string): { uid: number; messageId: string | null }[] {
    return withStoreDb(
        target,
        db =>
            (account === undefined
                ? db.prepare('SELECT uid, message_id AS messageId FROM sync_pending').all()
                : db.prepare('SELECT uid, message_id AS messageId FROM sync_pending WHERE account = ?').all(account)) as { uid: number; messageId: string | null }[]
    );
}

/** Puts a queue entry into a state (and age) that a test needs and no API call makes. */
export function setQueueEntry(target: StoreDir, id: number, fields: { state?: string; attempts?: number; lastError?: string | null; nextAttemptAt?: number | null; createdAt?: number }): void {
    const columns: [string, unknown][] = [];
    if (fields.state !== undefined) columns.push(['state', fields.state]);
    if (fields.attempts !== undefined) columns.push(['attempts', fields.attempts]);
    if (fields.lastError !== undefined) columns.push(['last_error', fields.lastError]);
    if (fields.nextAttemptAt !== undefined) columns.push(['next_attempt_at', fields.nextAttemptAt]);
    if (fields.createdAt !== undefined) columns.push(['created_at', fields.createdAt]);
    if (!columns.length) return;
    withStoreDb(target, db => db.prepare(`UPDATE queue SET ${columns.map(([name]) => `${name} = ?`).join(', ')} WHERE id = ?`).run(...columns.map(([, value]) => value), id));
}

/** Records a recipient's outcome as if the provider had answered it. */
export function setRecipientState(target: StoreDir, queueId: number, address: string, state: 'pending' | 'sent' | 'failed', lastError: string | null = null): void {
    withStoreDb(target, db => db.prepare('UPDATE queue_recipients SET state = ?, last_error = COALESCE(?, last_error) WHERE queue_id = ? AND address = ?').run(state, lastError, queueId, address));
}

export function recipientCount(target: StoreDir, queueId: number): number {
    return withStoreDb(target, db => Number(db.prepare('SELECT COUNT(*) FROM queue_recipients WHERE queue_id = ?').pluck().get(queueId)));
}

/** Makes every deferred entry due now (instead of waiting out its backoff). */
export function makeDeferredDue(target: StoreDir): void {
    withStoreDb(target, db => db.prepare("UPDATE queue SET next_attempt_at = 0 WHERE state = 'deferred'").run());
}

/** The wire bytes of the most recently recorded run account, if any. */
export function lastRunAccountBytes(target: StoreDir): { bytesSent: number; bytesReceived: number } | undefined {
    return withStoreDb(
        target,
        db =>
            db.prepare('SELECT bytes_sent AS bytesSent, bytes_received AS bytesReceived FROM uplink_run_accounts ORDER BY rowid DESC LIMIT 1').get() as
                { bytesSent: number; bytesReceived: number } | undefined
    );
}

/** The hash of the message added last, in any mailbox. */
export function newestMessageHash(target: StoreDir): string {
    return withStoreDb(target, db => db.prepare('SELECT blob_hash FROM messages ORDER BY id DESC LIMIT 1').pluck().get() as string);
}

/**
 * The store's own connection, for the faults only it can take: SQLite's limits that hold per
 * connection. This reaches past the store's public face on purpose; nothing in src/ may.
 */
function ownConnection(store: Store): Connection {
    return (store as unknown as { db: Connection }).db;
}

/** The store's own connection's page count and busy timeout, to set them back after a fault. */
export function connectionLimits(store: Store): { pageCount: number; busyTimeoutMs: number } {
    const db = ownConnection(store);
    return { pageCount: db.pragma('page_count') as number, busyTimeoutMs: db.pragma('busy_timeout') as number };
}

/** The store's own connection's PRAGMA synchronous (2: FULL, 1: NORMAL). */
export function synchronousLevel(store: Store): number {
    return ownConnection(store).pragma('synchronous') as number;
}

/**
 * Fault injection on the store's own connection: `maxPageCount` stops the database from growing
 * (a write that needs a new page fails with SQLITE_FULL, as on a full disk); `busyTimeoutMs`
 * shortens the wait for another process's write lock.
 */
export function setConnectionLimits(store: Store, limits: { maxPageCount?: number; busyTimeoutMs?: number }): void {
    const db = ownConnection(store);
    if (limits.maxPageCount !== undefined) db.pragma(`max_page_count = ${Math.floor(limits.maxPageCount)}`);
    if (limits.busyTimeoutMs !== undefined) db.pragma(`busy_timeout = ${Math.floor(limits.busyTimeoutMs)}`);
}

/** Undoes schema migration 16 (inline messages written back to their files, no raw column), as a store from before it looks. */
export function undoMigration16(db: Database.Database): void {
    for (const [hash, packed] of db.prepare('SELECT hash, raw FROM blobs WHERE raw IS NOT NULL').raw().all() as [string, Buffer][]) {
        const file = messageFilePath(path.dirname(db.name), hash);
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, unpackRaw(packed));
    }
    db.exec("ALTER TABLE blobs DROP COLUMN raw; DELETE FROM meta WHERE key = 'pending_inline_messages';");
}

/** Undoes schema migration 15 (search text plain in search_headers and search_body, no search_text), and the later ones first, as a store from before it looks. */
export function undoMigration15(db: Database.Database): void {
    undoMigration16(db);
    const update = db.prepare('UPDATE blobs SET search_headers = ?, search_body = ? WHERE hash = ?');
    for (const [hash, packed] of db.prepare('SELECT hash, search_text FROM blobs WHERE search_text IS NOT NULL').raw().all() as [string, Buffer][]) {
        // After the 512-byte signature (src/store/search-text.ts).
        const plain = zlib.brotliDecompressSync(packed.subarray(512));
        const headerEnd = 4 + plain.readUInt32LE(0);
        update.run(plain.subarray(4, headerEnd).toString('utf8'), plain.subarray(headerEnd).toString('utf8'), hash);
    }
    db.exec("ALTER TABLE blobs DROP COLUMN search_text; DELETE FROM meta WHERE key = 'pending_search_packing';");
}

/** Undoes schema migration 14 (MIME trees stored as plain v8.serialize output, as before it), and the later ones first, as a store from before it looks. */
export function undoMigration14(db: Database.Database): void {
    undoMigration15(db);
    const update = db.prepare('UPDATE blobs SET mime_tree = ? WHERE hash = ?');
    for (const [hash, tree] of db.prepare('SELECT hash, mime_tree FROM blobs').raw().all() as [string, Buffer][]) {
        if (tree.readUInt32LE(0) === 0xfd2fb528) update.run(zlib.zstdDecompressSync(tree), hash);
    }
    db.exec("DELETE FROM meta WHERE key = 'pending_tree_compression';");
}

/**
 * Undoes schema migration 13 (the root header lines back in blob_headers, serialised as then),
 * as a store from before it looks; the lines are read from the message files beside the database.
 */
export function undoMigration13(db: Database.Database): void {
    undoMigration14(db);
    db.exec('CREATE TABLE blob_headers (hash TEXT PRIMARY KEY, header_lines BLOB NOT NULL);');
    const insert = db.prepare('INSERT INTO blob_headers (hash, header_lines) VALUES (?, ?)');
    for (const hash of db.prepare('SELECT hash FROM blobs').pluck().all() as string[]) {
        insert.run(hash, v8.serialize(rootHeaderLines(fs.readFileSync(messageFilePath(path.dirname(db.name), hash)), true).lines));
    }
}

/** Undoes schema migration 12 (no message_headers), and the later ones first, as a store from before it looks. */
export function undoMigration12(db: Database.Database): void {
    undoMigration13(db);
    db.exec('DROP TABLE message_headers;');
}

/** Undoes schema migration 11 (no intake_spool), and the later ones first, as a store from before it looks. */
export function undoMigration11(db: Database.Database): void {
    undoMigration12(db);
    db.exec('DROP TABLE intake_spool;');
}

/** Undoes schema migration 10 (no local_path in sync_folders), and the later ones first, as a store from before it looks. */
export function undoMigration10(db: Database.Database): void {
    undoMigration11(db);
    db.exec('ALTER TABLE sync_folders DROP COLUMN local_path;');
}

/** Undoes schema migration 9 (no bounced_at, no account_problems), and the later ones first, as a store from before it looks. */
export function undoMigration9(db: Database.Database): void {
    undoMigration10(db);
    db.exec(`ALTER TABLE queue_recipients DROP COLUMN bounced_at;
             DROP TABLE account_problems;`);
}

/** Undoes schema migration 8 (no upstream_key on messages and sync_pending), and the later ones first, as a store from before it looks. */
export function undoMigration8(db: Database.Database): void {
    undoMigration9(db);
    db.exec(`DROP INDEX messages_upstream_key;
             ALTER TABLE messages DROP COLUMN upstream_key;
             ALTER TABLE sync_pending DROP COLUMN upstream_key;`);
}

/** Undoes schema migration 7 (header lines back in blobs, no blob_headers), and the later ones first, as a store from before it looks. */
export function undoMigration7(db: Database.Database): void {
    undoMigration8(db);
    db.exec(`ALTER TABLE blobs ADD COLUMN header_lines BLOB;
             UPDATE blobs SET header_lines = (SELECT header_lines FROM blob_headers h WHERE h.hash = blobs.hash);
             DROP TABLE blob_headers;
             DROP INDEX blobs_unreferenced;`);
}

/**
 * A bad block: overwrites every page of `table` (its b-tree and overflow pages, from SQLite's
 * dbstat) with zeros, in the database file of a stopped store. The file keeps its size and header.
 * Returns how many pages were zeroed.
 */
export function zeroTablePages(target: StoreDir, table: string): number {
    const { pages, pageSize } = withStoreDb(target, db => ({
        pages: db.prepare('SELECT pageno FROM dbstat WHERE name = ?').pluck().all(table) as number[],
        pageSize: db.pragma('page_size', { simple: true }) as number
    }));
    const fd = fs.openSync(path.join(dirOf(target), 'mailmule.sqlite'), 'r+');
    try {
        for (const page of pages) fs.writeSync(fd, Buffer.alloc(pageSize), 0, pageSize, (page - 1) * pageSize);
    } finally {
        fs.closeSync(fd);
    }
    return pages.length;
}

/**
 * An uplink run recorded as if it had happened at `startedAt` (the store's API stamps runs with
 * the clock): for charts of past days. Each account row is `[address, bytesSent, bytesReceived]`.
 */
export function insertPastRun(target: StoreDir, startedAt: number, trigger: string, status: string, accounts: [string, number, number][]): void {
    withStoreDb(target, db => {
        db.transaction(() => {
            const id = Number(
                db.prepare('INSERT INTO uplink_runs (trigger, started_at, finished_at, status, message) VALUES (?, ?, ?, ?, NULL)').run(trigger, startedAt, startedAt + 60_000, status).lastInsertRowid
            );
            for (const [account, sent, received] of accounts) {
                db.prepare(
                    'INSERT INTO uplink_run_accounts (run_id, account, bytes_sent, bytes_received, messages_sent, messages_received, duration_ms, errors) VALUES (?, ?, ?, ?, 1, 3, 60000, ?)'
                ).run(id, account, sent, received, '[]');
            }
        })();
    });
}
