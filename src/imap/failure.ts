/**
 * What the client is told when a handler fails (throws, rejects, or its store call does). imap-core
 * (patch 090) sends `err.code` when it is an IMAP response code, with `err.responseMessage`, and
 * answers anything else `NO [SERVERBUG]` with Dovecot's generic text. The class must be true: a
 * client retries a transient failure and gives up on a permanent one, so a bug or a full disk
 * reported as temporary is retried forever. The real error goes to the log, never to the client
 * (its message can hold SQL or a file path).
 */
import { MessageTooComplexError } from '../store';

export interface FailureAnswer {
    /** RFC 5530 response code. */
    code: 'OVERQUOTA' | 'INUSE' | 'LIMIT' | 'SERVERBUG';
    /** Text for the client; none for SERVERBUG, which imap-core words (with the time, to find the log line). */
    text?: string;
}

function errorCode(err: unknown): string {
    const code = (err as { code?: unknown } | null)?.code;
    return typeof code === 'string' ? code : '';
}

export function classifyFailure(err: unknown): FailureAnswer {
    const code = errorCode(err);
    // The disk (or the file system's quota for us) is full: RFC 5530 OVERQUOTA, Dovecot's texts. The
    // user can act on it (delete mail), and it lasts until someone does. SQLite reports a failed
    // write for want of space as SQLITE_FULL.
    if (code === 'ENOSPC' || code === 'SQLITE_FULL') return { code: 'OVERQUOTA', text: 'Not enough disk space' };
    if (code === 'EDQUOT') return { code: 'OVERQUOTA', text: 'Not enough disk quota' };
    // Another process holds the database's write lock past busy_timeout (mailmule import, passwd,
    // a backup): RFC 5530 INUSE, "someone else may be holding an exclusive lock needed for this
    // operation ... may succeed if the client tries again later". Not UNAVAILABLE, which is for a
    // subsystem that is down; the store is up, only taken.
    if (code === 'SQLITE_BUSY' || code.startsWith('SQLITE_BUSY_') || code === 'SQLITE_LOCKED' || code.startsWith('SQLITE_LOCKED_')) {
        return { code: 'INUSE', text: 'Mail store is busy, try again later' };
    }
    // The message itself is past a limit: the same message fails again however often it is sent.
    // RFC 5530 LIMIT, "ran up against an implementation limit of some kind". Not PARSE, which
    // RFC 3501 keeps for messages already in the mailbox.
    if (err instanceof MessageTooComplexError) return { code: 'LIMIT', text: 'Message structure is too complex to store' };
    if (code === 'SQLITE_TOOBIG') return { code: 'LIMIT', text: 'Message is too large to store' };
    return { code: 'SERVERBUG' };
}

/** The error a failed handler calls back with: the classified answer, the original kept as `cause` only. */
export function failureReply(err: unknown): Error & { code: FailureAnswer['code']; responseMessage?: string } {
    const answer = classifyFailure(err);
    const reply = Object.assign(new Error(`handler failed: ${answer.code}`, { cause: err }), { code: answer.code });
    return answer.text ? Object.assign(reply, { responseMessage: answer.text }) : reply;
}
