/**
 * The database connection: opening it (pragmas, migrations from schema.ts), its integrity
 * check, cached statements, and the one way to write: `write(tx => ...)`.
 *
 * Operations take the transaction object (`Tx`) as their first argument, so they compose:
 * an operation called inside another's transaction joins it (a nested `write` is a savepoint),
 * and what a transaction changed is acted on once, after its outermost commit: the users whose
 * mail changed are announced, and message files that lost their last row are removed. Reads
 * take a `Reader`, which a `Tx` also is.
 *
 * Only the store's own modules see this; callers go through the aggregates (index.ts). Opening
 * checks the store's identity (identity.ts) before migrating: a database that does not belong
 * with the message files beside it is refused untouched.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { STORE_FORMAT, StoreRefusedError, decideIdentity, type IdentityFacts } from './identity';
import { listMessageHashes, readStoreId, writeStoreId } from './message-files';
import { MIGRATIONS } from './schema';
import type { HeaderSummary } from './header-summary';
import { registerSearchFunctions } from './search';

export type Statement = Database.Statement;

export interface Reader {
    /** A prepared statement, cached for the life of the connection. */
    stmt(sql: string): Statement;
    /** As stmt, in raw mode (rows as arrays: the cheapest form, for hot paths). */
    rawStmt(sql: string): Statement;
    /** An uncached statement, for SQL that is built per call (SEARCH). */
    prepare(sql: string): Statement;
}

export interface Tx extends Reader {
    /**
     * False once SQLite has rolled the whole transaction back by itself (a full disk, an I/O
     * error): a caller that caught a savepoint's error must then give up, not go on outside it.
     */
    readonly active: boolean;
    /** `userId`'s mail changed: listeners are told after the commit. */
    changed(userId: number): void;
    /** Message files whose last row this transaction deleted: removed after it, unless a row points at them again. */
    release(hashes: readonly string[]): void;
    /**
     * Header summaries of the messages analysed for this transaction's inserts, by content hash
     * (blob-rows.ts insertBlob notes them; messages/rows.ts insertMessageRow takes each new row's from here).
     */
    readonly headerSummaries: Map<string, HeaderSummary>;
    /** The bytes of the small messages this transaction stores inline (message-files.ts commitWith, inline-messages.ts), by content hash. */
    readonly inlineBytes: ReadonlyMap<string, Buffer>;
}

/** What a finished outermost transaction leaves to do. */
export interface WriteEffects {
    committed: boolean;
    changedUsers: ReadonlySet<number>;
    releasedFiles: readonly string[];
}

class Transaction implements Tx {
    readonly changedUsers = new Set<number>();
    readonly releasedFiles: string[] = [];
    readonly headerSummaries = new Map<string, HeaderSummary>();

    constructor(private readonly connection: Connection) {}

    get inlineBytes(): ReadonlyMap<string, Buffer> {
        return this.connection.inlineBytes;
    }

    get active(): boolean {
        return this.connection.inTransaction;
    }

    stmt(sql: string): Statement {
        return this.connection.stmt(sql);
    }

    rawStmt(sql: string): Statement {
        return this.connection.rawStmt(sql);
    }

    prepare(sql: string): Statement {
        return this.connection.prepare(sql);
    }

    changed(userId: number): void {
        this.changedUsers.add(userId);
    }

    release(hashes: readonly string[]): void {
        this.releasedFiles.push(...hashes);
    }
}

export class Connection implements Reader {
    private readonly statements = new Map<string, Statement>();
    private readonly rawStatements = new Map<string, Statement>();
    private current: Transaction | null = null;
    /** Set by the store: runs after each outermost write, committed or not. */
    afterWrite: (effects: WriteEffects) => void = () => undefined;
    /** See Tx.inlineBytes: filled by message-files.ts around the commit that takes them. */
    readonly inlineBytes = new Map<string, Buffer>();

    constructor(private readonly db: Database.Database) {}

    stmt(sql: string): Statement {
        let statement = this.statements.get(sql);
        if (!statement) {
            statement = this.db.prepare(sql);
            this.statements.set(sql, statement);
        }
        return statement;
    }

    rawStmt(sql: string): Statement {
        let statement = this.rawStatements.get(sql);
        if (!statement) {
            statement = this.db.prepare(sql).raw(true);
            this.rawStatements.set(sql, statement);
        }
        return statement;
    }

    prepare(sql: string): Statement {
        return this.db.prepare(sql);
    }

    /**
     * Runs `fn` in a transaction and returns what it returns; a throw rolls it back and is passed
     * on. The transaction takes the write lock when it begins (BEGIN IMMEDIATE), waiting up to
     * busy_timeout for it: a deferred one that has read and then writes after another process
     * (mailmule import, passwd) committed fails at once with "database is locked"
     * (SQLITE_BUSY_SNAPSHOT), since its snapshot is stale and no amount of waiting helps.
     */
    write<T>(fn: (tx: Tx) => T): T {
        const outer = this.current;
        if (outer) {
            // Inside another transaction: a savepoint, whose effects wait for the outer commit.
            return this.db.transaction(() => fn(outer))();
        }
        const tx = new Transaction(this);
        this.current = tx;
        let committed = false;
        try {
            const result = this.db.transaction(() => fn(tx)).immediate();
            committed = true;
            return result;
        } finally {
            this.current = null;
            this.afterWrite({ committed, changedUsers: tx.changedUsers, releasedFiles: tx.releasedFiles });
        }
    }

    /** A PRAGMA's value on this connection (test support sets per-connection limits through it). */
    pragma(source: string): unknown {
        return this.db.pragma(source, { simple: true });
    }

    /** VACUUM: rewrites the database without its free pages (needs as much free space again, and no other writer). */
    vacuum(): void {
        this.db.exec('VACUUM');
    }

