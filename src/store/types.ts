/**
 * What the store hands out and takes in: plain rows, camelCase, parsed (flags as arrays). The
 * database's own row shapes stay inside the module that reads them.
 */
import type { AnalysedMessage, MimeNode } from './mime';
import type { StoreError } from './errors';
import type { HeaderSummary } from './header-summary';

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
    /** The header summary (header-summary.ts): what a HEADER.FIELDS of list fields reads. */
    headerSummary?: boolean;
}

/** One message as FETCH reads it. Shared with the store's mailbox index: read-only, copy it to change it. */
export interface FetchedMessage {
    uid: number;
    modseq: number;
    /** Shared by the messages of a page that have the same flags: read-only (assign a new array to change it). */
    flags: string[];
    idate: number;
    size: number;
    blobHash: string;
    envelope?: unknown[];
    bodystructure?: unknown[];
    mimeTree?: MimeNode;
    headerLines?: string[];
    /** Null when the message has none yet (fillHeaderSummaries): read its whole header instead. */
    headerSummary?: HeaderSummary | null;
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
    /** The message's identity within its account (src/uplink/identity.ts); null: none known. */
    key: string | null;
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

/** How a batch of independent operations ends, one slot each (as Promise.allSettled reports). */
export type Settled<T> = { ok: true; value: T } | { ok: false; error: StoreError | Error };

/** COPY/MOVE's answer: the UID mapping for COPYUID, and (MOVE) what left the source. */
export interface CopyResult {
    uidValidity: number;
    sourceUid: number[];
    destinationUid: number[];
    expunged: { uid: number; modseq: number }[];
}

/** SEARCH's answer: matching UIDs ascending, with their modseqs (CONDSTORE's MODSEQ search). */
export interface SearchResult {
    uids: number[];
    highestModseq: number;
    modseqByUid: Map<number, number>;
}
