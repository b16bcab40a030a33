/**
 * The store's identity: a format version and a random store id, kept in the database's `meta`
 * table and, the same id, in `blobs/.store-id` beside the message files. At open the two must
 * agree before anything is migrated, swept or deleted: a database that is empty, missing, foreign
 * or damaged next to message files would otherwise look like a store in which no row references
 * any file, and the start-up clean-up would take every message with it.
 *
 * This module holds the decision (pure, unit-tested beside it) and the error a refusal throws;
 * connection.ts gathers the facts and acts on the decision.
 */

/** Raised when what the store keeps changes incompatibly; a newer format is refused, not guessed at. */
export const STORE_FORMAT = 1;

/** What open found, before touching anything. */
export interface IdentityFacts {
    /** The database file: absent, 0 bytes, a database without mailmule's schema, or one with it. */
    database: 'missing' | 'empty' | 'unmigrated' | 'present';
    /** PRAGMA quick_check of a present database ('ok' or what is wrong); null when not run. */
    quickCheck: string | null;
    /** meta.store_id and meta.store_format; null when not recorded (a store from before identities). */
    databaseStoreId: string | null;
    databaseFormat: number | null;
    /** The id in blobs/.store-id; null when the file is absent. */
    filesStoreId: string | null;
    /** Whether blobs/ holds any message file. */
    hasMessageFiles: boolean;
    /** Whether at least one message file on disk is named by a `blobs` row (asked only where it matters). */
    referencesFiles: () => boolean;
}

export type IdentityDecision =
    /** A new store: create the schema and give it a new id, in the database and beside the files. */
    | { action: 'create' }
    /** Identities agree: open as it is. */
    | { action: 'open' }
    /** A store from before identities, or one whose id file is missing, that passes the check: record `storeId` (a new one when null) where it is missing. */
    | { action: 'adopt'; storeId: string | null }
    /** Do not open: nothing may be migrated, swept or deleted. */
    | { action: 'refuse'; kind: StoreRefusalKind; reason: string };

export type StoreRefusalKind = 'mismatch' | 'damaged' | 'newer';

/** Decides what open does with a data directory; see IdentityFacts. */
export function decideIdentity(facts: IdentityFacts): IdentityDecision {
    const filesBelongToAStore = facts.hasMessageFiles || facts.filesStoreId !== null;
    if (facts.database === 'missing' || facts.database === 'empty' || facts.database === 'unmigrated') {
        if (!filesBelongToAStore) return { action: 'create' };
        const what = { missing: 'is missing', empty: 'is empty (0 bytes)', unmigrated: 'holds no mailmule data' }[facts.database];
        return {
            action: 'refuse',
            kind: 'mismatch',
            reason: `the database ${what}, but the message files of a store${facts.filesStoreId ? ` (id ${facts.filesStoreId})` : ''} are beside it`
        };
    }
    if (facts.quickCheck !== null && facts.quickCheck !== 'ok') {
        // quick_check's first line is "*** in database main ***" when it names a problem: say the problem.
        const problem = facts.quickCheck.split('\n').find(line => line.trim() && !line.startsWith('***')) ?? facts.quickCheck;
        return { action: 'refuse', kind: 'damaged', reason: `the database is damaged (quick_check: ${problem})` };
    }
    if (facts.databaseFormat !== null && facts.databaseFormat > STORE_FORMAT) {
        return { action: 'refuse', kind: 'newer', reason: `the store has format ${facts.databaseFormat}; this mailmule reads format ${STORE_FORMAT} and older` };
    }
    if (facts.databaseStoreId !== null && facts.filesStoreId !== null) {
        if (facts.databaseStoreId === facts.filesStoreId) return { action: 'open' };
        return {
            action: 'refuse',
            kind: 'mismatch',
            reason: `the database belongs to store ${facts.databaseStoreId}, the message files to store ${facts.filesStoreId}`
        };
    }
    if (facts.databaseStoreId === null && facts.filesStoreId !== null) {
        // The files have an id the database never had: the database is not theirs.
        return { action: 'refuse', kind: 'mismatch', reason: `the database has no store id, but the message files belong to store ${facts.filesStoreId}` };
    }
    // One side has no id yet: adopt only a database that references the files beside it (or when there are none).
    if (facts.hasMessageFiles && !facts.referencesFiles()) {
        return { action: 'refuse', kind: 'mismatch', reason: 'the database references none of the message files beside it' };
    }
    return { action: 'adopt', storeId: facts.databaseStoreId };
}

/** A refused open. The message says which directory, what is wrong, and that nothing was changed. */
export class StoreRefusedError extends Error {
    override name = 'StoreRefusedError';
    constructor(
        readonly kind: StoreRefusalKind,
        readonly dataDir: string,
        reason: string
    ) {
        super(
            `refusing to open the store in ${dataDir}: ${reason}. Nothing was changed or deleted. ` +
                (kind === 'newer' ? 'Run the mailmule version that wrote it.' : 'Put the right mailmule.sqlite back (or restore a backup with `mailmule restore`) before starting mailmule.')
        );
    }
}