    /** PRAGMA integrity_check: 'ok', or what is damaged. */
    integrityCheck(): string {
        return String(this.db.pragma('integrity_check', { simple: true }));
    }

    /** SQLite's online backup of this database into `file` (consistent while others write). */
    async backupTo(file: string): Promise<void> {
        // In one step: SQLite restarts an online backup from its first page whenever another
        // connection (the daemon) writes between two steps, so a copy in 100-page steps never ended
        // while mail kept arriving (backup.test.ts under SMTP load). One step holds a read
        // transaction only; in WAL mode the daemon goes on writing meanwhile.
        await this.db.backup(file, { progress: () => 0x7fffffff });
    }

    get open(): boolean {
        return this.db.open;
    }

    get inTransaction(): boolean {
        return this.db.inTransaction;
    }

    close(): void {
        this.statements.clear();
        this.rawStatements.clear();
        if (this.db.open) {
            this.db.close();
        }
    }
}

/**
 * Opens (creating if need be) and migrates the database at `file`, whose message files are in
 * `blobsDir`. Before anything is written, the two must belong together (identity.ts); if not,
 * throws a StoreRefusedError and leaves both as they were. `quickCheck` also reads the whole
 * database through SQLite's quick_check first (about 0.35–1.2 s per 10,000 messages here): the
 * daemon does at start, and every CLI command (src/cli/common.ts openStore).
 */
export function openConnection(file: string, blobsDir: string, options: { quickCheck?: boolean } = {}): Connection {
    const dataDir = path.dirname(file);
    const size = fileSize(file);
    const filesStoreId = readStoreId(blobsDir);
    const hasMessageFiles = !listMessageHashes(blobsDir).next().done;
    if (size === null || size === 0) {
        // Decide before opening: SQLite would create the file, and treat an empty one as a new database.
        const decision = decideIdentity({ ...NO_DATABASE, database: size === null ? 'missing' : 'empty', filesStoreId, hasMessageFiles });
        if (decision.action === 'refuse') throw new StoreRefusedError(decision.kind, dataDir, decision.reason);
    }
    const db = new Database(file);
    try {
        // It holds password hashes: owner only, before the first read creates -wal and -shm with its mode.
        if (fs.statSync(file).mode & 0o077) fs.chmodSync(file, 0o600);
        db.pragma('journal_mode = WAL');
        // FULL: a commit is on disk before we answer a client (a 250, an APPEND OK).
        db.pragma('synchronous = FULL');
        db.pragma('foreign_keys = ON');
        db.pragma('busy_timeout = 5000');
        // 4 MB of page cache: the hot indexes fit. 8 MB made no read of bench:imap's 10,000-message
        // INBOX cheaper (daemon CPU per step the same within its spread), and each page is a malloc
        // of its own, which glibc's heap keeps: peak RSS 125-128 MB against 132-139 MB over ten
        // sessions (docs/benchmarks.md, "Daemon peak RSS in bench:imap").
        db.pragma('cache_size = -4000');
        registerSearchFunctions(db);
        const facts = identityFacts(db, filesStoreId, hasMessageFiles, blobsDir, options.quickCheck ?? true);
        const decision = decideIdentity(facts);
        if (decision.action === 'refuse') throw new StoreRefusedError(decision.kind, dataDir, decision.reason);
        migrate(db);
        if (decision.action === 'create' || decision.action === 'adopt') {
            const storeId = (decision.action === 'adopt' ? decision.storeId : null) ?? crypto.randomUUID();
            // The database first: one with an id and no file beside it is adopted again at the next open.
            db.prepare("INSERT INTO meta (key, value) VALUES ('store_id', ?), ('store_format', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value").run(storeId, String(STORE_FORMAT));
            writeStoreId(blobsDir, storeId);
        }
    } catch (err) {
        db.close();
        throw err;
    }
    return new Connection(db);
}

const NO_DATABASE: IdentityFacts = {
    database: 'missing',
    quickCheck: null,
    databaseStoreId: null,
    databaseFormat: null,
    filesStoreId: null,
    hasMessageFiles: false,
    referencesFiles: () => false
};

function fileSize(file: string): number | null {
    try {
        return fs.statSync(file).size;
    } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw err;
    }
}

/** What decideIdentity needs to know about an open database (read only). */
function identityFacts(db: Database.Database, filesStoreId: string | null, hasMessageFiles: boolean, blobsDir: string, runQuickCheck: boolean): IdentityFacts {
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version === 0) return { ...NO_DATABASE, database: 'unmigrated', filesStoreId, hasMessageFiles };
    const quickCheck = runQuickCheck ? String(db.pragma('quick_check', { simple: true })) : null;
    const meta = (key: string) => (quickCheck === 'ok' || quickCheck === null ? ((db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(key) as string | undefined) ?? null) : null);
    const format = meta('store_format');
    return {
        database: 'present',
        quickCheck,
        databaseStoreId: meta('store_id'),
        databaseFormat: format === null ? null : Number(format),
        filesStoreId,
        hasMessageFiles,
        referencesFiles: () => {
            const known = db.prepare('SELECT 1 FROM blobs WHERE hash = ?').pluck();
            for (const hash of listMessageHashes(blobsDir)) if (known.get(hash)) return true;
            return false;
        }
    };
}

/** Runs the migrations not yet applied, each in its own transaction (`PRAGMA user_version` counts them). */
function migrate(db: Database.Database): void {
    const version = db.pragma('user_version', { simple: true }) as number;
    for (let index = version; index < MIGRATIONS.length; index++) {
        db.transaction(() => {
            db.exec(MIGRATIONS[index]);
            db.pragma(`user_version = ${index + 1}`);
        }).immediate();
    }
}
