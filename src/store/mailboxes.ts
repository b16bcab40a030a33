/**
 * Mailboxes and subscriptions. Every lookup takes the owning user's id and checks it in SQL, so
 * a protocol handler cannot reach another user's mailbox even with a forged id.
 */
import type { Connection, Reader, Tx } from './connection';
import { StoreError } from './errors';
import { releaseBlobs } from './blob-rows';
import type { MailboxRow, MailboxStatus, OpenedMailbox } from './types';

export const DEFAULT_MAILBOXES: { path: string; specialUse: string | null }[] = [
    { path: 'INBOX', specialUse: null },
    { path: 'Sent', specialUse: '\\Sent' },
    { path: 'Drafts', specialUse: '\\Drafts' },
    { path: 'Trash', specialUse: '\\Trash' },
    { path: 'Junk', specialUse: '\\Junk' },
    { path: 'Archive', specialUse: '\\Archive' }
];

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

/** A `mailboxes` row as SQLite returns it. */
interface MailboxDbRow {
    id: number;
    user_id: number;
    path: string;
    special_use: string | null;
    uid_validity: number;
    uid_next: number;
    modify_index: number;
    keywords: string;
}

const MAILBOX_COLUMNS = 'id, user_id, path, special_use, uid_validity, uid_next, modify_index, keywords';

function mapMailbox(row: MailboxDbRow): MailboxRow {
    return {
        id: row.id,
        userId: row.user_id,
        path: row.path,
        specialUse: row.special_use,
        uidValidity: row.uid_validity,
        uidNext: row.uid_next,
        modifyIndex: row.modify_index,
        keywords: JSON.parse(row.keywords) as string[]
    };
}

export function mailboxByPath(db: Reader, userId: number, mailboxPath: string): MailboxRow | null {
    const normalised = normaliseMailboxPath(mailboxPath);
    if (!normalised) {
        return null;
    }
    const row = db.stmt(`SELECT ${MAILBOX_COLUMNS} FROM mailboxes WHERE user_id = ? AND path = ?`).get(userId, normalised) as MailboxDbRow | undefined;
    return row ? mapMailbox(row) : null;
}

export function mailboxById(db: Reader, userId: number, mailboxId: number): MailboxRow | null {
    const row = db.stmt(`SELECT ${MAILBOX_COLUMNS} FROM mailboxes WHERE user_id = ? AND id = ?`).get(userId, mailboxId) as MailboxDbRow | undefined;
    return row ? mapMailbox(row) : null;
}

export function specialMailbox(db: Reader, userId: number, specialUse: string): MailboxRow | null {
    const row = db.stmt(`SELECT ${MAILBOX_COLUMNS} FROM mailboxes WHERE user_id = ? AND special_use = ? ORDER BY id LIMIT 1`).get(userId, specialUse) as MailboxDbRow | undefined;
    return row ? mapMailbox(row) : null;
}

