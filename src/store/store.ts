/**
 * The Store: one connection, one message-file directory, and the aggregates that callers use
 * (see index.ts). It emits `change` with a user id after every commit that changed that user's
 * mail; IMAP sessions (and anything else) listen for it.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { AccountProblems } from './account-problems';
import { backupStore, type BackupReport } from './backup';
import { compressOldTrees, deleteOrphanBlobs } from './blob-rows';
import { openConnection, type Connection } from './connection';
import { Mailboxes } from './mailboxes';
import { MessageFiles } from './message-files';
import { Messages } from './messages';
import { fillHeaderSummaries } from './messages/fill-summaries';
import { pruneJournal } from './messages/journal';
import { Queue } from './queue';
import { packOldSearchText } from './search-text';
import { RelayOutbox } from './relay-outbox';
import { Runs } from './runs';
import { RunHistory } from './run-history';
import { SyncState } from './sync';
import { Users } from './users';

export interface StoreOptions {
    /** Holds mailmule.sqlite, blobs/ and tmp/. Created if missing. */
    dataDir: string;
    /** Read the whole database with quick_check before opening (default true; see openConnection). */
    quickCheck?: boolean;
}

export interface CompactReport {
    headerSummaries: number;
    trees: number;
    searchTexts: number;
    inlined: number;
}

/** How long the journal keeps a change: a session away longer re-reads its mailbox. */
const JOURNAL_MAX_AGE_MS = 3 * 3600 * 1000;

export class Store extends EventEmitter {
    readonly dataDir: string;
    readonly users: Users;
    readonly mailboxes: Mailboxes;
    readonly messages: Messages;
    readonly queue: Queue;
    readonly sync: SyncState;
    readonly runs: Runs;
    readonly runHistory: RunHistory;
    readonly accountProblems: AccountProblems;
    /** A relay's view of the mail its uplink stored (src/relay). */
    readonly relayOutbox: RelayOutbox;
    private readonly db: Connection;
    private readonly files: MessageFiles;

    constructor(options: StoreOptions) {
        super();
        this.setMaxListeners(0);
        this.dataDir = options.dataDir;
        fs.mkdirSync(this.dataDir, { recursive: true, mode: 0o700 });
        this.db = openConnection(path.join(this.dataDir, 'mailmule.sqlite'), path.join(this.dataDir, 'blobs'), { quickCheck: options.quickCheck });
        this.files = new MessageFiles(this.dataDir, this.db);
        this.db.afterWrite = effects => {
            this.files.removeUnreferenced(effects.releasedFiles);
            if (effects.committed) {
                for (const userId of effects.changedUsers) this.emit('change', userId);
            }
        };
        this.users = new Users(this.db);
        this.mailboxes = new Mailboxes(this.db);
        this.messages = new Messages(this.db, this.files);
        this.queue = new Queue(this.db, this.files);
        this.sync = new SyncState(this.db, this.files);
        this.runs = new Runs(this.db);
        this.runHistory = new RunHistory(this.db);
        this.accountProblems = new AccountProblems(this.db);
        this.relayOutbox = new RelayOutbox(this.db, this.files);
    }

    /**
     * Runs several store calls in one transaction (one fsync at the end): for bulk work such as
     * `mailmule import`, where a commit per message would make the disk, not the CPU, the limit.
     */
    batch<T>(fn: () => T): T {
        return this.db.write(() => fn());
    }

    /** PRAGMA integrity_check: 'ok', or what is damaged. */
    integrityCheck(): string {
        return this.db.integrityCheck();
    }

    /**
     * At start-up, clears what a crash can leave behind: spooled message files are written back,
     * temporary files and old journal entries cleared;
     * message files no row references go to lost+found/ (`removedBlobs` counts them, and rows
     * left without a reference, whose files go too); and requeues interrupted sends.
     */
    recover(): { removedBlobs: number; interruptedSends: number } {
        // Spooled files first (store/queue.ts): they have rows, but perhaps not all their bytes.
        this.queue.recoverSpool();
        let removedBlobs = this.files.sweep();
        removedBlobs += this.db.write(tx => {
            pruneJournal(tx, JOURNAL_MAX_AGE_MS);
            return deleteOrphanBlobs(tx);
        });
        const interruptedSends = this.queue.recoverInterruptedSends();
        this.compact();
        return { removedBlobs, interruptedSends };
    }

    /**
     * What migrations 12, 14, 15 and 16 leave to do in code, for rows stored before them: header
     * summaries, compressed MIME trees, packed search text, small messages moved into their rows.
     * Resumable: each batch is its own transaction, and what is done is not done again. Run at
     * start-up (recover) and by `mailmule migrate`. Returns how many rows each step changed.
     */
    compact(): CompactReport {
        return {
            headerSummaries: fillHeaderSummaries(this.db, this.files),
            trees: compressOldTrees(this.db),
            searchTexts: packOldSearchText(this.db),
            inlined: this.files.moveSmallFilesInline(this.db)
        };
    }

    /** Gives the pages freed by compact back to the file system (SQLite's VACUUM: a rewrite of the whole database). */
    vacuum(): void {
        this.db.vacuum();
    }

    /** A consistent copy into `targetDir` while others keep writing (backup.ts); incremental. */
    backup(targetDir: string): Promise<BackupReport> {
        return backupStore(this.db, this.dataDir, targetDir);
    }

    close(): void {
        this.files.close();
        this.db.close();
    }
}
