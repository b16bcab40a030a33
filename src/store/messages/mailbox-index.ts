/**
 * A compact in-memory copy of what FETCH reads for every message (UID, modseq, flags, internal
 * date, size, message file) for the mailboxes fetched most recently, as Dovecot keeps its
 * dovecot.index mapped: a `UID FETCH 1:* (FLAGS)` of a 10,000-message mailbox then reads two
 * short rows instead of 10,000 (bench/imap.ts step 2).
 *
 * Why it is never stale: every change to a mailbox's messages (a new message, a flag change, an
 * expunge) raises the mailbox's modify_index in the transaction that makes it (journal.ts
 * bumpModseq), in this process or another (the CLI). An entry whose modseq equals the database's
 * is exact; an older one is caught up with the rows whose modseq is higher (new messages and
 * changed flags), and if the count of messages then differs (an expunge), it is read again whole.
 * The UIDVALIDITY is part of the key, so a mailbox renumbered or replaced is never served old rows.
 *
 * Entries are shared with callers and must not be changed (see FetchedMessage).
 */
import type { Connection, Reader } from '../connection';
import type { FetchedMessage } from '../types';

/** Messages held in all entries together; the least recently used mailboxes go first (about 180 bytes each). */
const MAX_MESSAGES = 60_000;

interface MailboxState {
    modseq: number;
    uidValidity: number;
}

interface Entry extends MailboxState {
    /** In UID order. */
    messages: FetchedMessage[];
}

type Row = [uid: number, modseq: number, flags: string, idate: number, size: number, blobHash: string];

const COLUMNS = 'uid, modseq, flags, idate, size, blob_hash';

export class MailboxIndex {
    private readonly entries = new Map<number, Entry>();
    private held = 0;

    /**
     * The messages of a mailbox of the user's in UID order, or null when the mailbox is not the
     * user's. The caller must not change the returned objects or the array.
     */
    messages(db: Connection, userId: number, mailboxId: number): readonly FetchedMessage[] | null {
        if (db.inTransaction) {
            // Rows a transaction has not committed yet must never be kept: it may still roll back.
            this.entries.delete(mailboxId);
            return this.uncached(db, userId, mailboxId);
        }
        const state = db.stmt('SELECT modify_index AS modseq, uid_validity AS uidValidity FROM mailboxes WHERE id = ? AND user_id = ?').get(mailboxId, userId) as MailboxState | undefined;
        if (!state) {
            return null;
        }
        let entry = this.entries.get(mailboxId);
        if (entry && entry.uidValidity === state.uidValidity && entry.modseq !== state.modseq) {
            entry = this.catchUp(db, mailboxId, entry, state);
        } else if (entry && entry.uidValidity !== state.uidValidity) {
            entry = undefined;
        }
        if (!entry) {
            entry = { ...state, messages: this.read(db, `SELECT ${COLUMNS} FROM messages WHERE mailbox_id = ? ORDER BY uid`, [mailboxId]) };
        }
        this.keep(mailboxId, entry);
        return entry.messages;
    }

    private uncached(db: Reader, userId: number, mailboxId: number): FetchedMessage[] | null {
        if (!db.stmt('SELECT 1 FROM mailboxes WHERE id = ? AND user_id = ?').get(mailboxId, userId)) {
            return null;
        }
        return this.read(db, `SELECT ${COLUMNS} FROM messages WHERE mailbox_id = ? ORDER BY uid`, [mailboxId]);
    }

    /** Forgets everything (tests, and a store closed or restored underneath). */
    clear(): void {
        this.entries.clear();
        this.held = 0;
    }

    private catchUp(db: Reader, mailboxId: number, entry: Entry, state: MailboxState): Entry | undefined {
        const changed = this.read(db, `SELECT ${COLUMNS} FROM messages WHERE mailbox_id = ? AND modseq > ? ORDER BY uid`, [mailboxId, entry.modseq]);
        const messages = entry.messages.slice();
        const position = new Map<number, number>();
        messages.forEach((message, index) => position.set(message.uid, index));
        const added: FetchedMessage[] = [];
        for (const message of changed) {
            const index = position.get(message.uid);
            if (index === undefined) added.push(message);
            else messages[index] = message;
        }
        // New UIDs are above every UID the mailbox ever had (uid_next only grows), so they go at the end.
        const lastUid = messages.length ? messages[messages.length - 1].uid : 0;
        if (added.length && added[0].uid <= lastUid) {
            return undefined;
        }
        messages.push(...added);
        const count = db.stmt('SELECT count(*) FROM messages WHERE mailbox_id = ?').pluck().get(mailboxId) as number;
        // A different count means messages were expunged since: read the mailbox again.
        return count === messages.length ? { ...state, messages } : undefined;
    }

    private read(db: Reader, sql: string, parameters: number[]): FetchedMessage[] {
        const rows = db.rawStmt(sql).all(...parameters) as Row[];
        // Messages with the same flags share one array, parsed once.
        const parsed = new Map<string, string[]>();
        const out = new Array<FetchedMessage>(rows.length);
        for (let index = 0; index < rows.length; index++) {
            const row = rows[index];
            let flags = parsed.get(row[2]);
            if (!flags) {
                flags = JSON.parse(row[2]) as string[];
                parsed.set(row[2], flags);
            }
            out[index] = { uid: row[0], modseq: row[1], flags, idate: row[3], size: row[4], blobHash: row[5] };
        }
        return out;
    }

    private keep(mailboxId: number, entry: Entry): void {
        const previous = this.entries.get(mailboxId);
        if (previous) {
            this.held -= previous.messages.length;
            this.entries.delete(mailboxId);
        }
        if (entry.messages.length > MAX_MESSAGES) {
            return;
        }
        // Map order is insertion order: re-inserting marks the entry most recently used.
        this.entries.set(mailboxId, entry);
        this.held += entry.messages.length;
        for (const [id, oldest] of this.entries) {
            if (this.held <= MAX_MESSAGES) break;
            this.entries.delete(id);
            this.held -= oldest.messages.length;
        }
    }
}
