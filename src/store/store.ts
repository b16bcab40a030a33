/**
 * The embedded store: SQLite (better-sqlite3, WAL) for state, content-addressed files for raw
 * messages. This module is the only code in mailmule that runs SQL.
 *
 * Every method that touches a mailbox takes the owning user's id and checks it in SQL, so a
 * protocol handler cannot reach another user's mail even with a forged mailbox id.
 *
 * Changes to a mailbox follow one rule: UID, modseq and journal entry are allocated and written
 * in the same transaction, so modseq order equals commit order and a reader of the journal
 * never misses or repeats a change. After each commit the store emits `change` with the user id;
 * IMAP sessions (and anything else) listen for it.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import Database from 'better-sqlite3';
import { BlobFiles } from './blobs';
import { analyseMessage, normaliseMessageId, type AnalysedMessage, type MimeNode } from './mime';
import { MIGRATIONS } from './schema';
import { compileSearch, headerMatch, type SearchTerm } from './search';
import type { SortRecord } from './sort';
import { canonicalFlags, isSystemFlag } from './flags';

export const DEFAULT_MAILBOXES: { path: string; specialUse: string | null }[] = [
    { path: 'INBOX', specialUse: null },
    { path: 'Sent', specialUse: '\\Sent' },
    { path: 'Drafts', specialUse: '\\Drafts' },
    { path: 'Trash', specialUse: '\\Trash' },
    { path: 'Junk', specialUse: '\\Junk' },
    { path: 'Archive', specialUse: '\\Archive' }
];

export interface UserRow {
    id: number;
    name: string;
    passwordHash: string | null;
}

export interface MailboxRow {
    id: number;
    userId: number;
    path: string;
    specialUse: string | null;
    uidValidity: number;
    uidNext: number;
    modifyIndex: number;
    keywords: string[];
}

export interface OpenedMailbox extends MailboxRow {
    uidList: number[];
    /** UIDs that are \Recent in the opening session. */
    recent: number[];
    /** The lowest UID without \Seen, for OK [UNSEEN n]; null when all are seen. */
    unseenUid: number | null;
}

export interface MailboxStatus {
    messages: number;
    /** Messages no session has taken as \Recent yet. */
    recent: number;
    unseen: number;
    uidNext: number;
    uidValidity: number;
    highestModseq: number;
    size: number;
}

export interface JournalEntry {
    /** The journal row; unique, so a session can tell an entry it has already queued. */
    id?: number;
    command: 'EXISTS' | 'EXPUNGE' | 'FETCH';
    uid: number;
    modseq: number;
    flags?: string[];
    ignore?: string;
}

export interface FetchColumns {
    envelope?: boolean;
    bodystructure?: boolean;
    mimeTree?: boolean;
    headerLines?: boolean;
}

export interface FetchedMessage {
    uid: number;
    modseq: number;
    flags: string[];
    idate: number;
    size: number;
    blobHash: string;
    envelope?: unknown[];
    bodystructure?: unknown[];
    mimeTree?: MimeNode;
    headerLines?: string[];
}

export interface AddedMessage {
    uid: number;
    modseq: number;
    uidValidity: number;
    mailboxId: number;
}

export interface UpstreamRef {
    account: string;
    folder: string;
    uidValidity: number;
    uid: number;
}

export interface FlagChange {
    uid: number;
    flags: string[];
    modseq: number;
    changed: boolean;
}

export type MailboxResult<T> = T | 'NONEXISTENT' | 'ALREADYEXISTS' | 'CANNOT' | 'TRYCREATE';

/** One submitted message: everything a 250 promises, committed in one transaction. */
export interface Submission {
    userId: number;
    mailFrom: string;
    /** The upstream account (address) that relays it; required when there are relay recipients. */
    account: string | null;
    /** Recipients beyond the Pi, in envelope order (Bcc included). */
    relayRecipients: string[];
    /** The copy that is relayed and delivered locally: Bcc removed. */
    relay: { raw: Buffer; analysed: AnalysedMessage };
    /** The sender's Sent copy: Bcc kept. */
    sent: { raw: Buffer; analysed: AnalysedMessage };
    /** Local users whose INBOX receives the relay copy. */
    localUserIds: number[];
}

export interface SubmissionResult {
    queueId: number | null;
    sentUid: number | null;
    deliveredTo: number[];
}

export type QueueState = 'queued' | 'sending' | 'sent' | 'deferred' | 'failed';

export interface QueueEntry {
    id: number;
    userId: number;
    user: string;
    account: string;
    mailFrom: string;
    blobHash: string;
    size: number;
    messageId: string | null;
    subject: string | null;
    state: QueueState;
    attempts: number;
    nextAttemptAt: number | null;
    lastError: string | null;
    createdAt: number;
    updatedAt: number;
    recipients: { address: string; state: 'pending' | 'sent' | 'failed'; lastError: string | null }[];
}

export interface SyncFolderState {
    account: string;
    folder: string;
    uidValidity: number;
    lastUid: number;
    highestModseq: number;
    lastFlagScan: number;
}

export interface PendingDownload extends UpstreamRef {
    size: number;
    messageId: string | null;
    idate: number;
    flags: string[];
}

export interface LinkedMessage {
    userId: number;
    mailboxId: number;
    uid: number;
    upstreamUid: number;
    flags: string[];
    upstreamFlags: string[] | null;
    messageId: string | null;
    size: number;
    idate: number;
}

export interface RunAccountFigures {
    account: string;
    bytesSent: number;
    bytesReceived: number;
    messagesSent: number;
    messagesReceived: number;
    durationMs: number;
    errors: string[];
}

export interface UplinkRun {
    id: number;
    trigger: string;
    startedAt: number;
    finishedAt: number | null;
    status: string;
    message: string | null;
    accounts: RunAccountFigures[];
}

export interface StoreOptions {
    dataDir: string;
    /** Test hook: open read-only for inspection tools. */
    readonly?: boolean;
}

/** A mailbox path as the store keeps it: NFC, INBOX upper-cased, no empty or dot segments. */
export function normaliseMailboxPath(input: string): string | null {
    let value = input.normalize('NFC');
    if (/^inbox$/i.test(value)) {
        return 'INBOX';
    }
    if (/^inbox\//i.test(value)) {
        value = 'INBOX' + value.slice(5);
    }
    if (!value || value.length > 512 || /[\x00-\x1f\x7f]/.test(value)) {
        return null;
    }
    const segments = value.split('/');
    if (segments.some(segment => segment === '' || segment === '.' || segment === '..' || segment.trim() !== segment)) {
        return null;
    }
    return value;
}

function now(): number {
    return Date.now();
}

export class Store extends EventEmitter {
    readonly db: Database.Database;
    readonly blobs: BlobFiles;
    readonly dataDir: string;
    private readonly statements = new Map<string, Database.Statement>();

    constructor(options: StoreOptions) {
        super();
        this.setMaxListeners(0);
        this.dataDir = options.dataDir;
        fs.mkdirSync(this.dataDir, { recursive: true, mode: 0o700 });
        this.blobs = new BlobFiles(this.dataDir);
        const dbFile = path.join(this.dataDir, 'mailmule.sqlite');
        this.db = new Database(dbFile);
        // It holds password hashes: owner only, before the first read creates -wal and -shm with its mode.
        if (fs.statSync(dbFile).mode & 0o077) fs.chmodSync(dbFile, 0o600);
        this.db.pragma('journal_mode = WAL');
        // FULL: a commit is on disk before we answer a client (a 250, an APPEND OK).
        this.db.pragma('synchronous = FULL');
        this.db.pragma('foreign_keys = ON');
        this.db.pragma('busy_timeout = 5000');
        // Each transaction takes the write lock when it begins (BEGIN IMMEDIATE), waiting up to
        // busy_timeout for it. A deferred one that has read and then writes after another
        // process (mailmule import, passwd) committed fails at once with "database is locked"
        // (SQLITE_BUSY_SNAPSHOT): its snapshot is stale, so no amount of waiting helps.
        const transaction = this.db.transaction.bind(this.db);
        this.db.transaction = ((fn: (...args: never[]) => unknown) => transaction(fn).immediate) as typeof this.db.transaction;
        // 8 MB of page cache: enough for the hot indexes, small enough for a 1 GB Pi.
        this.db.pragma('cache_size = -8000');
        this.db.function('mm_header_match', { deterministic: true }, (headers: unknown, name: unknown, needle: unknown) =>
            headerMatch(String(headers ?? ''), String(name ?? ''), String(needle ?? ''))
        );
        this.migrate();
    }

    private migrate(): void {
        const version = this.db.pragma('user_version', { simple: true }) as number;
        for (let index = version; index < MIGRATIONS.length; index++) {
            this.db.transaction(() => {
                this.db.exec(MIGRATIONS[index]);
                this.db.pragma(`user_version = ${index + 1}`);
            })();
        }
    }

    private stmt(sql: string): Database.Statement {
        let statement = this.statements.get(sql);
        if (!statement) {
            statement = this.db.prepare(sql);
            this.statements.set(sql, statement);
        }
        return statement;
    }

    close(): void {
        this.statements.clear();
        if (this.db.open) {
            this.db.close();
        }
    }

    /**
     * Runs several store calls in one transaction (one fsync at the end): for bulk work such as
     * `mailmule import`, where a commit per message would make the disk, not the CPU, the limit.
     */
    batch<T>(fn: () => T): T {
        return this.db.transaction(fn)();
    }

