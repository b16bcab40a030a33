/**
 * The queue's policy, as pure functions: when an entry is tried again (backoff), when it is
 * given up on (expiry), and what one attempt's answer from the provider makes of each
 * recipient (sent, deferred, failed) and of the entry. Nothing here touches the store or the
 * network: `delivery.ts` commits what these functions decide, the transport (uplink/send.ts)
 * only says what the provider answered.
 *
 * The rule throughout: a 5xx reply is permanent (the recipient fails and is bounced), anything
 * else (a 4xx, no reply at all) is temporary (the recipient stays pending and the entry is
 * deferred with backoff), until the entry outlives queue.maxAge.
 */
import type { QueueEntry } from '../store';

const MINUTE_MS = 60 * 1000;
const DAY_MS = 24 * 60 * MINUTE_MS;

/** First retry after 15 minutes, doubling per attempt, never more than a day apart. */
export function backoffMs(attempts: number): number {
    return Math.min(15 * MINUTE_MS * 2 ** Math.max(attempts - 1, 0), DAY_MS);
}

/** When to try again an entry that has had `attempts` attempts before the one just made. */
export function nextAttemptAt(attempts: number, now: number): number {
    return now + backoffMs(attempts + 1);
}

/** Whether an entry has outlived the queue's lifetime and must go back to its sender unsent. */
export function isExpired(entry: Pick<QueueEntry, 'createdAt'>, maxAgeMs: number, now: number): boolean {
    return now - entry.createdAt > maxAgeMs;
}

/** Recipients still to be tried (neither sent nor failed). */
export function pendingRecipients(entry: Pick<QueueEntry, 'recipients'>): string[] {
    return entry.recipients.filter(r => r.state === 'pending').map(r => r.address);
}

/** One recipient the provider refused in the RCPT phase, as the transport heard it. */
export interface RecipientRefusal {
    recipient: string;
    /** The SMTP reply code (0 when the transport had none). */
    code: number;
    text: string;
}

/**
 * What the provider made of one message, in transport-neutral terms:
 * - answered: the transaction completed; some recipients may have been refused at RCPT;
 * - refused: the whole transaction was refused with a reply (MAIL FROM, all RCPTs, DATA);
 * - unanswered: no reply (the connection failed or closed, or the message could not be read).
 */
export type ProviderAnswer = { kind: 'answered'; accepted: string[]; refused: RecipientRefusal[] } | { kind: 'refused'; code: number; text: string } | { kind: 'unanswered'; text: string };

/** What kind of failure kept every message from being offered: the words an admin reads come from it. */
export type ConnectionFailureKind = 'authentication' | 'dns' | 'tls' | 'network';

/** Why no message could be offered at all: the provider could not be reached or refused the login. */
export interface ConnectionFailure {
    kind: ConnectionFailureKind;
    /** What the transport said (the provider's reply, or the system's error). */
    text: string;
}

/**
 * Sorts a transport error into a ConnectionFailure by its code (nodemailer's EAUTH, ETLS;
 * Node's ENOTFOUND and friends), so the entry says in words what went wrong.
 */
export function classifyConnectionError(err: { code?: string; message?: string }, text: string): ConnectionFailure {
    const code = err.code ?? '';
    if (code === 'EAUTH' || code === 'ENOAUTH') return { kind: 'authentication', text };
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EDNS') return { kind: 'dns', text };
    if (code === 'ETLS' || code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL') || /certificate|self[- ]signed|\bTLS\b|SSL/i.test(err.message ?? '')) {
        return { kind: 'tls', text };
    }
    return { kind: 'network', text };
}

/** The last error an entry shows after a failed connection: what happened, then the detail. */
export function connectionFailureText(failure: ConnectionFailure, endpoint: string): string {
    const what: Record<ConnectionFailureKind, string> = {
        authentication: `the provider (${endpoint}) refused the account's login; check its credentials`,
        dns: `the provider's name (${endpoint}) could not be looked up (DNS)`,
        tls: `no secure (TLS) connection to the provider (${endpoint}) could be made`,
        network: `the provider (${endpoint}) could not be reached`
    };
    return `${what[failure.kind]}: ${failure.text}`;
}

/** A recipient given up on, with the reply that decided it (the bounce's status comes from both). */
export interface RecipientFailure {
    address: string;
    error: string;
    code: number;
}

