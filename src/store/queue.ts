/**
 * The outbound queue's rows: one per submitted message with recipients beyond the Pi, one per
 * such recipient (so a partial delivery is never repeated), and the submission that creates
 * them together with the sender's Sent copy and local deliveries, all in one commit.
 *
 * The spool: a submission of up to SPOOL_MAX_BYTES has its message files written without an
 * fsync, and its bytes inserted into `intake_spool` in the same transaction as its rows, so the
 * group commit's single WAL fsync makes the whole batch durable (Postfix spends one fsync per
 * message; a file fsync plus its directory's would be two). Later, off the hot path, syncSpool
 * makes the files durable with one syncfs for everything written since the last one and deletes
 * the rows it covered; at start-up, recoverSpool writes every file still spooled back from its
 * bytes, with fsync, before anything reads it (an outage may have left the file short or empty).
 * A kill -9 loses nothing either way: the page cache outlives the process.
 *
 * The group commit itself runs with synchronous=NORMAL, then fdatasyncs the WAL on the thread
 * pool before it resolves: the same durability as synchronous=FULL (whose only extra work in WAL
 * mode is that very WAL sync at COMMIT), but the sync no longer holds the event loop, so the
 * sessions' next messages are parsed and the next batch committed while it runs. NORMAL alone
 * would not do: a commit is durable only once its WAL frames are synced, which is why nothing
 * resolves before syncWal. Checkpoints keep their syncs under NORMAL (WAL before, database
 * after), so the WAL is never reused before what it held is in the database file on disk.
 */
import { isInlineSize } from './inline-messages';
import fs from 'node:fs';
import type { Readable } from 'node:stream';
import { insertBlob, releaseBlobs } from './blob-rows';
import type { Connection, Tx } from './connection';
import { StoreError } from './errors';
import { mailboxByPath, specialMailbox } from './mailboxes';
import type { MessageBytes, MessageFiles } from './message-files';
import { appendJournal } from './messages/journal';
import { insertMessageRow } from './messages/rows';
import type { QueueEntry, QueueState, Settled, Submission, SubmissionResult } from './types';

/** What the provider answered for one attempt, and the entry's state after it. */
export interface SendOutcome {
    sent: string[];
    failed: { address: string; error: string }[];
    deferredError: string | null;
    state: 'sent' | 'deferred' | 'failed';
    nextAttemptAt: number | null;
    /** The attempt never reached markSending (the connection failed first): count it here. */
    countAttempt?: boolean;
}

/** A `queue` row joined with its user's name, as SQLite returns it. */
interface QueueDbRow {
    id: number;
    user_id: number;
    user_name: string;
    account: string;
    mail_from: string;
    blob_hash: string;
    size: number;
    message_id: string | null;
    subject: string | null;
    state: QueueState;
    attempts: number;
    next_attempt_at: number | null;
    last_error: string | null;
    created_at: number;
    updated_at: number;
}

/** Submissions up to this size (all their files together) are spooled; larger ones fsync their files. */
const SPOOL_MAX_BYTES = 256 * 1024;

const QUEUE_SELECT = `SELECT q.id, q.user_id, u.name AS user_name, q.account, q.mail_from, q.blob_hash, q.size, q.message_id, q.subject, q.state,
                             q.attempts, q.next_attempt_at, q.last_error, q.created_at, q.updated_at
                      FROM queue q JOIN users u ON u.id = q.user_id`;

/** The files a submission's rows may point at: the Sent copy, and the relay copy when it goes anywhere. */
function submissionFiles(submission: Submission): MessageBytes[] {
    const files = new Map<string, Buffer>([[submission.sent.analysed.hash, submission.sent.raw]]);
    if (submission.relayRecipients.length || submission.localUserIds.length) {
        files.set(submission.relay.analysed.hash, submission.relay.raw);
    }
    return [...files].map(([hash, raw]) => ({ hash, raw }));
}

