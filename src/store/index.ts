/**
 * The store: SQLite (better-sqlite3, WAL) for state, content-addressed files for raw messages.
 * Only code under src/store runs SQL or touches a message file.
 *
 * Callers open a `Store` and use its aggregates: `store.users`, `store.mailboxes`,
 * `store.messages` (add, fetch, flags, copy/move, expunge, search, journal), `store.queue`,
 * `store.sync` (the uplink's state), `store.runs` (run accounting) and `store.accountProblems`
 * (upstream accounts whose login the provider refuses). Every method that touches
 * a mailbox takes the owning user's id and checks it in SQL. Each method is one transaction, or
 * joins the caller's inside `store.batch`. After each commit the store emits `change` with the
 * ids of the users whose mail changed.
 *
 * Failure is reported one way: an operation that is refused or cannot find what it acts on
 * throws a `StoreError` whose `code` (a `StoreErrorCode`) says why, named after the IMAP
 * response code where there is one (TRYCREATE, NONEXISTENT, ALREADYEXISTS, CANNOT; and BUSY,
 * INVALID). A lookup that finds nothing returns null (or an empty list): absence is an answer,
 * not a failure. Any other error thrown (SQLite's, the filesystem's) means the store could not
 * do the work at all (disk full, a locked or damaged database) and is passed up as it is. The
 * one batch operation, `queue.commitSubmissions`, settles each submission in its own slot
 * (`Settled`), the error there being what the single operation would have thrown.
 *
 * Opening checks the store's identity (identity.ts): a database that does not belong with the
 * message files beside it is refused untouched (StoreRefusedError). `store.backup(dir)` and
 * `restoreStore` (backup.ts) copy a store while it runs and bring a copy back.
 *
 * Where later work belongs: a more compact form of what is kept per message in
 * blob-rows.ts (the rows) and message-files.ts (the bytes), behind the functions they have now.
 */
export { Store, type StoreOptions, type CompactReport } from './store';
export { StoreError, storeErrorCode, type StoreErrorCode } from './errors';
export { StoreRefusedError, type StoreRefusalKind } from './identity';
export { restoreStore, BackupError, type BackupReport, type RestoreReport } from './backup';
export { DEFAULT_MAILBOXES, normaliseMailboxPath } from './mailboxes';
export type { Users, UserSummary } from './users';
export type { Mailboxes } from './mailboxes';
export type { Messages, AddOptions, AppendItem, FlagUpdate } from './messages';
export type { Queue, SendOutcome } from './queue';
export type { SyncState, UpstreamHeader, StubRequest, HeldMessage, UpstreamDownload, UpstreamImportOptions } from './sync';
export type { Runs, RunStatus } from './runs';
export type { RunHistory, RunSummary, PeriodBytes } from './run-history';
export type { AccountProblems, AccountProblem } from './account-problems';
export type { RelayOutbox, OutboxMessage, OutboxLink } from './relay-outbox';
export type {
    AddedMessage,
    CopyResult,
    FetchColumns,
    FetchedMessage,
    FlagChange,
    JournalEntry,
    LinkedMessage,
    MailboxRow,
    MailboxStatus,
    OpenedMailbox,
    PendingDownload,
    QueueEntry,
    QueueState,
    RunAccountFigures,
    SearchResult,
    Settled,
    Submission,
    SubmissionResult,
    SyncFolderState,
    UplinkRun,
    UpstreamRef,
    UserRow
} from './types';
export type { SearchTerm } from './search';
export type { MimeNode, AnalysedMessage } from './mime';
export { crlfBody, normaliseMessageId, analyseMessage, MessageTooComplexError, MAX_MIME_DEPTH } from './mime';
export { canonicalFlags } from './flags';
export { selectSummaryFields, splitSummaryLines, summaryFieldsValue, LIST_HEADER_FIELDS } from './header-summary';
export type { HeaderSummary, SummarySelection } from './header-summary';
export { sortUids, threadMessageOf } from './sort';
export type { SortCriterion, SortKey, SortRecord } from './sort';
export { threadByReferences, threadByOrderedSubject } from './threads';
export type { ThreadNode, ThreadMessage } from './threads';
export { baseSubject } from './sort-keys';