    integrityCheck(): string {
        return String(this.db.pragma('integrity_check', { simple: true }));
    }

    /** Removes what a crash can leave behind: temporary files, unreferenced blobs, old journal entries. */
    recover(): { removedBlobs: number; interruptedSends: number } {
        this.blobs.clearTmpSync();
        const known = new Set((this.stmt('SELECT hash FROM blobs').pluck().all() as string[]));
        let removedBlobs = 0;
        for (const hash of this.blobs.listHashes()) {
            if (!known.has(hash)) {
                this.blobs.removeSync(hash);
                removedBlobs++;
            }
        }
        const orphans = this.stmt('SELECT hash FROM blobs WHERE refs <= 0').pluck().all() as string[];
        for (const hash of orphans) {
            this.stmt('DELETE FROM blobs WHERE hash = ? AND refs <= 0').run(hash);
            this.blobs.removeSync(hash);
            removedBlobs++;
        }
        this.pruneJournal(3 * 3600 * 1000);
        const interruptedSends = this.recoverInterruptedSends();
        return { removedBlobs, interruptedSends };
    }

    // ---------------------------------------------------------------- users

    /** Creates the user (and their default mailboxes) if missing; returns the row. */
    ensureUser(name: string): UserRow {
        const existing = this.getUser(name);
        if (existing) {
            this.ensureDefaultMailboxes(existing.id);
            return existing;
        }
        const id = Number(this.stmt('INSERT INTO users (name, created_at) VALUES (?, ?)').run(name, now()).lastInsertRowid);
        this.ensureDefaultMailboxes(id);
        return { id, name, passwordHash: null };
    }

    getUser(name: string): UserRow | null {
        const row = this.stmt('SELECT id, name, password_hash AS passwordHash FROM users WHERE name = ?').get(name) as UserRow | undefined;
        return row ?? null;
    }

    getUserById(id: number): UserRow | null {
        const row = this.stmt('SELECT id, name, password_hash AS passwordHash FROM users WHERE id = ?').get(id) as UserRow | undefined;
        return row ?? null;
    }

    setPasswordHash(name: string, hash: string): void {
        const user = this.ensureUser(name);
        this.stmt('UPDATE users SET password_hash = ? WHERE id = ?').run(hash, user.id);
    }

    /** Per user: mailbox count, message count and bytes held. */
    userSummaries(): { name: string; mailboxes: number; messages: number; bytes: number; hasPassword: boolean }[] {
        return this.stmt(
            `SELECT u.name AS name,
                    (SELECT COUNT(*) FROM mailboxes mb WHERE mb.user_id = u.id) AS mailboxes,
                    (SELECT COUNT(*) FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id WHERE mb.user_id = u.id) AS messages,
                    (SELECT COALESCE(SUM(m.size), 0) FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id WHERE mb.user_id = u.id) AS bytes,
                    u.password_hash IS NOT NULL AS hasPassword
             FROM users u ORDER BY u.name`
        )
            .all()
            .map((row: any) => ({ ...row, hasPassword: Boolean(row.hasPassword) }));
    }

    storageUsed(userId: number): number {
        return Number(
            this.stmt('SELECT COALESCE(SUM(m.size), 0) FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id WHERE mb.user_id = ?')
                .pluck()
                .get(userId)
        );
    }

    // ---------------------------------------------------------------- mailboxes

    private nextUidValidity(): number {
        // Seconds since the epoch fit 32 bits until 2106; never reuse a value, even within one second.
        const last = Number((this.stmt("SELECT value FROM meta WHERE key = 'last_uid_validity'").pluck().get() as string | undefined) ?? 0);
        const value = Math.max(Math.floor(Date.now() / 1000), last + 1);
        this.stmt("INSERT INTO meta (key, value) VALUES ('last_uid_validity', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(
            String(value)
        );
        return value;
    }

    private ensureDefaultMailboxes(userId: number): void {
        const existing = new Set(this.stmt('SELECT path FROM mailboxes WHERE user_id = ?').pluck().all(userId) as string[]);
        const missing = DEFAULT_MAILBOXES.filter(mailbox => !existing.has(mailbox.path));
        if (!missing.length) {
            return;
        }
        this.db.transaction(() => {
            for (const mailbox of missing) {
                this.insertMailbox(userId, mailbox.path, mailbox.specialUse);
                this.subscribe(userId, mailbox.path);
            }
        })();
    }

    private insertMailbox(userId: number, mailboxPath: string, specialUse: string | null): number {
        return Number(
            this.stmt(
                'INSERT INTO mailboxes (user_id, path, special_use, uid_validity, created_at) VALUES (?, ?, ?, ?, ?)'
            ).run(userId, mailboxPath, specialUse, this.nextUidValidity(), now()).lastInsertRowid
        );
    }

    private mapMailbox(row: any): MailboxRow {
        return {
            id: row.id,
            userId: row.user_id,
            path: row.path,
            specialUse: row.special_use,
            uidValidity: row.uid_validity,
            uidNext: row.uid_next,
            modifyIndex: row.modify_index,
            keywords: JSON.parse(row.keywords)
        };
    }

    listMailboxes(userId: number): MailboxRow[] {
        return this.stmt('SELECT * FROM mailboxes WHERE user_id = ? ORDER BY path').all(userId).map(row => this.mapMailbox(row));
    }

    getMailbox(userId: number, mailboxPath: string): MailboxRow | null {
        const normalised = normaliseMailboxPath(mailboxPath);
        if (!normalised) {
            return null;
        }
        const row = this.stmt('SELECT * FROM mailboxes WHERE user_id = ? AND path = ?').get(userId, normalised);
        return row ? this.mapMailbox(row) : null;
    }

    getMailboxById(userId: number, mailboxId: number): MailboxRow | null {
        const row = this.stmt('SELECT * FROM mailboxes WHERE user_id = ? AND id = ?').get(userId, mailboxId);
        return row ? this.mapMailbox(row) : null;
    }

    getSpecialMailbox(userId: number, specialUse: string): MailboxRow | null {
        const row = this.stmt('SELECT * FROM mailboxes WHERE user_id = ? AND special_use = ? ORDER BY id LIMIT 1').get(userId, specialUse);
        return row ? this.mapMailbox(row) : null;
    }

    /**
     * Creates a mailbox and any missing parents. `subscribe` (the default, for folders mailmule
     * creates for the user) subscribes the new names too; an IMAP CREATE does not (RFC 3501:
     * subscribing is the client's choice).
     */
    createMailbox(userId: number, mailboxPath: string, specialUse: string | null = null, options: { subscribe?: boolean } = {}): MailboxResult<number> {
        const subscribe = options.subscribe ?? true;
        const normalised = normaliseMailboxPath(mailboxPath);
        if (!normalised) {
            return 'CANNOT';
        }
        return this.db.transaction((): MailboxResult<number> => {
            if (this.stmt('SELECT 1 FROM mailboxes WHERE user_id = ? AND path = ?').get(userId, normalised)) {
                return 'ALREADYEXISTS';
            }
            // RFC 3501 6.3.3: CREATE a/b/c should create a and a/b too, so they are selectable.
            const segments = normalised.split('/');
            for (let depth = 1; depth < segments.length; depth++) {
                const parent = segments.slice(0, depth).join('/');
                if (!this.stmt('SELECT 1 FROM mailboxes WHERE user_id = ? AND path = ?').get(userId, parent)) {
                    this.insertMailbox(userId, parent, null);
                    if (subscribe) this.subscribe(userId, parent);
                }
            }
            const id = this.insertMailbox(userId, normalised, specialUse);
            if (subscribe) this.subscribe(userId, normalised);
            return id;
        })();
    }

    renameMailbox(userId: number, from: string, to: string): MailboxResult<number> {
        const source = normaliseMailboxPath(from);
        const target = normaliseMailboxPath(to);
        if (!source || !target) {
            return !source ? 'NONEXISTENT' : 'CANNOT';
        }
        if (source === 'INBOX' || target === 'INBOX' || target.startsWith(source + '/')) {
            return 'CANNOT';
        }
        return this.db.transaction((): MailboxResult<number> => {
            const row = this.stmt('SELECT id FROM mailboxes WHERE user_id = ? AND path = ?').get(userId, source) as { id: number } | undefined;
            if (!row) {
                return 'NONEXISTENT';
            }
            if (this.stmt('SELECT 1 FROM mailboxes WHERE user_id = ? AND path = ?').get(userId, target)) {
                return 'ALREADYEXISTS';
            }
            const children = this.stmt("SELECT id, path FROM mailboxes WHERE user_id = ? AND substr(path, 1, ?) = ?").all(
                userId,
                source.length + 1,
                source + '/'
            ) as { id: number; path: string }[];
            for (const child of children) {
                const renamed = target + child.path.slice(source.length);
                if (this.stmt('SELECT 1 FROM mailboxes WHERE user_id = ? AND path = ?').get(userId, renamed)) {
                    return 'ALREADYEXISTS';
                }
            }
            // UIDs stay valid across a rename, so UIDVALIDITY is kept (RFC 3501 allows it).
            this.stmt('UPDATE mailboxes SET path = ? WHERE id = ?').run(target, row.id);
            for (const child of children) {
                this.stmt('UPDATE mailboxes SET path = ? WHERE id = ?').run(target + child.path.slice(source.length), child.id);
            }
            // Subscriptions follow the renamed mailboxes, so a client that shows only subscribed
            // folders still shows them.
            this.stmt(
                'UPDATE OR REPLACE subscriptions SET path = ? || substr(path, ?) WHERE user_id = ? AND (path = ? OR substr(path, 1, ?) = ?)'
            ).run(target, source.length + 1, userId, source, source.length + 1, source + '/');
            return row.id;
        })();
    }