function nextUidValidity(tx: Tx): number {
    // Seconds since the epoch fit 32 bits until 2106; never reuse a value, even within one second.
    const last = Number((tx.stmt("SELECT value FROM meta WHERE key = 'last_uid_validity'").pluck().get() as string | undefined) ?? 0);
    const value = Math.max(Math.floor(Date.now() / 1000), last + 1);
    tx.stmt("INSERT INTO meta (key, value) VALUES ('last_uid_validity', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(String(value));
    return value;
}

function insertMailbox(tx: Tx, userId: number, mailboxPath: string, specialUse: string | null): number {
    return Number(
        tx.stmt('INSERT INTO mailboxes (user_id, path, special_use, uid_validity, created_at) VALUES (?, ?, ?, ?, ?)').run(userId, mailboxPath, specialUse, nextUidValidity(tx), Date.now())
            .lastInsertRowid
    );
}

function subscribe(tx: Tx, userId: number, normalisedPath: string): void {
    tx.stmt('INSERT OR IGNORE INTO subscriptions (user_id, path) VALUES (?, ?)').run(userId, normalisedPath);
}

function exists(db: Reader, userId: number, normalisedPath: string): boolean {
    return Boolean(db.stmt('SELECT 1 FROM mailboxes WHERE user_id = ? AND path = ?').get(userId, normalisedPath));
}

/** The default mailboxes the user lacks (a read, so that the common case takes no write lock). */
export function missingDefaultMailboxes(db: Reader, userId: number): typeof DEFAULT_MAILBOXES {
    const existing = new Set(db.stmt('SELECT path FROM mailboxes WHERE user_id = ?').pluck().all(userId) as string[]);
    return DEFAULT_MAILBOXES.filter(mailbox => !existing.has(mailbox.path));
}

/** Creates (and subscribes) the given default mailboxes. */
export function createDefaultMailboxes(tx: Tx, userId: number, mailboxes: typeof DEFAULT_MAILBOXES): void {
    for (const mailbox of mailboxes) {
        insertMailbox(tx, userId, mailbox.path, mailbox.specialUse);
        subscribe(tx, userId, mailbox.path);
    }
}

function firstRecentUid(db: Reader, mailboxId: number): number {
    return (db.stmt('SELECT first_recent_uid FROM mailboxes WHERE id = ?').pluck().get(mailboxId) as number | undefined) ?? Number.MAX_SAFE_INTEGER;
}

export class Mailboxes {
    constructor(private readonly db: Connection) {}

    list(userId: number): MailboxRow[] {
        return (this.db.stmt(`SELECT ${MAILBOX_COLUMNS} FROM mailboxes WHERE user_id = ? ORDER BY path`).all(userId) as MailboxDbRow[]).map(mapMailbox);
    }

    /** The user's mailbox at `mailboxPath` (any spelling of INBOX), or null. */
    get(userId: number, mailboxPath: string): MailboxRow | null {
        return mailboxByPath(this.db, userId, mailboxPath);
    }

    getById(userId: number, mailboxId: number): MailboxRow | null {
        return mailboxById(this.db, userId, mailboxId);
    }

    /** The user's first mailbox with this SPECIAL-USE attribute (`\Sent`), or null. */
    getSpecial(userId: number, specialUse: string): MailboxRow | null {
        return specialMailbox(this.db, userId, specialUse);
    }

    /**
     * Creates a mailbox and any missing parents; returns its id. `subscribe` (the default, for
     * folders mailmule creates for the user) subscribes the new names too; an IMAP CREATE does
     * not (RFC 3501: subscribing is the client's choice). Throws CANNOT for an invalid name,
     * ALREADYEXISTS.
     */
    create(userId: number, mailboxPath: string, specialUse: string | null = null, options: { subscribe?: boolean } = {}): number {
        const shouldSubscribe = options.subscribe ?? true;
        const normalised = normaliseMailboxPath(mailboxPath);
        if (!normalised) {
            throw new StoreError('CANNOT', 'invalid mailbox name');
        }
        return this.db.write(tx => {
            if (exists(tx, userId, normalised)) {
                throw new StoreError('ALREADYEXISTS', 'mailbox exists');
            }
            // RFC 3501 6.3.3: CREATE a/b/c should create a and a/b too, so they are selectable.
            const segments = normalised.split('/');
            for (let depth = 1; depth < segments.length; depth++) {
                const parent = segments.slice(0, depth).join('/');
                if (!exists(tx, userId, parent)) {
                    insertMailbox(tx, userId, parent, null);
                    if (shouldSubscribe) subscribe(tx, userId, parent);
                }
            }
            const id = insertMailbox(tx, userId, normalised, specialUse);
            if (shouldSubscribe) subscribe(tx, userId, normalised);
            return id;
        });
    }

    /** Renames a mailbox and its children; returns its id. Throws NONEXISTENT, ALREADYEXISTS, CANNOT (INBOX, into itself). */
    rename(userId: number, from: string, to: string): number {
        const source = normaliseMailboxPath(from);
        const target = normaliseMailboxPath(to);
        if (!source) {
            throw new StoreError('NONEXISTENT', 'no such mailbox');
        }
        if (!target || source === 'INBOX' || target === 'INBOX' || target.startsWith(source + '/')) {
            throw new StoreError('CANNOT', 'cannot rename to that name');
        }
        return this.db.write(tx => {
            const row = tx.stmt('SELECT id FROM mailboxes WHERE user_id = ? AND path = ?').get(userId, source) as { id: number } | undefined;
            if (!row) {
                throw new StoreError('NONEXISTENT', 'no such mailbox');
            }
            if (exists(tx, userId, target)) {
                throw new StoreError('ALREADYEXISTS', 'mailbox exists');
            }
            const children = tx.stmt('SELECT id, path FROM mailboxes WHERE user_id = ? AND substr(path, 1, ?) = ?').all(userId, source.length + 1, source + '/') as {
                id: number;
                path: string;
            }[];
            for (const child of children) {
                if (exists(tx, userId, target + child.path.slice(source.length))) {
                    throw new StoreError('ALREADYEXISTS', 'mailbox exists');
                }
            }
            // UIDs stay valid across a rename, so UIDVALIDITY is kept (RFC 3501 allows it).
            tx.stmt('UPDATE mailboxes SET path = ? WHERE id = ?').run(target, row.id);
            for (const child of children) {
                tx.stmt('UPDATE mailboxes SET path = ? WHERE id = ?').run(target + child.path.slice(source.length), child.id);
            }
            // Subscriptions follow the renamed mailboxes, so a client that shows only subscribed
            // folders still shows them.
            tx.stmt('UPDATE OR REPLACE subscriptions SET path = ? || substr(path, ?) WHERE user_id = ? AND (path = ? OR substr(path, 1, ?) = ?)').run(
                target,
                source.length + 1,
                userId,
                source,
                source.length + 1,
                source + '/'
            );
            return row.id;
        });
    }

    /** Deletes a mailbox and its messages; returns the deleted id (for DROP notifications). Throws NONEXISTENT, CANNOT (INBOX, special-use). */
    delete(userId: number, mailboxPath: string): number {
        const normalised = normaliseMailboxPath(mailboxPath);
        if (!normalised) {
            throw new StoreError('NONEXISTENT', 'no such mailbox');
        }
        if (normalised === 'INBOX') {
            throw new StoreError('CANNOT', 'INBOX cannot be deleted');
        }
        return this.db.write(tx => {
            const row = tx.stmt('SELECT id, special_use FROM mailboxes WHERE user_id = ? AND path = ?').get(userId, normalised) as { id: number; special_use: string | null } | undefined;
            if (!row) {
                throw new StoreError('NONEXISTENT', 'no such mailbox');
            }
            if (row.special_use) {
                // Sent, Drafts, Trash, Junk and Archive are where mailmule itself files mail.
                throw new StoreError('CANNOT', 'mailmule files mail into this mailbox');
            }
            const hashes = tx.stmt('SELECT blob_hash FROM messages WHERE mailbox_id = ?').pluck().all(row.id) as string[];
            tx.stmt('DELETE FROM messages WHERE mailbox_id = ?').run(row.id);
            tx.stmt('DELETE FROM journal WHERE mailbox_id = ?').run(row.id);
            tx.stmt('DELETE FROM mailboxes WHERE id = ?').run(row.id);
            releaseBlobs(tx, hashes);
            tx.changed(userId);
            return row.id;
        });
    }

    /**
     * SUBSCRIBE needs an existing mailbox. UNSUBSCRIBE also takes a name whose mailbox is gone:
     * RFC 3501 6.3.6 keeps such a name subscribed until the client removes it. Throws
     * NONEXISTENT when there is no such mailbox (SUBSCRIBE) or nothing to unsubscribe.
     */
    setSubscribed(userId: number, mailboxPath: string, subscribed: boolean): void {
        const normalised = normaliseMailboxPath(mailboxPath);
        if (!normalised) {
            throw new StoreError('NONEXISTENT', 'no such mailbox');
        }
        this.db.write(tx => {
            const found = exists(tx, userId, normalised);
            if (subscribed) {
                if (!found) throw new StoreError('NONEXISTENT', 'no such mailbox');
                subscribe(tx, userId, normalised);
                return;
            }
            const removed = tx.stmt('DELETE FROM subscriptions WHERE user_id = ? AND path = ?').run(userId, normalised).changes > 0;
            if (!removed && !found) throw new StoreError('NONEXISTENT', 'not subscribed');
        });
    }

    /** Subscribed names, existing mailboxes or not, sorted. */
    subscriptions(userId: number): string[] {
        return this.db.stmt('SELECT path FROM subscriptions WHERE user_id = ? ORDER BY path').pluck().all(userId) as string[];
    }

    /**
     * SELECT/EXAMINE: the mailbox and its UID list read in one snapshot, with the messages that are
     * \Recent for this session; null when there is no such mailbox. SELECT takes them (no later
     * session sees them as recent); EXAMINE only looks (RFC 3501 6.3.2).
     */
    open(userId: number, mailboxPath: string, options: { readOnly?: boolean } = {}): OpenedMailbox | null {
        return this.db.write(tx => {
            const mailbox = mailboxByPath(tx, userId, mailboxPath);
            if (!mailbox) {
                return null;
            }
            const uidList = tx.stmt('SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid').pluck().all(mailbox.id) as number[];
            const firstRecent = firstRecentUid(tx, mailbox.id);
            const recent = uidList.filter(uid => uid >= firstRecent);
            if (!options.readOnly && mailbox.uidNext > firstRecent) {
                tx.stmt('UPDATE mailboxes SET first_recent_uid = ? WHERE id = ?').run(mailbox.uidNext, mailbox.id);
            }
            const unseenUid = (tx.stmt('SELECT MIN(uid) FROM messages WHERE mailbox_id = ? AND seen = 0').pluck().get(mailbox.id) as number | null) ?? null;
            return { ...mailbox, uidList, recent, unseenUid };
        });
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
        return this.db.write(tx => {
            const firstRecent = firstRecentUid(tx, mailboxId);
            const recent = uids.filter(uid => uid >= firstRecent);
            if (recent.length && !options.readOnly) {
                let highest = 0;
                for (const uid of recent) if (uid > highest) highest = uid;
                tx.stmt('UPDATE mailboxes SET first_recent_uid = ? WHERE id = ?').run(highest + 1, mailboxId);
            }
            return recent;
        });
    }

    /** STATUS, read in one snapshot; null when there is no such mailbox. */
    status(userId: number, mailboxPath: string): MailboxStatus | null {
        return this.db.write(tx => {
            const mailbox = mailboxByPath(tx, userId, mailboxPath);
            if (!mailbox) {
                return null;
            }
            const counts = tx
                .stmt(
                    `SELECT COUNT(*) AS messages, COALESCE(SUM(seen = 0), 0) AS unseen, COALESCE(SUM(size), 0) AS size,
                            COALESCE(SUM(uid >= (SELECT first_recent_uid FROM mailboxes WHERE id = ?)), 0) AS recent
                     FROM messages WHERE mailbox_id = ?`
                )
                .get(mailbox.id, mailbox.id) as { messages: number; unseen: number; size: number; recent: number };
            return {
                messages: counts.messages,
                recent: counts.recent,
                unseen: counts.unseen,
                size: counts.size,
                uidNext: mailbox.uidNext,
                uidValidity: mailbox.uidValidity,
                highestModseq: mailbox.modifyIndex
            };
        });
    }
}
