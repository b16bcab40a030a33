/**
 * The queue's front door. A submission's message files are written and fsynced off the event
 * loop (store.queue.stage), then the database rows of every submission that is ready together
 * are committed in one transaction (group commit, store.queue.commitSubmissions): under load,
 * ten clients finishing DATA together cost one fsync of the WAL, not ten, and a single client
 * waits for no one.
 *
 * "Ready together": when the first submission of a batch has its files on disk, the batch also
 * waits for the file writes that are already under way at that moment (they finish within a
 * few milliseconds), never for writes that start later, and never longer than MAX_WAIT_MS.
 * With nothing else in flight the commit follows at once. The commit is synchronous (it holds
 * the event loop for the WAL fsync), so fewer, larger commits leave more of the loop to the
 * sessions.
 *
 * The promise resolves only after the commit, so a caller that answers 250 on resolution has
 * the message on disk; it rejects when the disk or the store failed (answer 4xx).
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

export class QueueIntake {
    private pending: Pending[] = [];
    /** Submissions whose files are being written. */
    private readonly writing = new Set<symbol>();
    /** The writes the next commit waits for (null: no batch is forming). */
    private waitFor: Set<symbol> | null = null;
    private timer: NodeJS.Timeout | null = null;
    private scheduled = false;

    constructor(private readonly store: Store) {}

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
        // the client had already APPENDed).
        let results: Settled<SubmissionResult>[];
        try {
            results = this.store.queue.commitSubmissions(batch.map(item => item.submission));
        } catch (err) {
            for (const item of batch) item.reject(err as Error);
            return;
        }
        batch.forEach((item, index) => {
            const result = results[index];
            if (result.ok) item.resolve(result.value);
            else item.reject(result.error);
        });
    }
}
