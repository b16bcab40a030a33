/**
 * Every exit code of `mailmule`, and the one place a failure becomes one. README's "Exit codes"
 * table says the same; cron jobs, scripts and systemd act on these numbers, so a published code
 * keeps its meaning.
 *
 * A failure is classified by its type (its class, or SQLite's error code), never by the words of
 * its message: messages are for people and may be reworded.
 */
import { CommanderError } from 'commander';
import type { ConfigError } from '../config';
import type { RunInProgressError } from '../uplink';

export const EXIT = {
    /** Success. For `sync`: every account succeeded (a run the budget stopped counts: the rest waits by design). */
    OK: 0,
    /** A runtime failure not named below, such as a `sync` run that broke off as a whole. */
    FAILURE: 1,
    /** mailmule.yaml or accounts.yaml is invalid; each problem is on stderr as file:line:col. */
    CONFIG: 2,
    /** Bad arguments: an unknown user or queue id, a missing path, wrong usage; a backup or restore that cannot go ahead as asked. */
    USAGE: 3,
    /** `sync`: the run was skipped: no link (the probe did not answer), the up hook failed, or the daily budget is spent. */
    SYNC_SKIPPED: 4,
    /** `sync`: another uplink run is in progress (in the daemon or another `mailmule sync`). */
    SYNC_BUSY: 5,
    /** `sync`: the run took place but at least one account failed; its errors are in the report. */
    SYNC_ACCOUNT_FAILED: 6,
    /** The store's database is damaged (corrupt, or not a database at all). */
    STORE_DAMAGED: 7,
    /**
     * The store was refused untouched: its database does not belong with the message files beside
     * it (missing, empty, or another store's), or was written by a newer mailmule.
     */
    STORE_MISMATCH: 9,
    /** `start`: a listener could not be bound (a port in use, no privilege, an address not on this machine, another daemon on the data directory). */
    LISTEN_FAILED: 8
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A bad argument; the message says which and why. */
export class UsageError extends Error {
    override name = 'UsageError';
}

/** `mailmule sync`: the run was skipped; the report (on stdout) says why. */
export class SyncSkipped extends Error {
    override name = 'SyncSkipped';
}

/** `mailmule sync`: another run is in progress. The daemon reports its own this way (see the sync command). */
export class SyncBusy extends Error {
    override name = 'SyncBusy';
}

/** `mailmule sync`: these accounts failed; their errors are in the report on stdout. */
export class SyncAccountsFailed extends Error {
    override name = 'SyncAccountsFailed';
    constructor(readonly accounts: readonly string[]) {
        super(`${accounts.length} account${accounts.length === 1 ? '' : 's'} failed: ${accounts.join(', ')}`);
    }
}

/**
 * An export of a module, but only if that module is already loaded. An error can only be an
 * instance of a class whose module has run; looking the class up this way keeps a failing
 * `mailmule --version` or a usage error from loading the config schema (zod) or the uplink just
 * to find out that the error is not theirs.
 */
function loadedExport(id: string, name: string): unknown {
    return require.cache[require.resolve(id)]?.exports?.[name];
}

function isInstance(err: unknown, id: string, name: string): boolean {
    const type = loadedExport(id, name);
    return typeof type === 'function' && err instanceof type;
}

function isConfigError(err: unknown): err is ConfigError {
    return isInstance(err, '../config', 'ConfigError');
}

function isRunInProgress(err: unknown): err is RunInProgressError {
    return isInstance(err, '../uplink/run-in-progress', 'RunInProgressError');
}

function isListenError(err: unknown): boolean {
    return isInstance(err, '../listen', 'ListenError');
}

/** A store that identity.ts refused, with the kind of refusal ('mismatch', 'damaged', 'newer'). */
function storeRefusal(err: unknown): string | null {
    return isInstance(err, '../store/identity', 'StoreRefusedError') ? (err as { kind: string }).kind : null;
}

/** better-sqlite3's SqliteError carries SQLite's (extended) result code, e.g. SQLITE_CORRUPT_INDEX. */
function isDamagedDatabase(err: unknown): boolean {
    const code = (err as { code?: unknown } | null)?.code;
    return typeof code === 'string' && (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT' || code.startsWith('SQLITE_CORRUPT_'));
}

/** Which failure exits with which code; the first match wins. Anything else is FAILURE. */
const TABLE: readonly { code: ExitCode; matches(err: unknown): boolean }[] = [
    { code: EXIT.USAGE, matches: err => err instanceof UsageError || err instanceof CommanderError || isInstance(err, '../store/backup', 'BackupError') },
    { code: EXIT.CONFIG, matches: isConfigError },
    { code: EXIT.SYNC_SKIPPED, matches: err => err instanceof SyncSkipped },
    { code: EXIT.SYNC_BUSY, matches: err => err instanceof SyncBusy || isRunInProgress(err) },
    { code: EXIT.SYNC_ACCOUNT_FAILED, matches: err => err instanceof SyncAccountsFailed },
    { code: EXIT.STORE_DAMAGED, matches: err => isDamagedDatabase(err) || storeRefusal(err) === 'damaged' },
    { code: EXIT.STORE_MISMATCH, matches: err => storeRefusal(err) !== null },
    { code: EXIT.LISTEN_FAILED, matches: isListenError }
];

/** commander ends --help and --version by throwing too; those are successes. */
function isCommanderSuccess(err: unknown): boolean {
    return err instanceof CommanderError && ['commander.helpDisplayed', 'commander.version', 'commander.help'].includes(err.code);
}

export function exitCodeFor(err: unknown): ExitCode {
    if (isCommanderSuccess(err)) return EXIT.OK;
    return TABLE.find(row => row.matches(err))?.code ?? EXIT.FAILURE;
}

/** The lines to print on stderr for a failure (commander has already printed its own). */
export function failureLines(err: unknown): string[] {
    if (err instanceof CommanderError) return [];
    if (err instanceof SyncSkipped) return [];
    if (isConfigError(err)) return err.problems.map(problem => `mailmule: ${problem}`);
    const lines = [`mailmule: ${err instanceof Error ? err.message : String(err)}`];
    // SQLite's own words ("database disk image is malformed") do not say which file or what to do.
    if (isDamagedDatabase(err)) lines.push('mailmule: the store (mailmule.sqlite in the data directory) is damaged; restore it from a backup before starting mailmule');
    return lines;
}
