/**
 * New mail into a mailbox: one message (the CLI's import, a bounce or notice into INBOX) or the
 * messages of one APPEND (MULTIAPPEND, RFC 3502: all in one transaction, or none). The files
 * are written first, through message-files.ts, then the rows.
 */
import type { Connection } from '../connection';
import { StoreError } from '../errors';
import { canonicalFlags } from '../flags';
import { mailboxById, mailboxByPath } from '../mailboxes';
import type { MessageFiles } from '../message-files';
import { analyseMessage, normaliseMessageId, type AnalysedMessage } from '../mime';
import type { AddedMessage } from '../types';
import { insertIntoMailbox } from './rows';

export interface AddOptions {
    flags?: string[];
    idate?: number;
    /** Marks the journal entry, so the session that made the change (and told its client) is not told twice. */
    ignoreSession?: string;
    analysed?: AnalysedMessage;
    /** When the mailbox holds the copy mailmule filed itself under this Message-ID, keep that copy and report it instead. */
    dedupeByMessageId?: boolean;
}

/** One message of an APPEND: its bytes, analysed, and its flags and internal date. */
export interface AppendItem {
    raw: Buffer;
    analysed: AnalysedMessage;
    flags?: string[];
    idate?: number;
}

/** Adds a message to a mailbox of `userId` (the file is on disk before the row commits). Throws TRYCREATE. */
export function addMessage(db: Connection, files: MessageFiles, userId: number, mailboxId: number, raw: Buffer, options: AddOptions = {}): AddedMessage & { existing?: boolean } {
    const message = options.analysed ?? analyseMessage(raw);
    const flags = canonicalFlags(options.flags ?? []);
    return files.commitWith([{ hash: message.hash, raw }], () =>
        db.write(tx => {
            const mailbox = mailboxById(tx, userId, mailboxId);
            if (!mailbox) {
                throw new StoreError('TRYCREATE', 'no such mailbox');
            }
            const { uid, modseq, existing } = insertIntoMailbox(tx, mailboxId, message, flags, options.idate ?? Date.now(), null, options);
            if (existing) {
                return { uid, modseq, uidValidity: mailbox.uidValidity, mailboxId, existing: true };
            }
            tx.changed(userId);
            return { uid, modseq, uidValidity: mailbox.uidValidity, mailboxId };
        })
    );
}

/**
 * APPEND and MULTIAPPEND: writes the files on the thread pool (other sessions are not held up
 * by the fsyncs), then adds every message in one transaction, each taking the next UID in
 * order. With `dedupeByMessageId` a message mailmule filed itself stands in for the client's
 * copy, as in addMessage. Throws TRYCREATE.
 */
export function appendMessages(
    db: Connection,
    files: MessageFiles,
    userId: number,
    mailboxId: number,
    messages: readonly AppendItem[],
    options: { ignoreSession?: string; dedupeByMessageId?: boolean } = {}
): Promise<{ uidValidity: number; uids: number[] }> {
    return files.putThen(
        messages.map(message => ({ hash: message.analysed.hash, raw: message.raw })),
        () =>
            db.write(tx => {
                const mailbox = mailboxById(tx, userId, mailboxId);
                if (!mailbox) {
                    throw new StoreError('TRYCREATE', 'no such mailbox');
                }
                const uids: number[] = [];
                for (const { analysed, flags, idate } of messages) {
                    const { uid, existing } = insertIntoMailbox(tx, mailboxId, analysed, canonicalFlags(flags ?? []), idate ?? Date.now(), null, options);
                    uids.push(uid);
                    if (!existing) tx.changed(userId);
                }
                return { uidValidity: mailbox.uidValidity, uids };
            })
    );
}

/** Puts a message straight into a user's INBOX (bounces, local notices). Throws TRYCREATE. */
export function deliverToInbox(db: Connection, files: MessageFiles, userId: number, raw: Buffer, analysed?: AnalysedMessage): AddedMessage {
    const inbox = mailboxByPath(db, userId, 'INBOX');
    if (!inbox) throw new StoreError('TRYCREATE', 'no INBOX');
    return addMessage(db, files, userId, inbox.id, raw, { analysed });
}

/** Whether a mailbox of the user's already holds a message with this Message-ID. */
export function hasMessageId(db: Connection, userId: number, mailboxId: number, messageId: string): boolean {
    return Boolean(
        db
            .stmt('SELECT 1 FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id WHERE mb.user_id = ? AND m.mailbox_id = ? AND m.message_id = ? LIMIT 1')
            .get(userId, mailboxId, normaliseMessageId(messageId))
    );
}
