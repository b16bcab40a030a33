/**
 * Entry states: the queue's side of sending. The transport (uplink/send.ts) asks what is due,
 * says when it starts on an entry and reports what the provider answered; this module turns
 * that into the entry's new state with the policy in retry-policy.ts, commits it, and returns
 * the recipients given up on to their sender (bounce.ts).
 *
 * States: queued → sending (committed before the first byte leaves) → sent | deferred | failed.
 * A deferred entry is due again at its next_attempt_at; `mailmule queue retry` makes one due
 * now. An entry left in `sending` by a crash is deferred at the next start
 * (Store.recoverInterruptedSends).
 */
import type { Readable } from 'node:stream';
import type { Logger } from '../log';
import type { QueueEntry, Store } from '../store';
import { buildAccountNotice } from './account-notice';
import { bounceToSender, bouncedRecipients } from './bounce';
import {
    attemptOutcome,
    connectionFailureOutcome,
    connectionFailureText,
    expiryOutcome,
    isExpired,
    type AttemptOutcome,
    type ConnectionFailure,
    type ProviderAnswer,
    type RecipientFailure
} from './retry-policy';

export interface QueueDeliveryOptions {
    store: Store;
    logger: Logger;
    /** The gateway's name, for the bounces' Reporting-MTA and From. */
    reportingMta: string;
    /** queue.maxAge: older entries are returned to their sender unsent. */
    maxAgeMs: number;
}

export class QueueDelivery {
    constructor(private readonly options: QueueDeliveryOptions) {}

    /** Entries to try now (queued, or deferred and due), oldest first. */
    due(now: number = Date.now()): QueueEntry[] {
        return this.options.store.queue.due(now);
    }

    /**
     * Returns the entries that outlived queue.maxAge to their senders (failed, bounced) and
     * the others, which are worth an attempt; `notes` says what expired, for the run's report.
     */
    async expire(entries: QueueEntry[], now: number = Date.now()): Promise<{ live: QueueEntry[]; notes: string[] }> {
        const live: QueueEntry[] = [];
        const notes: string[] = [];
        for (const entry of entries) {
            if (isExpired(entry, this.options.maxAgeMs, now)) {
                notes.push(...(await this.commit(entry, expiryOutcome(entry, this.options.maxAgeMs))).notes);
            } else {
                live.push(entry);
            }
        }
        return { live, notes };
    }

    /** The entry's message as a stream (SMTP DATA). */
    messageStream(entry: QueueEntry): Readable {
        return this.options.store.queue.messageStream(entry);
    }

    /** Call before the entry's first byte leaves: a crash from here on is seen at the next start. */
    starting(entry: QueueEntry): void {
        this.options.store.queue.markSending(entry.id);
    }

    /**
     * Records the provider's answer to an attempt at `pending` and bounces what failed for good.
     * `countAttempt`: the attempt was not marked by starting() (relay mode: it was made elsewhere,
     * and is counted in the same commit as its answer, so applying the answer twice is seen).
     */
    async answered(entry: QueueEntry, pending: string[], answer: ProviderAnswer, now: number = Date.now(), options: { countAttempt?: boolean } = {}): Promise<AttemptOutcome> {
        const outcome = await this.commit(entry, { ...attemptOutcome(entry, pending, answer, now), countAttempt: options.countAttempt });
        if (answer.kind === 'answered') {
            const deferred = pending.length - outcome.sent.length - outcome.failed.length;
            this.options.logger.info({ queueId: entry.id, account: entry.account, sent: outcome.sent.length, failed: outcome.failed.length, deferred }, 'message sent upstream');
        }
        return outcome;
    }

    /**
     * The provider could not be reached or refused the login: every entry that was to be
     * offered records the attempt (attempts, the reason in words, the next attempt). A refused
     * login is an account problem: kept for `mailmule status`, and its owner is told once.
     */
    async connectionFailed(entries: QueueEntry[], failure: ConnectionFailure, endpoint: string, now: number = Date.now()): Promise<void> {
        const error = connectionFailureText(failure, endpoint);
        for (const entry of entries) {
            this.record(entry, { ...connectionFailureOutcome(entry, error, now), countAttempt: true });
        }
        if (failure.kind === 'authentication' && entries.length) await this.accountRefused(entries, failure.text, now);
    }

    /** A login succeeded: whatever account problem there was is over. */
    connected(account: string): void {
        if (this.options.store.accountProblems.clear(account)) {
            this.options.logger.info({ account }, "the provider accepts the account's login again");
        }
    }

    private async accountRefused(entries: QueueEntry[], providerReply: string, now: number): Promise<void> {
        const { store, logger, reportingMta } = this.options;
        const account = entries[0].account;
        store.accountProblems.record(account, providerReply, now);
        if (!store.accountProblems.claimNotice(account, now)) return;
        const waiting = store.queue.list({ states: ['queued', 'deferred'] }).filter(entry => entry.account === account).length;
        try {
            const raw = await buildAccountNotice({ to: account, account, reportingMta, providerReply, waiting });
            for (const userId of new Set(entries.map(entry => entry.userId))) {
                store.messages.deliverToInbox(userId, raw, store.messages.analyse(raw));
            }
            logger.warn({ account, waiting }, 'the provider refused the login; the owner was told');
        } catch (err) {
            logger.error({ account, err: { message: (err as Error).message } }, 'could not deliver the account notice');
        }
    }

    private async commit(entry: QueueEntry, outcome: AttemptOutcome & { countAttempt?: boolean }): Promise<AttemptOutcome> {
        this.record(entry, outcome);
        if (outcome.failed.length) {
            // Claimed before filing: a recipient bounced once (before a retry by id) is not bounced again.
            const fresh = new Set(
                this.options.store.queue.claimBounces(
                    entry.id,
                    outcome.failed.map(failure => failure.address)
                )
            );
            const toBounce = outcome.failed.filter(failure => fresh.has(failure.address));
            if (toBounce.length) await this.bounce(entry, toBounce);
        }
        return outcome;
    }

    private record(entry: QueueEntry, outcome: AttemptOutcome & { countAttempt?: boolean }): void {
        this.options.store.queue.recordSendResult(entry.id, {
            sent: outcome.sent,
            failed: outcome.failed.map(({ address, error }) => ({ address, error })),
            deferredError: outcome.deferredError,
            state: outcome.state,
            nextAttemptAt: outcome.nextAttemptAt,
            countAttempt: outcome.countAttempt
        });
    }

    /** A bounce that cannot be filed is logged: the entry's state is already committed and stays right. */
    private async bounce(entry: QueueEntry, failures: RecipientFailure[]): Promise<void> {
        try {
            await bounceToSender(this.options.store, entry, bouncedRecipients(entry, failures), { reportingMta: this.options.reportingMta });
        } catch (err) {
            this.options.logger.error({ queueId: entry.id, err: { message: (err as Error).message } }, 'could not deliver the bounce');
        }
    }
}
