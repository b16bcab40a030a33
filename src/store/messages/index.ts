/**
 * The messages aggregate: what IMAP (and delivery, the CLI, the uplink) do to messages. Each
 * method runs its own transaction, or joins the caller's (`store.batch`); the work is in the
 * files beside this one, as functions that take the transaction.
 */
import type { Readable } from 'node:stream';
import type { Connection } from '../connection';
import { StoreError } from '../errors';
import { mailboxById } from '../mailboxes';
import type { MessageFiles } from '../message-files';
import { analyseMessage, type AnalysedMessage } from '../mime';
import type { SearchTerm } from '../search';
import type { SortRecord } from '../sort';
import type { AddedMessage, CopyResult, FetchColumns, FetchedMessage, FlagChange, JournalEntry, SearchResult } from '../types';
import { addMessage, appendMessages, deliverToInbox, hasMessageId, type AddOptions, type AppendItem } from './add';
import { copyMessages } from './copy';
import { expungeDeleted } from './expunge';
import { fetchPage } from './fetch';
import { MailboxIndex } from './mailbox-index';
import { updateFlags, type FlagUpdate } from './flags';
import { journalSince, pruneJournal } from './journal';
import { searchMessages, sortRecords, uidsAfter } from './search';

export type { AddOptions, AppendItem } from './add';
export type { FlagUpdate } from './flags';

export class Messages {
    /** What FETCH reads for every message, for the mailboxes fetched last (mailbox-index.ts). */
    private readonly index = new MailboxIndex();

    constructor(
        private readonly db: Connection,
        private readonly files: MessageFiles
    ) {}

    /** Parses a message (CPU only): its hash, envelope, structure and search text, for add/append. */
    analyse(raw: Buffer): AnalysedMessage {
        return analyseMessage(raw);
    }

    /** Adds one message to a mailbox of the user's. Throws TRYCREATE. */
    add(userId: number, mailboxId: number, raw: Buffer, options: AddOptions = {}): AddedMessage & { existing?: boolean } {
        return addMessage(this.db, this.files, userId, mailboxId, raw, options);
    }

    /** APPEND/MULTIAPPEND: the messages in one transaction, or none. Throws TRYCREATE. */
    append(
        userId: number,
        mailboxId: number,
        messages: readonly AppendItem[],
        options: { ignoreSession?: string; dedupeByMessageId?: boolean } = {}
    ): Promise<{ uidValidity: number; uids: number[] }> {
        return appendMessages(this.db, this.files, userId, mailboxId, messages, options);
    }

    /** Into the user's INBOX (bounces, local notices). Throws TRYCREATE. */
    deliverToInbox(userId: number, raw: Buffer, analysed?: AnalysedMessage): AddedMessage {
        return deliverToInbox(this.db, this.files, userId, raw, analysed);
    }

    hasMessageId(userId: number, mailboxId: number, messageId: string): boolean {
        return hasMessageId(this.db, userId, mailboxId, messageId);
    }

    /** FETCH's rows, a page at a time; [] for a mailbox that is not the user's. */
    fetchPage(userId: number, mailboxId: number, uids: number[], columns: FetchColumns, changedSince = 0): FetchedMessage[] {
        return fetchPage(this.db, this.files, this.index, userId, mailboxId, uids, columns, changedSince);
    }

    /** The whole raw message (small messages only; stream large ones with createRangeStream). */
    readRaw(blobHash: string): Buffer {
        return this.files.readSync(blobHash);
    }

    /** `length` bytes of the raw message from `offset`, read now (a detached part's body: see mime.ts detachBodies). */
    readRange(blobHash: string, offset: number, length: number): Buffer {
        return this.files.readRangeSync(blobHash, offset, length);
    }

    /** The root header's lines as imap-core parses them, from the message file. */
    rootHeaderLines(blobHash: string): string[] {
        return this.files.readRootHeaderLines(blobHash);
    }

    /** `length` bytes of the raw message from `offset` (0: to the end), with imap-core's `outputBytes` counter. */
    createRangeStream(blobHash: string, offset: number, length: number): Readable & { outputBytes?: number } {
        return this.files.createRangeStream(blobHash, offset, length);
    }

    /** STORE. Throws NONEXISTENT for a mailbox that is not the user's. */
    updateFlags(
        userId: number,
        mailboxId: number,
        uids: number[],
        action: FlagUpdate['action'],
        values: string[],
        options: { unchangedSince?: number; ignoreSession?: string } = {}
    ): { changes: FlagChange[]; modified: number[] } {
        return this.db.write(tx => {
            if (!mailboxById(tx, userId, mailboxId)) {
                throw new StoreError('NONEXISTENT', 'no such mailbox');
            }
            const result = updateFlags(tx, mailboxId, uids, { action, values, ...options });
            if (result.changes.some(change => change.changed)) tx.changed(userId);
            return result;
        });
    }

    /** EXPUNGE (UID EXPUNGE with `uids`): the removed UIDs in order; none for a mailbox that is not the user's. */
    expunge(userId: number, mailboxId: number, options: { uids?: number[]; ignoreSession?: string } = {}): { uid: number; modseq: number }[] {
        return this.db.write(tx => {
            if (!mailboxById(tx, userId, mailboxId)) {
                return [];
            }
            const removed = expungeDeleted(tx, mailboxId, options);
            if (removed.length) tx.changed(userId);
            return removed;
        });
    }

    /** COPY. Throws TRYCREATE. */
    copy(userId: number, mailboxId: number, uids: number[], destinationPath: string, options: { ignoreSession?: string } = {}): CopyResult {
        return this.db.write(tx => copyMessages(tx, userId, mailboxId, uids, destinationPath, { move: false, ignoreSession: options.ignoreSession }));
    }

    /** MOVE: the copy and the removal from the source in one transaction. Throws TRYCREATE. */
    move(userId: number, mailboxId: number, uids: number[], destinationPath: string, options: { ignoreSession?: string } = {}): CopyResult {
        return this.db.write(tx => copyMessages(tx, userId, mailboxId, uids, destinationPath, { move: true, ignoreSession: options.ignoreSession }));
    }

    search(userId: number, mailboxId: number, terms: SearchTerm[]): SearchResult {
        return searchMessages(this.db, userId, mailboxId, terms);
    }

    sortRecords(userId: number, mailboxId: number, uids: number[], columns: { envelope: boolean; headerLines: boolean }): SortRecord[] {
        return sortRecords(this.db, this.files, userId, mailboxId, uids, columns);
    }

    uidsAfter(mailboxId: number, afterUid: number): number[] {
        return uidsAfter(this.db, mailboxId, afterUid);
    }

    /** The mailbox's journal after `sinceModseq`, oldest first (what other sessions did). */
    journal(mailboxId: number, sinceModseq: number): JournalEntry[] {
        return journalSince(this.db, mailboxId, sinceModseq);
    }

    /** Forgets journal entries older than `maxAgeMs`. */
    pruneJournal(maxAgeMs: number): number {
        return this.db.write(tx => pruneJournal(tx, maxAgeMs));
    }
}
