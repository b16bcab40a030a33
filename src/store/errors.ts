/**
 * The store's one way to say no. An operation that is refused or cannot find what it acts on
 * throws a StoreError; its code is the IMAP response code (RFC 5530) where there is one, so an
 * IMAP handler passes it on as it is.
 */
export type StoreErrorCode =
    /** The named mailbox (or queue entry) does not exist, or is not the user's. */
    | 'NONEXISTENT'
    /** A mailbox of that name exists already. */
    | 'ALREADYEXISTS'
    /** The mailbox that mail should go into does not exist (APPEND, COPY, MOVE, delivery). */
    | 'TRYCREATE'
    /** Not allowed: an invalid name, INBOX, a special-use mailbox. */
    | 'CANNOT'
    /** A queue entry that is being sent right now. */
    | 'BUSY'
    /** A request the store cannot carry out as given (a relay recipient without an account). */
    | 'INVALID';

export class StoreError extends Error {
    constructor(
        readonly code: StoreErrorCode,
        message: string = code
    ) {
        super(message);
        this.name = 'StoreError';
    }
}

/** The code of a StoreError, or null for any other error (which the caller passes on). */
export function storeErrorCode(err: unknown): StoreErrorCode | null {
    return err instanceof StoreError ? err.code : null;
}