/** An entry's state after an attempt: what the store commits, what is bounced, what the run reports. */
export interface AttemptOutcome {
    sent: string[];
    failed: RecipientFailure[];
    /** The temporary error the entry waits on (null when nothing is deferred by a reply). */
    deferredError: string | null;
    state: 'sent' | 'deferred' | 'failed';
    nextAttemptAt: number | null;
    /** One line per problem, for the run's report. */
    notes: string[];
}

/** Reply codes of 500 and above are permanent (RFC 5321 4.2.1). */
export function isPermanent(code: number): boolean {
    return code >= 500;
}

/** Every pending recipient failed: the entry counts as sent when an earlier attempt delivered to someone. */
function giveUp(entry: Pick<QueueEntry, 'recipients'>, failed: RecipientFailure[], notes: string[]): AttemptOutcome {
    const anySent = entry.recipients.some(r => r.state === 'sent');
    return { sent: [], failed, deferredError: null, state: anySent ? 'sent' : 'failed', nextAttemptAt: null, notes };
}

function defer(entry: Pick<QueueEntry, 'attempts'>, error: string, now: number, notes: string[]): AttemptOutcome {
    return { sent: [], failed: [], deferredError: error, state: 'deferred', nextAttemptAt: nextAttemptAt(entry.attempts, now), notes };
}

/** An entry past queue.maxAge: its pending recipients fail with 4.4.7 (RFC 3463) and are bounced. */
export function expiryOutcome(entry: Pick<QueueEntry, 'id' | 'recipients' | 'lastError'>, maxAgeMs: number): AttemptOutcome {
    const error = `4.4.7 not delivered within the queue lifetime${entry.lastError ? ` (last error: ${entry.lastError})` : ''}`;
    const failed = pendingRecipients(entry).map(address => ({ address, error, code: 447 }));
    return giveUp(entry, failed, [`message ${entry.id} expired after ${Math.round(maxAgeMs / DAY_MS)} days and was returned to the sender`]);
}

/**
 * The sent/deferred/failed decision for one attempt at `pending` (the recipients offered).
 * `entry` is the entry as it was before the attempt (its attempts count excludes this one).
 */
export function attemptOutcome(entry: Pick<QueueEntry, 'id' | 'attempts' | 'recipients'>, pending: string[], answer: ProviderAnswer, now: number): AttemptOutcome {
    if (answer.kind === 'refused' && isPermanent(answer.code)) {
        return giveUp(
            entry,
            pending.map(address => ({ address, error: answer.text, code: answer.code })),
            [`message ${entry.id}: ${answer.text}`]
        );
    }
    if (answer.kind !== 'answered') return defer(entry, answer.text, now, [`message ${entry.id} deferred: ${answer.text}`]);

    const accepted = new Set(answer.accepted.map(address => address.toLowerCase()));
    const sent = pending.filter(address => accepted.has(address.toLowerCase()));
    const failed: RecipientFailure[] = [];
    const deferredErrors: string[] = [];
    for (const refusal of answer.refused) {
        if (isPermanent(refusal.code)) failed.push({ address: refusal.recipient, error: refusal.text, code: refusal.code });
        else deferredErrors.push(refusal.text);
    }
    // Recipients neither accepted nor refused permanently are still pending.
    const stillPending = pending.length - sent.length - failed.length;
    const state = stillPending > 0 ? 'deferred' : sent.length || entry.recipients.some(r => r.state === 'sent') ? 'sent' : 'failed';
    return {
        sent,
        failed,
        deferredError: deferredErrors[0] ?? null,
        state,
        nextAttemptAt: state === 'deferred' ? nextAttemptAt(entry.attempts, now) : null,
        notes: answer.refused.map(refusal => `message ${entry.id}: <${refusal.recipient}> ${isPermanent(refusal.code) ? 'failed' : 'deferred'}: ${refusal.text}`)
    };
}

/**
 * An entry that could not be offered because the connection failed. It counts as an attempt
 * like any other, so the admin sees attempts, the reason in words and when it is tried again:
 * deferred with the same backoff as a 4xx (a refused login does not clear by itself either).
 */
export function connectionFailureOutcome(entry: Pick<QueueEntry, 'attempts'>, error: string, now: number): AttemptOutcome {
    return defer(entry, error, now, []);
}
