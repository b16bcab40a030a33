export { Store, DEFAULT_MAILBOXES, normaliseMailboxPath } from './store';
export type { MailboxRow, OpenedMailbox, MailboxStatus, JournalEntry, FetchedMessage, FetchColumns, AddedMessage, FlagChange, UserRow, UpstreamRef, MailboxResult, Submission, SubmissionResult, QueueEntry, QueueState, SyncFolderState, PendingDownload, LinkedMessage, RunAccountFigures, UplinkRun } from './store';
export type { SearchTerm } from './search';
export type { MimeNode, AnalysedMessage } from './mime';
export { normaliseMessageId } from './mime';
export { canonicalFlags } from './flags';
export { analyseMessage } from './mime';