    /** Deletes a mailbox and its messages. Returns the deleted id for DROP notifications. */
    deleteMailbox(userId: number, mailboxPath: string): MailboxResult<number> {
        const normalised = normaliseMailboxPath(mailboxPath);
        if (!normalised) {
            return 'NONEXISTENT';
        }
        if (normalised === 'INBOX') {
            return 'CANNOT';
        }
        const released: string[] = [];
        const result = this.db.transaction((): MailboxResult<number> => {
            const row = this.stmt('SELECT id, special_use FROM mailboxes WHERE user_id = ? AND path = ?').get(userId, normalised) as
                | { id: number; special_use: string | null }
                | undefined;
            if (!row) {
                return 'NONEXISTENT';
            }
            if (row.special_use) {
                // Sent, Drafts, Trash, Junk and Archive are where mailmule itself files mail.
                return 'CANNOT';
            }
            const hashes = this.stmt('SELECT blob_hash FROM messages WHERE mailbox_id = ?').pluck().all(row.id) as string[];
            this.stmt('DELETE FROM messages WHERE mailbox_id = ?').run(row.id);
            this.stmt('DELETE FROM journal WHERE mailbox_id = ?').run(row.id);
            this.stmt('DELETE FROM mailboxes WHERE id = ?').run(row.id);
            released.push(...this.releaseBlobs(hashes));
            return row.id;
        })();
        this.removeBlobFiles(released);
        if (typeof result === 'number') {
            this.emit('change', userId);
        }
        return result;
    }

    /**
     * SUBSCRIBE needs an existing mailbox. UNSUBSCRIBE also takes a name whose mailbox is gone:
     * RFC 3501 6.3.6 keeps such a name subscribed until the client removes it.
     */
    setSubscribed(userId: number, mailboxPath: string, subscribed: boolean): boolean {
        const normalised = normaliseMailboxPath(mailboxPath);
        if (!normalised) {
            return false;
        }
        const exists = Boolean(this.stmt('SELECT 1 FROM mailboxes WHERE user_id = ? AND path = ?').get(userId, normalised));
        if (subscribed) {
            if (exists) this.subscribe(userId, normalised);
            return exists;
        }
        const removed = this.stmt('DELETE FROM subscriptions WHERE user_id = ? AND path = ?').run(userId, normalised).changes > 0;
        return removed || exists;
    }

    /** Subscribed names, existing mailboxes or not, sorted. */
    listSubscriptions(userId: number): string[] {
        return this.stmt('SELECT path FROM subscriptions WHERE user_id = ? ORDER BY path').pluck().all(userId) as string[];
    }

    private subscribe(userId: number, normalisedPath: string): void {
        this.stmt('INSERT OR IGNORE INTO subscriptions (user_id, path) VALUES (?, ?)').run(userId, normalisedPath);
    }

    /**
     * SELECT/EXAMINE: the mailbox and its UID list read in one snapshot, with the messages that are
     * \Recent for this session. SELECT takes them (no later session sees them as recent); EXAMINE
     * only looks (RFC 3501 6.3.2).
     */
    openMailbox(userId: number, mailboxPath: string, options: { readOnly?: boolean } = {}): OpenedMailbox | null {
        return this.db.transaction((): OpenedMailbox | null => {
            const mailbox = this.getMailbox(userId, mailboxPath);
            if (!mailbox) {
                return null;
            }
            const uidList = this.stmt('SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid').pluck().all(mailbox.id) as number[];
            const firstRecent = this.firstRecentUid(mailbox.id);
            const recent = uidList.filter(uid => uid >= firstRecent);
            if (!options.readOnly && mailbox.uidNext > firstRecent) {
                this.stmt('UPDATE mailboxes SET first_recent_uid = ? WHERE id = ?').run(mailbox.uidNext, mailbox.id);
            }
            const unseenUid = (this.stmt('SELECT MIN(uid) FROM messages WHERE mailbox_id = ? AND seen = 0').pluck().get(mailbox.id) as number | null) ?? null;
            return { ...mailbox, uidList, recent, unseenUid };
        })();
    }

    private firstRecentUid(mailboxId: number): number {
        return (this.stmt('SELECT first_recent_uid FROM mailboxes WHERE id = ?').pluck().get(mailboxId) as number | undefined) ?? Number.MAX_SAFE_INTEGER;
    }

    /**
     * Of `uids` (new messages a session is being told of), those that are \Recent for it. A
     * read-write session takes them, so they are recent for no other session; a read-only one
     * only looks.
     */
    takeRecent(mailboxId: number, uids: number[], options: { readOnly?: boolean } = {}): number[] {
        if (!uids.length) {
            return [];
        }
        return this.db.transaction((): number[] => {
            const firstRecent = this.firstRecentUid(mailboxId);
            const recent = uids.filter(uid => uid >= firstRecent);
            if (recent.length && !options.readOnly) {
                let highest = 0;
                for (const uid of recent) if (uid > highest) highest = uid;
                this.stmt('UPDATE mailboxes SET first_recent_uid = ? WHERE id = ?').run(highest + 1, mailboxId);
            }
            return recent;
        })();
    }

    mailboxStatus(userId: number, mailboxPath: string): MailboxStatus | null {
        return this.db.transaction((): MailboxStatus | null => {
            const mailbox = this.getMailbox(userId, mailboxPath);
            if (!mailbox) {
                return null;
            }
            const counts = this.stmt(
                `SELECT COUNT(*) AS messages, COALESCE(SUM(seen = 0), 0) AS unseen, COALESCE(SUM(size), 0) AS size,
                        COALESCE(SUM(uid >= (SELECT first_recent_uid FROM mailboxes WHERE id = ?)), 0) AS recent
                 FROM messages WHERE mailbox_id = ?`
            ).get(mailbox.id, mailbox.id) as { messages: number; unseen: number; size: number; recent: number };
            return {
                messages: counts.messages,
                recent: counts.recent,
                unseen: counts.unseen,
                size: counts.size,
                uidNext: mailbox.uidNext,
                uidValidity: mailbox.uidValidity,
                highestModseq: mailbox.modifyIndex
            };
        })();
    }

    // ---------------------------------------------------------------- messages

    /** Parses a message (CPU only); pass the result to addMessage. */
    analyse(raw: Buffer): AnalysedMessage {
        return analyseMessage(raw);
    }

    private bumpModseq(mailboxId: number): number {
        return (this.stmt('UPDATE mailboxes SET modify_index = modify_index + 1 WHERE id = ? RETURNING modify_index').pluck().get(mailboxId) as number);
    }

    private journal(mailboxId: number, entry: JournalEntry): void {
        this.stmt('INSERT INTO journal (mailbox_id, modseq, command, uid, flags, ignore_session, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)').run(
            mailboxId,
            entry.modseq,
            entry.command,
            entry.uid,
            entry.flags ? JSON.stringify(entry.flags) : null,
            entry.ignore ?? null,
            now()
        );
    }

    private rememberKeywords(mailboxId: number, flags: string[]): void {
        const keywords = flags.filter(flag => !isSystemFlag(flag));
        if (!keywords.length) {
            return;
        }
        const row = this.stmt('SELECT keywords FROM mailboxes WHERE id = ?').pluck().get(mailboxId) as string;
        const known: string[] = JSON.parse(row);
        const lower = new Set(known.map(k => k.toLowerCase()));
        const added = keywords.filter(k => !lower.has(k.toLowerCase()));
        if (added.length) {
            this.stmt('UPDATE mailboxes SET keywords = ? WHERE id = ?').run(JSON.stringify([...known, ...added].slice(0, 256)), mailboxId);
        }
    }

    private insertBlob(message: AnalysedMessage): void {
        const inserted = this.stmt(
            `INSERT INTO blobs (hash, size, refs, mime_tree, envelope, bodystructure, header_lines, search_headers, search_body, message_id, sent_date, sent_day, created_at)
             VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (hash) DO UPDATE SET refs = refs + 1`
        ).run(
            message.hash,
            message.size,
            v8.serialize(message.mimeTree),
            v8.serialize(message.envelope),
            v8.serialize(message.bodystructure),
            v8.serialize(message.headerLines),
            message.searchHeaders,
            message.searchBody,
            message.messageId,
            message.sentDate,
            message.sentDay,
            now()
        );
        void inserted;
    }

    /** Decrements blob references; returns hashes that reached zero (their rows are deleted). */
    private releaseBlobs(hashes: string[]): string[] {
        const released: string[] = [];
        for (const hash of hashes) {
            const refs = this.stmt('UPDATE blobs SET refs = refs - 1 WHERE hash = ? RETURNING refs').pluck().get(hash) as number | undefined;
            if (refs !== undefined && refs <= 0) {
                this.stmt('DELETE FROM blobs WHERE hash = ?').run(hash);
                released.push(hash);
            }
        }
        return released;
    }

    /** Removes message files written for rows that were never committed (or are gone). */
    discardUnreferencedFiles(hashes: string[]): void {
        this.removeBlobFiles(hashes);
    }