/** One submission's rows, inside the caller's transaction (a savepoint of the group commit). */
function commitSubmission(tx: Tx, submission: Submission, spooled: boolean): SubmissionResult {
    const at = Date.now();
    if (spooled) {
        // REPLACE: a new id, so a syncfs that started before this file was written does not count for it.
        const spool = tx.stmt('INSERT OR REPLACE INTO intake_spool (hash, raw) VALUES (?, ?)');
        // A small message needs no spooling: its bytes are in its row, in this same commit (inline-messages.ts).
        for (const file of submissionFiles(submission)) if (!isInlineSize(file.raw.length)) spool.run(file.hash, file.raw);
    }
    let queueId: number | null = null;
    if (submission.relayRecipients.length) {
        if (!submission.account) {
            throw new StoreError('INVALID', 'no upstream account to relay through');
        }
        const relay = submission.relay.analysed;
        insertBlob(tx, relay);
        // ENVELOPE's subject is decoded (searchHeaders is lower-cased for SEARCH).
        const envelopeSubject = relay.envelope[1] as Buffer | string | null | undefined;
        const subject = envelopeSubject == null ? null : Buffer.isBuffer(envelopeSubject) ? envelopeSubject.toString('utf8') : String(envelopeSubject);
        queueId = Number(
            tx
                .stmt(
                    `INSERT INTO queue (user_id, account, mail_from, blob_hash, size, message_id, subject, state, attempts, created_at, updated_at)
                     VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', 0, ?, ?)`
                )
                .run(submission.userId, submission.account, submission.mailFrom, relay.hash, relay.size, relay.messageId, subject, at, at).lastInsertRowid
        );
        const addRecipient = tx.stmt('INSERT OR IGNORE INTO queue_recipients (queue_id, address) VALUES (?, ?)');
        for (const address of submission.relayRecipients) {
            addRecipient.run(queueId, address);
        }
    }

    let sentUid: number | null = null;
    const sentMailbox = specialMailbox(tx, submission.userId, '\\Sent');
    const sent = submission.sent.analysed;
    if (sentMailbox) {
        // The client may have APPENDed its own copy already (Thunderbird does): keep one.
        const existing = sent.messageId
            ? (tx.stmt('SELECT uid FROM messages WHERE mailbox_id = ? AND message_id = ? LIMIT 1').pluck().get(sentMailbox.id, sent.messageId) as number | undefined)
            : undefined;
        if (existing) {
            sentUid = existing;
        } else {
            insertBlob(tx, sent);
            const added = insertMessageRow(tx, sentMailbox.id, sent.hash, sent.size, sent.messageId, ['\\Seen'], at, null);
            tx.stmt('UPDATE messages SET filed_by_gateway = 1 WHERE mailbox_id = ? AND uid = ?').run(sentMailbox.id, added.uid);
            appendJournal(tx, sentMailbox.id, { command: 'EXISTS', uid: added.uid, modseq: added.modseq });
            sentUid = added.uid;
            tx.changed(submission.userId);
        }
    }

    const deliveredTo: number[] = [];
    for (const userId of new Set(submission.localUserIds)) {
        const inbox = mailboxByPath(tx, userId, 'INBOX');
        if (!inbox) continue;
        const relay = submission.relay.analysed;
        insertBlob(tx, relay);
        const added = insertMessageRow(tx, inbox.id, relay.hash, relay.size, relay.messageId, [], at, null);
        appendJournal(tx, inbox.id, { command: 'EXISTS', uid: added.uid, modseq: added.modseq });
        deliveredTo.push(userId);
        tx.changed(userId);
    }
    return { queueId, sentUid, deliveredTo };
}

export class Queue {
    /** Submissions staged for the spool: their files were written without fsync. */
    private readonly spooled = new WeakSet<Submission>();
    /** The database's -wal file, whose fdatasync makes a commit durable (known after the first). */
    private walFile: string | null = null;

    constructor(
        private readonly db: Connection,
        private readonly files: MessageFiles
    ) {}

