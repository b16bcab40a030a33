/**
 * The queue's front door. A submission's message files are written (store.queue.stage: spooled,
 * see below, or fsynced off the event loop), then the database rows of every submission that is ready together
 * are committed in one transaction (group commit, store.queue.commitSubmissions): under load,
 * ten clients finishing DATA together cost one fsync of the WAL, not ten, and a single client
 * waits for no one.
 *
 * "Ready together": when the first submission of a batch has its files on disk, the batch also
 * waits for the file writes that are already under way at that moment (they finish within a
 * few milliseconds), never for writes that start later, and never longer than MAX_WAIT_MS.
 * With nothing else in flight the commit follows at once. The commit runs on the event loop,
 * its WAL fsync on the thread pool (store/queue.ts): the next batch can be committed while the
 * last one's fsync runs, and fewer, larger commits leave more of the loop to the sessions.
 *
 * The promise resolves only after the commit and its WAL fsync, so a caller that answers 250 on
 * resolution has the message on disk; it rejects when the disk or the store failed (answer 4xx).
 *
 * Small submissions are spooled (store/queue.ts): their files are written without fsync and
 * their bytes committed with their rows, so that commit is the batch's only fsync. The spool is
 * emptied in the background, one syncfs at a time: SPOOL_SYNC_MS after the first spooled
 * commit, or at once when SPOOL_SYNC_AT files wait. A failed sync is tried again later; until
 * then the bytes stay durable in the database.
 */
import type { Settled, Store, Submission, SubmissionResult } from '../store';

interface Pending {
    submission: Submission;
    resolve: (result: SubmissionResult) => void;
    reject: (err: Error) => void;
}

/** Longest a ready submission waits for writes that were under way when it became ready. */
const MAX_WAIT_MS = 10;
/** Commit at once when this many are ready. */
const MAX_BATCH = 64;
/** Longest a spooled file waits for the syncfs that lets the spool go of it. */
const SPOOL_SYNC_MS = 1000;
/** Sync at once when the spool holds this many files (the bytes sit in the database until then). */
const SPOOL_SYNC_AT = 512;
/** After a failed sync, the next try. */
const SPOOL_RETRY_MS = 30000;

export class QueueIntake {
    private pending: Pending[] = [];
    /** Submissions whose files are being written. */
    private readonly writing = new Set<symbol>();
    /** The writes the next commit waits for (null: no batch is forming). */
    private waitFor: Set<symbol> | null = null;
    private timer: NodeJS.Timeout | null = null;
    private scheduled = false;
    private spoolTimer: NodeJS.Timeout | null = null;
    /** The background sync under way, if any. */
    private spoolSync: Promise<void> | null = null;
    private closed = false;

    private readonly onSpoolError: (err: Error) => void;
    private readonly spoolSyncMs: number;

    /**
     * `onSpoolError` hears of a failed background sync (it is tried again, the bytes are safe
     * meanwhile); `spoolSyncMs` replaces SPOOL_SYNC_MS (tests that look at the spool hold it off).
     */
    constructor(
        private readonly store: Store,
        options: { onSpoolError?: (err: Error) => void; spoolSyncMs?: number } = {}
    ) {
        this.onSpoolError = options.onSpoolError ?? (() => undefined);
        this.spoolSyncMs = options.spoolSyncMs ?? SPOOL_SYNC_MS;
    }

    /**
     * Stops the background syncs and makes what is spooled durable with a last one, for a stop
     * (call it after the listeners closed and before the store does). Never rejects: what a failed
     * sync leaves in the spool is written back at the next start.
     */
    async close(): Promise<void> {
        this.closed = true;
        if (this.spoolTimer) clearTimeout(this.spoolTimer);
        this.spoolTimer = null;
        await this.spoolSync;
        try {
            await this.store.queue.syncSpool();
        } catch (err) {
            this.onSpoolError(err as Error);
        }
    }

    async submit(submission: Submission): Promise<SubmissionResult> {
        const token = Symbol('write');
        this.writing.add(token);
        try {
            await this.store.queue.stage(submission);
        } catch (err) {
            this.written(token);
            throw err;
        }
        return new Promise((resolve, reject) => {
            this.pending.push({ submission, resolve, reject });
            this.written(token);
        });
    }

    /** A submission's file writes are over (done or failed): start or complete a batch. */
    private written(token: symbol): void {
        this.writing.delete(token);
        this.waitFor?.delete(token);
        if (!this.pending.length) return;
        if (!this.waitFor) {
            this.waitFor = new Set(this.writing);
            this.timer = setTimeout(() => this.schedule(), MAX_WAIT_MS);
        }
        if (!this.waitFor.size || this.pending.length >= MAX_BATCH) this.schedule();
    }

    /** Flush on the next turn, so that completions already queued in this one join the batch. */
    private schedule(): void {
        if (this.scheduled) return;
        this.scheduled = true;
        setImmediate(() => this.flush());
    }

    private flush(): void {
        this.scheduled = false;
        if (this.timer) clearTimeout(this.timer);
        this.timer = null;
        this.waitFor = null;
        const batch = this.pending;
        this.pending = [];
        if (!batch.length) return;
        // The store removes the files no committed row points at (a failed commit, a Sent copy
        // the client had already APPENDed). It commits now and settles once the commit is on disk;
        // the next batch does not wait for that.
        this.store.queue.commitSubmissions(batch.map(item => item.submission)).then(
            (results: Settled<SubmissionResult>[]) => {
                batch.forEach((item, index) => {
                    const result = results[index];
                    if (result.ok) item.resolve(result.value);
                    else item.reject(result.error);
                });
                this.scheduleSpoolSync();
            },
            (err: unknown) => {
                for (const item of batch) item.reject(err as Error);
            }
        );
    }

    /** After a commit: sync the spool soon, or now if it has grown large. */
    private scheduleSpoolSync(): void {
        if (this.closed || this.spoolSync) return;
        let size: number;
        try {
            size = this.store.queue.spoolSize();
        } catch {
            return;
        }
        if (!size) return;
        if (size >= SPOOL_SYNC_AT) {
            if (this.spoolTimer) clearTimeout(this.spoolTimer);
            this.spoolTimer = null;
            void this.syncSpool();
        } else if (!this.spoolTimer) {
            this.spoolTimer = setTimeout(() => {
                this.spoolTimer = null;
                void this.syncSpool();
            }, this.spoolSyncMs);
            this.spoolTimer.unref();
        }
    }

    private syncSpool(): Promise<void> {
        if (this.closed || this.spoolSync) return this.spoolSync ?? Promise.resolve();
        this.spoolSync = this.runSpoolSync().finally(() => (this.spoolSync = null));
        return this.spoolSync;
    }

    private async runSpoolSync(): Promise<void> {
        let failed = false;
        try {
            await this.store.queue.syncSpool();
        } catch (err) {
            failed = true;
            if (!this.closed) this.onSpoolError(err as Error);
        }
        if (this.closed) return;
        if (failed) {
            this.spoolTimer = setTimeout(() => {
                this.spoolTimer = null;
                void this.syncSpool();
            }, SPOOL_RETRY_MS);
            this.spoolTimer.unref();
        } else {
            // Commits made while this sync ran wait for the next one.
            setImmediate(() => this.scheduleSpoolSync());
        }
    }
}