    private removeBlobFiles(hashes: string[]): void {
        for (const hash of hashes) {
            // Another transaction may have re-added the same content since; only remove a file nothing points at.
            if (!this.stmt('SELECT 1 FROM blobs WHERE hash = ?').get(hash)) {
                this.blobs.removeSync(hash);
            }
        }
    }

    private insertMessageRow(
        mailboxId: number,
        blobHash: string,
        size: number,
        messageId: string | null,
        flags: string[],
        idate: number,
        upstream: UpstreamRef | null
    ): { uid: number; modseq: number } {
        const uid = this.stmt('UPDATE mailboxes SET uid_next = uid_next + 1 WHERE id = ? RETURNING uid_next - 1').pluck().get(mailboxId) as number;
        const modseq = this.bumpModseq(mailboxId);
        this.stmt(
            `INSERT INTO messages (mailbox_id, uid, modseq, flags, seen, deleted, idate, size, blob_hash, message_id,
                                   upstream_account, upstream_folder, upstream_uidvalidity, upstream_uid)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
        ).run(
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
        this.rememberKeywords(mailboxId, flags);
        return { uid, modseq };
    }

    /**
     * Inside a transaction: stores one analysed message (its file already written) in a mailbox and
     * journals it. With `dedupeByMessageId`, only the copy mailmule filed itself stands in for the
     * client's, and only once: any other APPEND (an edited message re-saved under the same
     * Message-ID) is stored. `existing` says the filed copy was used.
     */
    private insertIntoMailbox(
        mailboxId: number,
        message: AnalysedMessage,
        flags: string[],
        idate: number,
        upstream: UpstreamRef | null,
        options: { ignoreSession?: string; dedupeByMessageId?: boolean }
    ): { uid: number; modseq: number; existing: boolean } {
        if (options.dedupeByMessageId && message.messageId) {
            const filed = this.stmt(
                'SELECT uid, modseq FROM messages WHERE mailbox_id = ? AND message_id = ? AND filed_by_gateway = 1 ORDER BY uid LIMIT 1'
            ).get(mailboxId, message.messageId) as { uid: number; modseq: number } | undefined;
            if (filed) {
                this.stmt('UPDATE messages SET filed_by_gateway = 0 WHERE mailbox_id = ? AND uid = ?').run(mailboxId, filed.uid);
                return { ...filed, existing: true };
            }
        }
        this.insertBlob(message);
        const { uid, modseq } = this.insertMessageRow(mailboxId, message.hash, message.size, message.messageId, flags, idate, upstream);
        this.journal(mailboxId, { command: 'EXISTS', uid, modseq, ignore: options.ignoreSession });
        return { uid, modseq, existing: false };
    }

    /**
     * Adds a message to a mailbox of `userId`. The raw file is on disk before the row commits.
     * `ignoreSession` marks the journal entry so the session that made the change (and already
     * told its client) is not told twice.
     */
    addMessage(
        userId: number,
        mailboxId: number,
        raw: Buffer,
        options: {
            flags?: string[];
            idate?: number;
            ignoreSession?: string;
            analysed?: AnalysedMessage;
            upstream?: UpstreamRef;
            /** When the mailbox already holds this Message-ID, keep that copy and report it instead. */
            dedupeByMessageId?: boolean;
        } = {}
    ): MailboxResult<AddedMessage & { existing?: boolean }> {
        const message = options.analysed ?? analyseMessage(raw);
        const flags = canonicalFlags(options.flags ?? []);
        this.blobs.writeSync(message.hash, raw);
        const result = this.db.transaction((): MailboxResult<AddedMessage & { existing?: boolean }> => {
            const mailbox = this.getMailboxById(userId, mailboxId);
            if (!mailbox) {
                return 'TRYCREATE';
            }
            const { uid, modseq, existing } = this.insertIntoMailbox(mailboxId, message, flags, options.idate ?? now(), options.upstream ?? null, options);
            if (existing) {
                return { uid, modseq, uidValidity: mailbox.uidValidity, mailboxId, existing: true };
            }
            return { uid, modseq, uidValidity: mailbox.uidValidity, mailboxId };
        })();
        if (typeof result === 'object' && !result.existing) {
            this.emit('change', userId);
        } else {
            this.removeBlobFiles([message.hash]);
        }
        return result;
    }

    /**
     * MULTIAPPEND (RFC 3502): adds several messages to one mailbox in a single transaction, so
     * either all are stored or none. The files must already be written (blobs.write). Each
     * message takes the next UID in order; with `dedupeByMessageId` a message mailmule filed
     * itself stands in for the client's copy, as in addMessage.
     */
    addMessages(
        userId: number,
        mailboxId: number,
        messages: { raw: Buffer; analysed: AnalysedMessage; flags?: string[]; idate?: number }[],
        options: { ignoreSession?: string; dedupeByMessageId?: boolean } = {}
    ): MailboxResult<{ uidValidity: number; uids: number[] }> {
        let added = 0;
        // Cheap when the file is there already; makes sure a concurrent cleanup did not remove it.
        for (const { raw, analysed } of messages) this.blobs.writeSync(analysed.hash, raw);
        const transaction = this.db.transaction((): MailboxResult<{ uidValidity: number; uids: number[] }> => {
            const mailbox = this.getMailboxById(userId, mailboxId);
            if (!mailbox) {
                return 'TRYCREATE';
            }
            const uids: number[] = [];
            for (const { analysed, flags, idate } of messages) {
                const { uid, existing } = this.insertIntoMailbox(mailboxId, analysed, canonicalFlags(flags ?? []), idate ?? now(), null, options);
                uids.push(uid);
                if (!existing) added++;
            }
            return { uidValidity: mailbox.uidValidity, uids };
        });
        let result: MailboxResult<{ uidValidity: number; uids: number[] }>;
        try {
            result = transaction();
        } finally {
            // Files of messages not stored (rolled back, or stood in for by mailmule's own copy).
            this.removeBlobFiles(messages.map(message => message.analysed.hash));
        }
        if (typeof result === 'object' && added) {
            this.emit('change', userId);
        }
        return result;
    }

    /** Whether a mailbox already holds a message with this Message-ID. */
    hasMessageId(userId: number, mailboxId: number, messageId: string): boolean {
        return Boolean(
            this.stmt(
                'SELECT 1 FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id WHERE mb.user_id = ? AND m.mailbox_id = ? AND m.message_id = ? LIMIT 1'
            ).get(userId, mailboxId, normaliseMessageId(messageId))
        );
    }

    /**
     * Messages of a mailbox for FETCH, in UID order, a page at a time (better-sqlite3 cannot run
     * writes while a cursor is open, and FETCH may mark messages \Seen as it goes).
     */
    fetchPage(userId: number, mailboxId: number, uids: number[], columns: FetchColumns, changedSince = 0): FetchedMessage[] {
        if (!uids.length) {
            return [];
        }
        // Hot path (a FETCH 1:* of 10,000 messages): ownership checked once, raw rows, no Set for a
        // contiguous page, each distinct flags string parsed once.
        if (!this.stmt('SELECT 1 FROM mailboxes WHERE id = ? AND user_id = ?').get(mailboxId, userId)) {
            return [];
        }
        const extra: string[] = [];
        if (columns.envelope) extra.push('b.envelope');
        if (columns.bodystructure) extra.push('b.bodystructure');
        if (columns.mimeTree) extra.push('b.mime_tree');
        if (columns.headerLines) extra.push('b.header_lines');
        const join = extra.length ? 'JOIN blobs b ON b.hash = m.blob_hash' : '';
        const sql = `SELECT m.uid, m.modseq, m.flags, m.idate, m.size, m.blob_hash${extra.length ? ', ' + extra.join(', ') : ''}
                     FROM messages m ${join}
                     WHERE m.mailbox_id = ? AND m.uid BETWEEN ? AND ? AND m.modseq > ?
                     ORDER BY m.uid /* raw */`;
        let statement = this.statements.get(sql);
        if (!statement) {
            statement = this.db.prepare(sql).raw(true);
            this.statements.set(sql, statement);
        }
        const first = uids[0];
        const last = uids[uids.length - 1];
        const wanted = last - first + 1 === uids.length ? null : new Set(uids);
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
            const message: FetchedMessage = { uid, modseq: row[1] as number, flags: [...flags], idate: row[3] as number, size: row[4] as number, blobHash: row[5] as string };
            let index = 6;
            if (columns.envelope) message.envelope = v8.deserialize(row[index++] as Buffer);
            if (columns.bodystructure) message.bodystructure = v8.deserialize(row[index++] as Buffer);
            if (columns.mimeTree) message.mimeTree = v8.deserialize(row[index++] as Buffer);
            if (columns.headerLines) message.headerLines = v8.deserialize(row[index++] as Buffer);
            out.push(message);
        }
        return out;
    }

    /**
     * STORE: changes flags of `uids`. Messages whose modseq is above `unchangedSince` are left
     * alone and reported in `modified`. Each changed message gets its own modseq.
     */
    updateFlags(
        userId: number,
        mailboxId: number,
        uids: number[],
        action: 'set' | 'add' | 'remove',
        values: string[],
        options: { unchangedSince?: number; ignoreSession?: string } = {}
    ): { changes: FlagChange[]; modified: number[] } | null {
        const requested = canonicalFlags(values);
        const result = this.db.transaction(() => {
            if (!this.getMailboxById(userId, mailboxId)) {
                return null;
            }
            const changes: FlagChange[] = [];
            const modified: number[] = [];
            const rows = this.selectByUids(mailboxId, uids, 'uid, modseq, flags') as { uid: number; modseq: number; flags: string }[];
            for (const row of rows) {
                const current: string[] = JSON.parse(row.flags);
                if (options.unchangedSince !== undefined && options.unchangedSince > 0 && row.modseq > options.unchangedSince) {
                    modified.push(row.uid);
                    continue;
                }
                let next: string[];
                if (action === 'set') {
                    next = requested;
                } else if (action === 'add') {
                    const lower = new Set(current.map(f => f.toLowerCase()));
                    next = [...current, ...requested.filter(f => !lower.has(f.toLowerCase()))];
                } else {
                    const remove = new Set(requested.map(f => f.toLowerCase()));
                    next = current.filter(f => !remove.has(f.toLowerCase()));
                }
                const same = next.length === current.length && next.every(f => current.some(c => c.toLowerCase() === f.toLowerCase()));
                if (same) {
                    changes.push({ uid: row.uid, flags: current, modseq: row.modseq, changed: false });
                    continue;
                }
                const modseq = this.bumpModseq(mailboxId);
                this.stmt('UPDATE messages SET flags = ?, seen = ?, deleted = ?, modseq = ? WHERE mailbox_id = ? AND uid = ?').run(
                    JSON.stringify(next),
                    next.includes('\\Seen') ? 1 : 0,
                    next.includes('\\Deleted') ? 1 : 0,
                    modseq,
                    mailboxId,
                    row.uid
                );
                this.rememberKeywords(mailboxId, next);
                this.journal(mailboxId, { command: 'FETCH', uid: row.uid, modseq, flags: next, ignore: options.ignoreSession });
                changes.push({ uid: row.uid, flags: next, modseq, changed: true });
            }
            return { changes, modified };
        })();
        if (result && result.changes.some(change => change.changed)) {
            this.emit('change', userId);
        }
        return result;
    }

    private selectByUids(mailboxId: number, uids: number[], columns: string): unknown[] {
        if (!uids.length) {
            return [];
        }
        const sorted = uids.length > 1 && uids.some((uid, i) => i && uid < uids[i - 1]) ? [...uids].sort((a, b) => a - b) : uids;
        const wanted = new Set(sorted);
        const rows = this.stmt(`SELECT ${columns} FROM messages WHERE mailbox_id = ? AND uid BETWEEN ? AND ? ORDER BY uid`).all(
            mailboxId,
            sorted[0],
            sorted[sorted.length - 1]
        ) as { uid: number }[];
        return rows.filter(row => wanted.has(row.uid));
    }

    /** EXPUNGE: removes \Deleted messages (only those in `uids` when given). Returns removed UIDs in order. */
    expunge(userId: number, mailboxId: number, options: { uids?: number[]; ignoreSession?: string } = {}): { uid: number; modseq: number }[] {
        const released: string[] = [];
        const removed = this.db.transaction(() => {
            if (!this.getMailboxById(userId, mailboxId)) {
                return [];
            }
            let rows = this.stmt(
                'SELECT uid, blob_hash, upstream_account, upstream_folder, upstream_uidvalidity, upstream_uid FROM messages WHERE mailbox_id = ? AND deleted = 1 ORDER BY uid'
            ).all(mailboxId) as {
                uid: number;
                blob_hash: string;
                upstream_account: string | null;
                upstream_folder: string | null;
                upstream_uidvalidity: number | null;
                upstream_uid: number | null;
            }[];
            if (options.uids) {
                const wanted = new Set(options.uids);
                rows = rows.filter(row => wanted.has(row.uid));
            }
            const out: { uid: number; modseq: number }[] = [];
            for (const row of rows) {
                this.stmt('DELETE FROM messages WHERE mailbox_id = ? AND uid = ?').run(mailboxId, row.uid);
                const modseq = this.bumpModseq(mailboxId);
                this.journal(mailboxId, { command: 'EXPUNGE', uid: row.uid, modseq, ignore: options.ignoreSession });
                out.push({ uid: row.uid, modseq });
                if (row.upstream_uid !== null) {
                    // The uplink deletes it upstream too when the account says deleteUpstream.
                    this.stmt('INSERT OR IGNORE INTO sync_deletions (account, folder, uid_validity, uid, created_at) VALUES (?, ?, ?, ?, ?)').run(
                        row.upstream_account, row.upstream_folder, row.upstream_uidvalidity, row.upstream_uid, now()
                    );
                }
            }
            released.push(...this.releaseBlobs(rows.map(row => row.blob_hash)));
            return out;
        })();
        this.removeBlobFiles(released);
        if (removed.length) {
            this.emit('change', userId);
        }
        return removed;
    }

    /**
     * COPY (and the first half of MOVE): the copies share the source's blob. Returns the UID
     * mapping for COPYUID, or a code when the destination does not exist.
     */
    copyMessages(
        userId: number,
        mailboxId: number,
        uids: number[],
        destinationPath: string,
        options: { move?: boolean; ignoreSession?: string } = {}
    ): MailboxResult<{ uidValidity: number; sourceUid: number[]; destinationUid: number[]; expunged: { uid: number; modseq: number }[] }> {
        const result = this.db.transaction(() => {
            const source = this.getMailboxById(userId, mailboxId);
            const destination = this.getMailbox(userId, destinationPath);
            if (!source || !destination) {
                return 'TRYCREATE' as const;
            }
            const rows = this.selectByUids(
                mailboxId,
                uids,
                'uid, flags, idate, size, blob_hash, message_id, upstream_account, upstream_folder, upstream_uidvalidity, upstream_uid, upstream_flags, stub'
            ) as {
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
            }[];
            const sourceUid: number[] = [];
            const destinationUid: number[] = [];
            const expunged: { uid: number; modseq: number }[] = [];
            for (const row of rows) {
                this.stmt('UPDATE blobs SET refs = refs + 1 WHERE hash = ?').run(row.blob_hash);
                const flags: string[] = JSON.parse(row.flags);
                // A moved message is still the same upstream message (and still a stub); a copy is a new local one.
                const carry = options.move && row.upstream_uid !== null;
                if (carry) {
                    this.stmt('UPDATE messages SET upstream_uid = NULL WHERE mailbox_id = ? AND uid = ?').run(mailboxId, row.uid);
                }
                const added = this.insertMessageRow(
                    destination.id,
                    row.blob_hash,
                    row.size,
                    row.message_id,
                    flags,
                    row.idate,
                    carry ? { account: row.upstream_account!, folder: row.upstream_folder!, uidValidity: row.upstream_uidvalidity!, uid: row.upstream_uid! } : null
                );
                if (carry || row.stub) {
                    this.stmt('UPDATE messages SET upstream_flags = ?, stub = ? WHERE mailbox_id = ? AND uid = ?').run(carry ? row.upstream_flags : null, row.stub, destination.id, added.uid);
                }
                // Into the source mailbox itself, the acting session announces the copy (and no other session is it).
                this.journal(destination.id, { command: 'EXISTS', uid: added.uid, modseq: added.modseq, ignore: destination.id === source.id ? options.ignoreSession : undefined });
                sourceUid.push(row.uid);
                destinationUid.push(added.uid);
            }
            if (options.move) {
                for (const row of rows) {
                    this.stmt('DELETE FROM messages WHERE mailbox_id = ? AND uid = ?').run(mailboxId, row.uid);
                    const modseq = this.bumpModseq(mailboxId);
                    this.journal(mailboxId, { command: 'EXPUNGE', uid: row.uid, modseq, ignore: options.ignoreSession });
                    expunged.push({ uid: row.uid, modseq });
                }
                // The blob references moved with the rows: one added per copy, one dropped per delete.
                this.releaseBlobs(rows.map(row => row.blob_hash));
            }
            return { uidValidity: destination.uidValidity, sourceUid, destinationUid, expunged };
        })();
        if (typeof result === 'object' && result.sourceUid.length) {
            this.emit('change', userId);
        }
        return result;
    }

    /** UIDs in a mailbox above `afterUid`, ascending (what a session has not been told of yet). */
    uidsAfter(mailboxId: number, afterUid: number): number[] {
        return this.stmt('SELECT uid FROM messages WHERE mailbox_id = ? AND uid > ? ORDER BY uid').pluck().all(mailboxId, afterUid) as number[];
    }

    /** SEARCH: the matching UIDs (ascending) and the highest modseq among them. */
    search(userId: number, mailboxId: number, terms: SearchTerm[]): { uids: number[]; highestModseq: number; modseqByUid: Map<number, number> } {
        const compiled = compileSearch(terms);
        const sql = `SELECT m.uid, m.modseq FROM messages m ${compiled.needsBlob ? 'JOIN blobs b ON b.hash = m.blob_hash' : ''}
                     WHERE m.mailbox_id = ? AND m.mailbox_id IN (SELECT id FROM mailboxes WHERE user_id = ?) AND (${compiled.where})
                     ORDER BY m.uid`;
        const rows = this.db.prepare(sql).all(mailboxId, userId, ...compiled.params) as { uid: number; modseq: number }[];
        let highestModseq = 0;
        for (const row of rows) {
            if (row.modseq > highestModseq) highestModseq = row.modseq;
        }
        return { uids: rows.map(row => row.uid), highestModseq, modseqByUid: new Map(rows.map(row => [row.uid, row.modseq])) };
    }

    /**
     * SORT and THREAD: what their keys are computed from (sort.ts), for `uids` of a mailbox in
     * UID order. The envelope (subject, addresses) and the raw header lines (THREAD's
     * References) are deserialised only when asked for: they are most of the cost.
     */
    sortRecords(userId: number, mailboxId: number, uids: number[], columns: { envelope: boolean; headerLines: boolean }): SortRecord[] {
        const sql = `SELECT m.uid, m.idate, m.size, b.sent_date${columns.envelope ? ', b.envelope' : ''}${columns.headerLines ? ', b.header_lines' : ''}
                     FROM messages m JOIN blobs b ON b.hash = m.blob_hash
                     WHERE m.mailbox_id = ? AND m.mailbox_id IN (SELECT id FROM mailboxes WHERE user_id = ?)
                       AND m.uid IN (SELECT value FROM json_each(?))
                     ORDER BY m.uid`;
        const rows = this.stmt(sql).all(mailboxId, userId, JSON.stringify(uids)) as { uid: number; idate: number; size: number; sent_date: number | null; envelope?: Buffer; header_lines?: Buffer }[];
        return rows.map(row => ({
            uid: row.uid,
            idate: row.idate,
            size: row.size,
            sentDate: row.sent_date,
            envelope: row.envelope ? v8.deserialize(row.envelope) : [],
            headerLines: row.header_lines ? v8.deserialize(row.header_lines) : undefined
        }));
    }

    // ---------------------------------------------------------------- submission and queue

    /**
     * Commits submitted messages, several at once when they arrive together (group commit: one
     * fsync for the batch). Each submission is all-or-nothing inside its own savepoint; the
     * message files must already be on disk (BlobFiles.write). Returns one result or error each.
     */
    commitSubmissions(submissions: Submission[]): (SubmissionResult | Error)[] {
        const changedUsers = new Set<number>();
        const results = this.db.transaction(() =>
            submissions.map(submission => {
                try {
                    return this.db.transaction(() => this.commitOne(submission, changedUsers))();
                } catch (err) {
                    return err instanceof Error ? err : new Error(String(err));
                }
            })
        )();
        for (const userId of changedUsers) {
            this.emit('change', userId);
        }
        return results;
    }

    private commitOne(submission: Submission, changedUsers: Set<number>): SubmissionResult {
        const at = now();
        let queueId: number | null = null;
        if (submission.relayRecipients.length) {
            if (!submission.account) {
                throw new Error('no upstream account to relay through');
            }
            const relay = submission.relay.analysed;
            this.insertBlob(relay);
            // ENVELOPE's subject is decoded (searchHeaders is lower-cased for SEARCH).
            const envelopeSubject = relay.envelope[1] as Buffer | string | null | undefined;
            const subject = envelopeSubject == null ? null : Buffer.isBuffer(envelopeSubject) ? envelopeSubject.toString('utf8') : String(envelopeSubject);
            queueId = Number(
                this.stmt(
                    `INSERT INTO queue (user_id, account, mail_from, blob_hash, size, message_id, subject, state, attempts, created_at, updated_at)
                     VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', 0, ?, ?)`
                ).run(submission.userId, submission.account, submission.mailFrom, relay.hash, relay.size, relay.messageId, subject, at, at).lastInsertRowid
            );
            const addRecipient = this.stmt('INSERT OR IGNORE INTO queue_recipients (queue_id, address) VALUES (?, ?)');
            for (const address of submission.relayRecipients) {
                addRecipient.run(queueId, address);
            }
        }

        let sentUid: number | null = null;
        const sentMailbox = this.getSpecialMailbox(submission.userId, '\\Sent');
        const sent = submission.sent.analysed;
        if (sentMailbox) {
            // The client may have APPENDed its own copy already (Thunderbird does): keep one.
            const existing = sent.messageId
                ? (this.stmt('SELECT uid FROM messages WHERE mailbox_id = ? AND message_id = ? LIMIT 1').pluck().get(sentMailbox.id, sent.messageId) as number | undefined)
                : undefined;
            if (existing) {
                sentUid = existing;
            } else {
                this.insertBlob(sent);
                const added = this.insertMessageRow(sentMailbox.id, sent.hash, sent.size, sent.messageId, ['\\Seen'], at, null);
                this.stmt('UPDATE messages SET filed_by_gateway = 1 WHERE mailbox_id = ? AND uid = ?').run(sentMailbox.id, added.uid);
                this.journal(sentMailbox.id, { command: 'EXISTS', uid: added.uid, modseq: added.modseq });
                sentUid = added.uid;
                changedUsers.add(submission.userId);
            }
        }

        const deliveredTo: number[] = [];
        for (const userId of new Set(submission.localUserIds)) {
            const inbox = this.getMailbox(userId, 'INBOX');
            if (!inbox) continue;
            const relay = submission.relay.analysed;
            this.insertBlob(relay);
            const added = this.insertMessageRow(inbox.id, relay.hash, relay.size, relay.messageId, [], at, null);
            this.journal(inbox.id, { command: 'EXISTS', uid: added.uid, modseq: added.modseq });
            deliveredTo.push(userId);
            changedUsers.add(userId);
        }
        return { queueId, sentUid, deliveredTo };
    }

    /**
     * Puts a message straight into a user's INBOX (bounces, local notices). The file must be on disk.
     */
    deliverToInbox(userId: number, raw: Buffer, analysed: AnalysedMessage): MailboxResult<AddedMessage> {
        const inbox = this.getMailbox(userId, 'INBOX');
        if (!inbox) return 'TRYCREATE';
        return this.addMessage(userId, inbox.id, raw, { analysed });
    }

    private mapQueue(row: any): QueueEntry {
        const recipients = this.stmt('SELECT address, state, last_error AS lastError FROM queue_recipients WHERE queue_id = ? ORDER BY rowid').all(row.id) as QueueEntry['recipients'];
        return {
            id: row.id,
            userId: row.user_id,
            user: row.user_name,
            account: row.account,
            mailFrom: row.mail_from,
            blobHash: row.blob_hash,
            size: row.size,
            messageId: row.message_id,
            subject: row.subject,
            state: row.state,
            attempts: row.attempts,
            nextAttemptAt: row.next_attempt_at,
            lastError: row.last_error,
            createdAt: row.created_at,
            updatedAt: row.updated_at,
            recipients
        };
    }

    listQueue(options: { states?: QueueState[] } = {}): QueueEntry[] {
        const rows = this.stmt('SELECT q.*, u.name AS user_name FROM queue q JOIN users u ON u.id = q.user_id ORDER BY q.id').all() as any[];
        return rows.filter(row => !options.states || options.states.includes(row.state)).map(row => this.mapQueue(row));
    }

    getQueueEntry(id: number): QueueEntry | null {
        const row = this.stmt('SELECT q.*, u.name AS user_name FROM queue q JOIN users u ON u.id = q.user_id WHERE q.id = ?').get(id);
        return row ? this.mapQueue(row) : null;
    }

    /** Makes deferred or failed entries due now. Returns how many. */
    retryQueue(id: number | null): number {
        const at = now();
        const sql =
            "UPDATE queue SET state = 'queued', next_attempt_at = NULL, updated_at = ? WHERE state IN ('deferred', 'failed')" +
            (id === null ? '' : ' AND id = ?');
        const info = id === null ? this.stmt(sql).run(at) : this.stmt(sql).run(at, id);
        if (info.changes) {
            this.stmt("UPDATE queue_recipients SET state = 'pending', last_error = NULL WHERE state = 'failed'" + (id === null ? '' : ' AND queue_id = ?')).run(
                ...(id === null ? [] : [id])
            );
        }
        return info.changes;
    }

    /** Removes an entry (any state but sending). Returns false when there is no such entry. */
    dropQueueEntry(id: number): boolean | 'BUSY' {
        const released: string[] = [];
        const result = this.db.transaction((): boolean | 'BUSY' => {
            const row = this.stmt('SELECT state, blob_hash FROM queue WHERE id = ?').get(id) as { state: QueueState; blob_hash: string } | undefined;
            if (!row) return false;
            if (row.state === 'sending') return 'BUSY';
            this.stmt('DELETE FROM queue WHERE id = ?').run(id);
            released.push(...this.releaseBlobs([row.blob_hash]));
            return true;
        })();
        this.removeBlobFiles(released);
        return result;
    }

    /** Entries the uplink should try now: queued, or deferred and due. Oldest first. */
    dueQueueEntries(at: number = now()): QueueEntry[] {
        const rows = this.stmt(
            `SELECT q.*, u.name AS user_name FROM queue q JOIN users u ON u.id = q.user_id
             WHERE q.state = 'queued' OR (q.state = 'deferred' AND COALESCE(q.next_attempt_at, 0) <= ?)
             ORDER BY q.id`
        ).all(at);
        return rows.map(row => this.mapQueue(row));
    }

    /**
     * Marks an entry as being sent (committed before the first byte goes out), so a crash is
     * seen at start-up: see recoverInterruptedSends.
     */
    markSending(id: number): void {
        this.stmt("UPDATE queue SET state = 'sending', attempts = attempts + 1, updated_at = ? WHERE id = ?").run(now(), id);
    }

    /** Records the provider's answer for each recipient and the entry's new state, in one commit. */
    recordSendResult(
        id: number,
        outcome: {
            sent: string[];
            failed: { address: string; error: string }[];
            deferredError: string | null;
            state: 'sent' | 'deferred' | 'failed';
            nextAttemptAt: number | null;
        }
    ): void {
        this.db.transaction(() => {
            const at = now();
            for (const address of outcome.sent) {
                this.stmt("UPDATE queue_recipients SET state = 'sent', last_error = NULL WHERE queue_id = ? AND address = ?").run(id, address);
            }
            for (const failure of outcome.failed) {
                this.stmt("UPDATE queue_recipients SET state = 'failed', last_error = ? WHERE queue_id = ? AND address = ?").run(failure.error, id, failure.address);
            }
            const lastError = outcome.deferredError ?? outcome.failed[0]?.error ?? null;
            this.stmt('UPDATE queue SET state = ?, next_attempt_at = ?, last_error = COALESCE(?, last_error), updated_at = ? WHERE id = ?').run(
                outcome.state,
                outcome.nextAttemptAt,
                lastError,
                at,
                id
            );
        })();
    }

    /**
     * At start-up: an entry left in 'sending' was interrupted (crash, power cut). Its recipients
     * that were not recorded as sent are tried again. If the provider had accepted the message
     * and its reply was lost with us, this is the one case where it goes out twice.
     */
    recoverInterruptedSends(): number {
        return this.stmt(
            "UPDATE queue SET state = 'deferred', next_attempt_at = NULL, last_error = 'interrupted while sending', updated_at = ? WHERE state = 'sending'"
        ).run(now()).changes;
    }

    /** Forgets sent entries older than `maxAgeMs` and releases their message files. */
    pruneSentQueue(maxAgeMs: number): number {
        const released: string[] = [];
        const count = this.db.transaction(() => {
            const rows = this.stmt("SELECT id, blob_hash FROM queue WHERE state = 'sent' AND updated_at < ?").all(now() - maxAgeMs) as { id: number; blob_hash: string }[];
            for (const row of rows) {
                this.stmt('DELETE FROM queue WHERE id = ?').run(row.id);
            }
            released.push(...this.releaseBlobs(rows.map(row => row.blob_hash)));
            return rows.length;
        })();
        this.removeBlobFiles(released);
        return count;
    }

    queueCounts(): Record<QueueState, number> {
        const counts: Record<QueueState, number> = { queued: 0, sending: 0, sent: 0, deferred: 0, failed: 0 };
        for (const row of this.stmt('SELECT state, COUNT(*) AS n FROM queue GROUP BY state').all() as { state: QueueState; n: number }[]) {
            counts[row.state] = row.n;
        }
        return counts;
    }

    // ---------------------------------------------------------------- uplink sync state

    getSyncFolder(account: string, folder: string): SyncFolderState | null {
        const row = this.stmt('SELECT * FROM sync_folders WHERE account = ? AND folder = ?').get(account, folder) as any;
        return row
            ? { account, folder, uidValidity: row.uid_validity, lastUid: row.last_uid, highestModseq: row.highest_modseq, lastFlagScan: row.last_flag_scan }
            : null;
    }

    saveSyncFolder(state: SyncFolderState): void {
        this.stmt(
            `INSERT INTO sync_folders (account, folder, uid_validity, last_uid, highest_modseq, last_flag_scan) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (account, folder) DO UPDATE SET uid_validity = excluded.uid_validity, last_uid = excluded.last_uid,
                highest_modseq = excluded.highest_modseq, last_flag_scan = excluded.last_flag_scan`
        ).run(state.account, state.folder, state.uidValidity, state.lastUid, state.highestModseq, state.lastFlagScan);
    }

    /**
     * Records upstream headers seen in one batch: a message whose Message-ID the local mailbox
     * already holds (delivered locally, or sent from here) is linked to that copy; the others
     * wait in sync_pending for their bodies. The folder's last seen UID advances in the same
     * commit, so a cut link never makes us list or download a message twice.
     */
    recordUpstreamHeaders(
        userId: number,
        mailboxId: number,
        state: SyncFolderState,
        headers: { uid: number; size: number; messageId: string | null; idate: number; flags: string[] }[]
    ): { linked: number; pending: number } {
        let linked = 0;
        let pending = 0;
        this.db.transaction(() => {
            if (!this.getMailboxById(userId, mailboxId)) throw new Error('mailbox does not belong to the user');
            for (const header of headers) {
                const flags = JSON.stringify(canonicalFlags(header.flags));
                if (this.stmt('SELECT 1 FROM messages WHERE upstream_account = ? AND upstream_folder = ? AND upstream_uidvalidity = ? AND upstream_uid = ?').get(
                    state.account, state.folder, state.uidValidity, header.uid
                )) {
                    continue;
                }
                const messageId = header.messageId ? normaliseMessageId(header.messageId) : null;
                if (messageId && this.linkByMessageId(mailboxId, messageId, state, header.uid, flags)) {
                    linked++;
                    continue;
                }
                this.stmt(
                    `INSERT OR IGNORE INTO sync_pending (account, folder, uid_validity, uid, size, message_id, idate, flags) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
                ).run(state.account, state.folder, state.uidValidity, header.uid, header.size, messageId, header.idate, flags);
                pending++;
            }
            this.saveSyncFolder(state);
        })();
        return { linked, pending };
    }

    private linkByMessageId(mailboxId: number, messageId: string, ref: { account: string; folder: string; uidValidity: number }, uid: number, upstreamFlags: string): boolean {
        const local = this.stmt('SELECT id FROM messages WHERE mailbox_id = ? AND message_id = ? AND upstream_uid IS NULL ORDER BY uid LIMIT 1').get(mailboxId, messageId) as
            | { id: number }
            | undefined;
        if (!local) return false;
        this.stmt('UPDATE messages SET upstream_account = ?, upstream_folder = ?, upstream_uidvalidity = ?, upstream_uid = ?, upstream_flags = ? WHERE id = ?').run(
            ref.account, ref.folder, ref.uidValidity, uid, upstreamFlags, local.id
        );
        return true;
    }

    /** Bodies still to download for an account (current UIDVALIDITY only), smallest first. */
    pendingDownloads(account: string): PendingDownload[] {
        return (
            this.stmt(
                `SELECT p.* FROM sync_pending p JOIN sync_folders f ON f.account = p.account AND f.folder = p.folder AND f.uid_validity = p.uid_validity
                 WHERE p.account = ? ORDER BY p.size, p.uid`
            ).all(account) as any[]
        ).map(row => ({
            account: row.account,
            folder: row.folder,
            uidValidity: row.uid_validity,
            uid: row.uid,
            size: row.size,
            messageId: row.message_id,
            idate: row.idate,
            flags: JSON.parse(row.flags)
        }));
    }

    dropPending(ref: UpstreamRef): void {
        this.stmt('DELETE FROM sync_pending WHERE account = ? AND folder = ? AND uid_validity = ? AND uid = ?').run(ref.account, ref.folder, ref.uidValidity, ref.uid);
    }

    /**
     * Stores a downloaded upstream message and clears its pending row in one commit. Returns
     * 'DUPLICATE' when that upstream message (or its Message-ID in this mailbox) is already here.
     */
    importUpstream(
        userId: number,
        mailboxId: number,
        raw: Buffer,
        analysed: AnalysedMessage,
        ref: UpstreamRef,
        options: { flags: string[]; idate: number; stub?: boolean }
    ): number | 'DUPLICATE' | 'TRYCREATE' {
        this.blobs.writeSync(analysed.hash, raw);
        const flags = canonicalFlags(options.flags);
        const result = this.db.transaction((): number | 'DUPLICATE' | 'TRYCREATE' => {
            if (!this.getMailboxById(userId, mailboxId)) return 'TRYCREATE';
            this.dropPending(ref);
            if (this.stmt('SELECT 1 FROM messages WHERE upstream_account = ? AND upstream_folder = ? AND upstream_uidvalidity = ? AND upstream_uid = ?').get(
                ref.account, ref.folder, ref.uidValidity, ref.uid
            )) {
                return 'DUPLICATE';
            }
            if (analysed.messageId && this.linkByMessageId(mailboxId, analysed.messageId, ref, ref.uid, JSON.stringify(flags))) {
                return 'DUPLICATE';
            }
            this.insertBlob(analysed);
            const { uid, modseq } = this.insertMessageRow(mailboxId, analysed.hash, analysed.size, analysed.messageId, flags, options.idate, ref);
            this.stmt('UPDATE messages SET upstream_flags = ?, stub = ? WHERE mailbox_id = ? AND uid = ?').run(JSON.stringify(flags), options.stub ? 1 : 0, mailboxId, uid);
            this.journal(mailboxId, { command: 'EXISTS', uid, modseq });
            return uid;
        })();
        if (typeof result === 'number') this.emit('change', userId);
        else this.removeBlobFiles([analysed.hash]);
        return result;
    }

    /**
     * After a UIDVALIDITY change upstream: points local messages of the old generation at their
     * new UIDs (matched by the caller by Message-ID, size and date) and forgets the rest of the
     * old generation's pending downloads.
     */
    remapUpstream(account: string, folder: string, oldValidity: number, newValidity: number, matches: { oldUid: number; newUid: number }[]): number {
        return this.db.transaction(() => {
            let moved = 0;
            for (const match of matches) {
                moved += this.stmt(
                    'UPDATE messages SET upstream_uidvalidity = ?, upstream_uid = ? WHERE upstream_account = ? AND upstream_folder = ? AND upstream_uidvalidity = ? AND upstream_uid = ?'
                ).run(newValidity, match.newUid, account, folder, oldValidity, match.oldUid).changes;
            }
            // Old-generation messages that matched nothing are no longer upstream: unlink them.
            this.stmt(
                'UPDATE messages SET upstream_account = NULL, upstream_folder = NULL, upstream_uidvalidity = NULL, upstream_uid = NULL, upstream_flags = NULL WHERE upstream_account = ? AND upstream_folder = ? AND upstream_uidvalidity = ?'
            ).run(account, folder, oldValidity);
            this.stmt('DELETE FROM sync_pending WHERE account = ? AND folder = ? AND uid_validity = ?').run(account, folder, oldValidity);
            this.stmt('DELETE FROM sync_deletions WHERE account = ? AND folder = ? AND uid_validity = ?').run(account, folder, oldValidity);
            return moved;
        })();
    }

    /** Local messages linked to an upstream folder generation, with their local and last-known upstream flags. */
    linkedMessages(account: string, folder: string, uidValidity: number): LinkedMessage[] {
        return (
            this.stmt(
                `SELECT m.mailbox_id, mb.user_id, m.uid, m.upstream_uid, m.flags, m.upstream_flags, m.message_id, m.size, m.idate FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id
                 WHERE m.upstream_account = ? AND m.upstream_folder = ? AND m.upstream_uidvalidity = ? ORDER BY m.upstream_uid`
            ).all(account, folder, uidValidity) as any[]
        ).map(row => ({
            userId: row.user_id,
            mailboxId: row.mailbox_id,
            uid: row.uid,
            upstreamUid: row.upstream_uid,
            flags: JSON.parse(row.flags),
            upstreamFlags: row.upstream_flags ? JSON.parse(row.upstream_flags) : null,
            messageId: row.message_id,
            size: row.size,
            idate: row.idate
        }));
    }

    /** Records what the provider now holds as a message's flags (after a push, or a pull). */
    setUpstreamFlags(mailboxId: number, uid: number, flags: string[]): void {
        this.stmt('UPDATE messages SET upstream_flags = ? WHERE mailbox_id = ? AND uid = ?').run(JSON.stringify(canonicalFlags(flags)), mailboxId, uid);
    }

    /** Synced messages expunged locally, waiting to be deleted upstream. */
    pendingDeletions(account: string, folder: string, uidValidity: number): number[] {
        return this.stmt('SELECT uid FROM sync_deletions WHERE account = ? AND folder = ? AND uid_validity = ? ORDER BY uid').pluck().all(account, folder, uidValidity) as number[];
    }

    clearDeletions(account: string, folder: string, uidValidity: number, uids: number[]): void {
        const remove = this.stmt('DELETE FROM sync_deletions WHERE account = ? AND folder = ? AND uid_validity = ? AND uid = ?');
        this.db.transaction(() => uids.forEach(uid => remove.run(account, folder, uidValidity, uid)))();
    }

    /** Stubs the user moved into `mailboxId` ("Fetch full"), with their upstream origin. */
    stubsIn(userId: number, mailboxId: number): { uid: number; ref: UpstreamRef; flags: string[]; idate: number }[] {
        return (
            this.stmt(
                `SELECT m.uid, m.upstream_account, m.upstream_folder, m.upstream_uidvalidity, m.upstream_uid, m.flags, m.idate FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id
                 WHERE mb.user_id = ? AND m.mailbox_id = ? AND m.stub = 1 AND m.upstream_uid IS NOT NULL ORDER BY m.uid`
            ).all(userId, mailboxId) as any[]
        ).map(row => ({
            uid: row.uid,
            ref: { account: row.upstream_account, folder: row.upstream_folder, uidValidity: row.upstream_uidvalidity, uid: row.upstream_uid },
            flags: JSON.parse(row.flags),
            idate: row.idate
        }));
    }

    /**
     * Replaces a stub with the full message: the full one goes into `targetMailboxId` carrying the
     * upstream link, and the stub leaves its mailbox, in one commit.
     */
    replaceStub(userId: number, stubMailboxId: number, stubUid: number, targetMailboxId: number, raw: Buffer, analysed: AnalysedMessage, ref: UpstreamRef, flags: string[], idate: number): number | 'TRYCREATE' {
        this.blobs.writeSync(analysed.hash, raw);
        const released: string[] = [];
        const result = this.db.transaction((): number | 'TRYCREATE' => {
            if (!this.getMailboxById(userId, stubMailboxId) || !this.getMailboxById(userId, targetMailboxId)) return 'TRYCREATE';
            const stub = this.stmt('SELECT blob_hash FROM messages WHERE mailbox_id = ? AND uid = ?').get(stubMailboxId, stubUid) as { blob_hash: string } | undefined;
            if (stub) {
                this.stmt('DELETE FROM messages WHERE mailbox_id = ? AND uid = ?').run(stubMailboxId, stubUid);
                const modseq = this.bumpModseq(stubMailboxId);
                this.journal(stubMailboxId, { command: 'EXPUNGE', uid: stubUid, modseq });
                released.push(...this.releaseBlobs([stub.blob_hash]));
            }
            this.insertBlob(analysed);
            const added = this.insertMessageRow(targetMailboxId, analysed.hash, analysed.size, analysed.messageId, canonicalFlags(flags), idate, ref);
            this.stmt('UPDATE messages SET upstream_flags = ? WHERE mailbox_id = ? AND uid = ?').run(JSON.stringify(canonicalFlags(flags)), targetMailboxId, added.uid);
            this.journal(targetMailboxId, { command: 'EXISTS', uid: added.uid, modseq: added.modseq });
            return added.uid;
        })();
        this.removeBlobFiles(released);
        this.emit('change', userId);
        return result;
    }

    // ---------------------------------------------------------------- uplink runs

    startRun(trigger: string): number {
        return Number(this.stmt("INSERT INTO uplink_runs (trigger, started_at, status) VALUES (?, ?, 'running')").run(trigger, now()).lastInsertRowid);
    }

    finishRun(id: number, status: 'ok' | 'partial' | 'failed' | 'skipped', message: string | null): void {
        this.stmt('UPDATE uplink_runs SET finished_at = ?, status = ?, message = ? WHERE id = ?').run(now(), status, message, id);
    }

    recordRunAccount(runId: number, figures: RunAccountFigures): void {
        this.stmt(
            `INSERT INTO uplink_run_accounts (run_id, account, bytes_sent, bytes_received, messages_sent, messages_received, duration_ms, errors)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (run_id, account) DO UPDATE SET bytes_sent = excluded.bytes_sent, bytes_received = excluded.bytes_received,
                messages_sent = excluded.messages_sent, messages_received = excluded.messages_received, duration_ms = excluded.duration_ms, errors = excluded.errors`
        ).run(runId, figures.account, figures.bytesSent, figures.bytesReceived, figures.messagesSent, figures.messagesReceived, figures.durationMs, JSON.stringify(figures.errors));
    }

    lastRun(): UplinkRun | null {
        const row = this.stmt('SELECT * FROM uplink_runs ORDER BY id DESC LIMIT 1').get() as any;
        if (!row) return null;
        const accounts = (this.stmt('SELECT * FROM uplink_run_accounts WHERE run_id = ? ORDER BY account').all(row.id) as any[]).map(a => ({
            account: a.account,
            bytesSent: a.bytes_sent,
            bytesReceived: a.bytes_received,
            messagesSent: a.messages_sent,
            messagesReceived: a.messages_received,
            durationMs: a.duration_ms,
            errors: JSON.parse(a.errors)
        }));
        return { id: row.id, trigger: row.trigger, startedAt: row.started_at, finishedAt: row.finished_at, status: row.status, message: row.message, accounts };
    }

    /** Wire bytes per account since `since` (ms), both ways. */
    bytesSince(since: number): { account: string; bytesSent: number; bytesReceived: number }[] {
        return this.stmt(
            `SELECT a.account AS account, SUM(a.bytes_sent) AS bytesSent, SUM(a.bytes_received) AS bytesReceived
             FROM uplink_run_accounts a JOIN uplink_runs r ON r.id = a.run_id WHERE r.started_at >= ? GROUP BY a.account ORDER BY a.account`
        ).all(since) as { account: string; bytesSent: number; bytesReceived: number }[];
    }

    // ---------------------------------------------------------------- journal

    /** Journal entries of a mailbox after `sinceModseq`, oldest first. */
    getUpdates(mailboxId: number, sinceModseq: number): JournalEntry[] {
        const rows = this.stmt(
            'SELECT rowid AS id, command, uid, modseq, flags, ignore_session FROM journal WHERE mailbox_id = ? AND modseq > ? ORDER BY modseq'
        ).all(mailboxId, sinceModseq) as { id: number; command: JournalEntry['command']; uid: number; modseq: number; flags: string | null; ignore_session: string | null }[];
        return rows.map(row => {
            const entry: JournalEntry = { id: row.id, command: row.command, uid: row.uid, modseq: row.modseq };
            if (row.flags) entry.flags = JSON.parse(row.flags);
            if (row.ignore_session) entry.ignore = row.ignore_session;
            return entry;
        });
    }

    pruneJournal(maxAgeMs: number): number {
        return this.stmt('DELETE FROM journal WHERE created_at < ?').run(now() - maxAgeMs).changes;
    }

    /** Raw bytes of a stored message (small messages only; stream large ones with blobs.createRangeStream). */
    readRaw(hash: string): Buffer {
        return this.blobs.readSync(hash);
    }
}