    /**
     * Writes a submission's message files ahead of its commit in commitSubmissions: to the page
     * cache when it goes to the spool (see above), else with fsync on the thread pool.
     */
    stage(submission: Submission): Promise<void> {
        const files = submissionFiles(submission);
        if (files.reduce((sum, file) => sum + file.raw.length, 0) > SPOOL_MAX_BYTES) return this.files.put(files);
        this.spooled.add(submission);
        return this.files.put(files, { synced: false });
    }

    /**
     * Commits staged submissions, several at once when they arrive together (group commit: one
     * fsync for the batch). Each is all-or-nothing inside its own savepoint and settles on its
     * own; a rejection means the whole batch failed (with its cause: a full disk rolls back the
     * whole transaction, not just the savepoint; or the WAL could not be synced). Files no
     * committed row points at are removed. The commit itself happens before this returns (the
     * next batch may start at once); the promise settles once it is durable.
     */
    async commitSubmissions(submissions: readonly Submission[]): Promise<Settled<SubmissionResult>[]> {
        const results = this.commitWithoutSync(submissions);
        await this.syncWal();
        return results;
    }

    private commitWithoutSync(submissions: readonly Submission[]): Settled<SubmissionResult>[] {
        const spooled = submissions.filter(submission => this.spooled.has(submission));
        const synced = submissions.filter(submission => !this.spooled.has(submission));
        const commit = () =>
            this.db.write(batch =>
                submissions.map((submission): Settled<SubmissionResult> => {
                    try {
                        return { ok: true, value: this.db.write(tx => commitSubmission(tx, submission, this.spooled.has(submission))) };
                    } catch (err) {
                        if (!batch.active) throw err;
                        return { ok: false, error: err instanceof Error ? err : new Error(String(err)) };
                    }
                })
            );
        if (this.db.inTransaction) throw new Error('commitSubmissions must be an outermost transaction');
        this.db.pragma('synchronous = NORMAL');
        try {
            return this.files.commitWith(synced.flatMap(submissionFiles), () => this.files.commitWith(spooled.flatMap(submissionFiles), commit, { synced: false }));
        } finally {
            // FULL again for every other writer, before anything else runs on this connection.
            this.db.pragma('synchronous = FULL');
            for (const submission of spooled) this.spooled.delete(submission);
        }
    }

    /** fdatasync of the WAL on the thread pool: every commit made so far on this connection is then on disk. */
    private async syncWal(): Promise<void> {
        this.walFile ??= `${this.db.stmt("SELECT file FROM pragma_database_list WHERE name = 'main'").pluck().get() as string}-wal`;
        const handle = await fs.promises.open(this.walFile, 'r');
        try {
            await handle.datasync();
        } finally {
            await handle.close();
        }
    }

    /** How many files the spool holds (committed, not yet known to be on disk by themselves). */
    spoolSize(): number {
        return this.db.stmt('SELECT COUNT(*) FROM intake_spool').pluck().get() as number;
    }

    /**
     * Makes the spooled files durable (one syncfs for all of them, on a child process), then
     * deletes the spool rows that sync covered: those committed before it started. Returns how
     * many; rejects (leaving the rows, which still hold the bytes) when the sync fails.
     */
    async syncSpool(): Promise<number> {
        const upTo = this.db.stmt('SELECT MAX(id) FROM intake_spool').pluck().get() as number | null;
        if (upTo === null) return 0;
        const hashes = this.db.stmt('SELECT hash FROM intake_spool WHERE id <= ?').pluck().all(upTo) as string[];
        await this.files.syncFileSystem(hashes);
        return this.db.write(tx => tx.stmt('DELETE FROM intake_spool WHERE id <= ?').run(upTo).changes);
    }

