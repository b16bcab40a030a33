/**
 * The queue's front door. A submission's message files are written and fsynced off the event
 * loop, then the database rows of every submission that is ready in the same turn are
 * committed in one transaction (group commit): under load, ten clients finishing DATA together
 * cost one fsync of the WAL, not ten, and a single client waits for no one.
 *
 * The promise resolves only after the commit, so a caller that answers 250 on resolution has
 * the message on disk; it rejects when the disk or the store failed (answer 4xx).
 */
import type { Store, Submission, SubmissionResult } from '../store';

interface Pending {
    submission: Submission;
    resolve: (result: SubmissionResult) => void;
    reject: (err: Error) => void;
}

export class QueueIntake {
    private pending: Pending[] = [];
    private scheduled = false;

    constructor(private readonly store: Store) {}

    async submit(submission: Submission): Promise<SubmissionResult> {
        const files = new Map<string, Buffer>([[submission.sent.analysed.hash, submission.sent.raw]]);
        if (submission.relayRecipients.length || submission.localUserIds.length) {
            files.set(submission.relay.analysed.hash, submission.relay.raw);
        }
        for (const [hash, raw] of files) {
            await this.store.blobs.write(hash, raw);
        }
        return new Promise((resolve, reject) => {
            this.pending.push({ submission, resolve, reject });
            if (!this.scheduled) {
                this.scheduled = true;
                setImmediate(() => this.flush());
            }
        });
    }

    private flush(): void {
        this.scheduled = false;
        const batch = this.pending;
        this.pending = [];
        let results: (SubmissionResult | Error)[];
        try {
            results = this.store.commitSubmissions(batch.map(item => item.submission));
        } catch (err) {
            for (const item of batch) item.reject(err as Error);
            return;
        }
        // A Sent copy the client had already APPENDed is not stored twice: drop its unused file.
        this.store.discardUnreferencedFiles(batch.flatMap(item => [item.submission.sent.analysed.hash, item.submission.relay.analysed.hash]));
        batch.forEach((item, index) => {
            const result = results[index];
            if (result instanceof Error) item.reject(result);
            else item.resolve(result);
        });
    }
}
