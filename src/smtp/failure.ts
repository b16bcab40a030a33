/**
 * The reply to a submission that could not be stored. The class must be true (RFC 5321 4.2.1):
 * a client retries a 4xx until its own queue gives up, days later, and gives up on a 5xx at
 * once. So a message that can never be stored as it is gets 5xx, and a passing condition (a
 * full disk, a busy store) gets 4xx with words that say which, for the user to pass on. The
 * error itself goes to the log, never to the client (its text can hold SQL or a file path).
 */
import { MessageTooComplexError } from '../store';

export interface FailureReply {
    code: number;
    /** With the enhanced status code (RFC 3463) first, as every reply of this server. */
    text: string;
}

function errorCode(err: unknown): string {
    const code = (err as { code?: unknown } | null)?.code;
    return typeof code === 'string' ? code : '';
}

export function failureReply(err: unknown): FailureReply {
    // The same message fails the same way every time.
    if (err instanceof MessageTooComplexError) {
        return { code: 554, text: '5.6.0 The message structure is too complex to store (MIME parts nested too deeply)' };
    }
    const code = errorCode(err);
    // A file larger than the file system or the process may write (EFBIG), or a row past SQLite's
    // limit: RFC 3463 5.3.4, message too big for system.
    if (code === 'EFBIG' || code === 'SQLITE_TOOBIG') return { code: 552, text: '5.3.4 The message is too large for this server to store' };
    // RFC 5321 452, insufficient system storage; RFC 3463 4.3.1, mail system full (Postfix's answer too).
    // SQLite reports a write that found no space as SQLITE_FULL.
    if (code === 'ENOSPC' || code === 'SQLITE_FULL') return { code: 452, text: "4.3.1 The mail server's disk is full; try again later" };
    if (code === 'EDQUOT') return { code: 452, text: "4.3.1 The mail server's disk quota is used up; try again later" };
    // Another process (mailmule import, passwd, a backup) holds the write lock past busy_timeout.
    if (code === 'SQLITE_BUSY' || code.startsWith('SQLITE_BUSY_') || code === 'SQLITE_LOCKED' || code.startsWith('SQLITE_LOCKED_')) {
        return { code: 451, text: '4.3.0 The mail store is busy; try again later' };
    }
    return { code: 451, text: '4.3.0 Could not store the message because of a server error; try again later' };
}