    /**
     * At start-up, before anything reads a message: writes each spooled file back from its bytes,
     * with fsync (an outage may have cut it short), then empties the spool. A spooled file that
     * no blob row names any more needs nothing. Returns how many files were written back.
     */
    recoverSpool(): number {
        let restored = 0;
        // One row at a time: the spool may hold a few hundred messages.
        for (const row of this.db.stmt('SELECT s.hash, s.raw FROM intake_spool s JOIN blobs b ON b.hash = s.hash').iterate() as IterableIterator<{ hash: string; raw: Buffer }>) {
            this.files.restoreSync(row.hash, row.raw);
            restored++;
        }
        this.db.write(tx => tx.stmt('DELETE FROM intake_spool').run());
        return restored;
    }

    private entries(rows: QueueDbRow[]): QueueEntry[] {
        const recipients = this.db.stmt('SELECT address, state, last_error AS lastError FROM queue_recipients WHERE queue_id = ? ORDER BY rowid');
        return rows.map(row => ({
            id: row.id,
            userId: row.user_id,
            user: row.user_name,
            account: row.account,
            mailFrom: row.mail_from,
            blobHash: row.blob_hash,
            size: row.size,
            messageId: row.message_id,
            subject: row.subject,
            state: row.state,
            attempts: row.attempts,
            nextAttemptAt: row.next_attempt_at,
            lastError: row.last_error,
            createdAt: row.created_at,
            updatedAt: row.updated_at,
            recipients: recipients.all(row.id) as QueueEntry['recipients']
        }));
    }

    list(options: { states?: QueueState[] } = {}): QueueEntry[] {
        const rows = this.db.stmt(`${QUEUE_SELECT} ORDER BY q.id`).all() as QueueDbRow[];
        return this.entries(rows.filter(row => !options.states || options.states.includes(row.state)));
    }

    /** The entry, or null when there is none. */
    get(id: number): QueueEntry | null {
        const row = this.db.stmt(`${QUEUE_SELECT} WHERE q.id = ?`).get(id) as QueueDbRow | undefined;
        return row ? this.entries([row])[0] : null;
    }

    /** Entries the uplink should try now: queued, or deferred and due. Oldest first. */
    due(at: number = Date.now()): QueueEntry[] {
        const rows = this.db.stmt(`${QUEUE_SELECT} WHERE q.state = 'queued' OR (q.state = 'deferred' AND COALESCE(q.next_attempt_at, 0) <= ?) ORDER BY q.id`).all(at) as QueueDbRow[];
        return this.entries(rows);
    }

    counts(): Record<QueueState, number> {
        const counts: Record<QueueState, number> = { queued: 0, sending: 0, sent: 0, deferred: 0, failed: 0 };
        for (const row of this.db.stmt('SELECT state, COUNT(*) AS n FROM queue GROUP BY state').all() as { state: QueueState; n: number }[]) {
            counts[row.state] = row.n;
        }
        return counts;
    }

    /** The entry's message as a stream (SMTP DATA); a missing file errors on the stream. */
    messageStream(entry: QueueEntry): Readable {
        return this.files.createReadStream(entry.blobHash);
    }

    /** The header block of the entry's message, without its body (a bounce quotes it). */
    readHeaderBlock(entry: QueueEntry): Buffer {
        return this.files.readHeaderBlock(entry.blobHash);
    }

    /**
     * Makes entries due now. With null, every deferred entry: a failed one was given up on and
     * bounced, so it comes back only when asked for by its id (deferred or failed). Its failed
     * recipients are offered again, but keep their bounced_at: they never bounce twice.
     */
    retry(id: number | null): number {
        return this.db.write(tx => {
            const at = Date.now();
            if (id === null) {
                return tx.stmt("UPDATE queue SET state = 'queued', next_attempt_at = NULL, updated_at = ? WHERE state = 'deferred'").run(at).changes;
            }
            const info = tx.stmt("UPDATE queue SET state = 'queued', next_attempt_at = NULL, updated_at = ? WHERE state IN ('deferred', 'failed') AND id = ?").run(at, id);
            if (info.changes) {
                tx.stmt("UPDATE queue_recipients SET state = 'pending', last_error = NULL WHERE state = 'failed' AND queue_id = ?").run(id);
            }
            return info.changes;
        });
    }

    /**
     * Claims the bounce of recipients given up on: returns those not bounced before (and marks
     * them), so a notice goes out at most once per recipient, however often the entry is retried.
     */
    claimBounces(id: number, addresses: string[]): string[] {
        return this.db.write(tx => {
            const claim = tx.stmt('UPDATE queue_recipients SET bounced_at = ? WHERE queue_id = ? AND address = ? AND bounced_at IS NULL');
            const at = Date.now();
            return addresses.filter(address => claim.run(at, id, address).changes > 0);
        });
    }

    /** Removes an entry (any state but sending), releasing its message file. Throws NONEXISTENT, BUSY. */
    drop(id: number): void {
        this.db.write(tx => {
            const row = tx.stmt('SELECT state, blob_hash FROM queue WHERE id = ?').get(id) as { state: QueueState; blob_hash: string } | undefined;
            if (!row) throw new StoreError('NONEXISTENT', `no queue entry ${id}`);
            if (row.state === 'sending') throw new StoreError('BUSY', `queue entry ${id} is being sent`);
            tx.stmt('DELETE FROM queue WHERE id = ?').run(id);
            releaseBlobs(tx, [row.blob_hash]);
        });
    }

    /**
     * Marks an entry as being sent (committed before the first byte goes out), so a crash is
     * seen at start-up: see recoverInterruptedSends.
     */
    markSending(id: number): void {
        this.db.write(tx => tx.stmt("UPDATE queue SET state = 'sending', attempts = attempts + 1, updated_at = ? WHERE id = ?").run(Date.now(), id));
    }

    /** Records the provider's answer for each recipient and the entry's new state, in one commit. */
    recordSendResult(id: number, outcome: SendOutcome): void {
        this.db.write(tx => {
            for (const address of outcome.sent) {
                tx.stmt("UPDATE queue_recipients SET state = 'sent', last_error = NULL WHERE queue_id = ? AND address = ?").run(id, address);
            }
            for (const failure of outcome.failed) {
                tx.stmt("UPDATE queue_recipients SET state = 'failed', last_error = ? WHERE queue_id = ? AND address = ?").run(failure.error, id, failure.address);
            }
            const lastError = outcome.deferredError ?? outcome.failed[0]?.error ?? null;
            tx.stmt('UPDATE queue SET state = ?, attempts = attempts + ?, next_attempt_at = ?, last_error = COALESCE(?, last_error), updated_at = ? WHERE id = ?').run(
                outcome.state,
                outcome.countAttempt ? 1 : 0,
                outcome.nextAttemptAt,
                lastError,
                Date.now(),
                id
            );
        });
    }

    /**
     * At start-up: an entry left in 'sending' was interrupted (crash, power cut). Its recipients
     * that were not recorded as sent are tried again. If the provider had accepted the message
     * and its reply was lost with us, this is the one case where it goes out twice.
     */
    recoverInterruptedSends(): number {
        return this.db.write(
            tx => tx.stmt("UPDATE queue SET state = 'deferred', next_attempt_at = NULL, last_error = 'interrupted while sending', updated_at = ? WHERE state = 'sending'").run(Date.now()).changes
        );
    }

    /** Forgets sent entries older than `maxAgeMs` and releases their message files. */
    pruneSent(maxAgeMs: number): number {
        return this.db.write(tx => {
            const rows = tx.stmt("SELECT id, blob_hash FROM queue WHERE state = 'sent' AND updated_at < ?").all(Date.now() - maxAgeMs) as { id: number; blob_hash: string }[];
            for (const row of rows) {
                tx.stmt('DELETE FROM queue WHERE id = ?').run(row.id);
            }
            releaseBlobs(
                tx,
                rows.map(row => row.blob_hash)
            );
            return rows.length;
        });
    }
}
