/**
 * What every step of a run is handed: the run's context (store, queue, budget, logger, the
 * provider time-outs), one account's live progress, and a folder's place in a receive pass.
 */
import type { QueueDelivery } from '../queue';
import type { Store } from '../store';
import type { Logger } from '../log';
import type { ResolvedUser } from '../config';
import type { TokenCache } from './oauth2';
import type { RunBudget } from './budget';

/**
 * What the send step uses of the queue: QueueDelivery in direct mode; on a relay (src/relay), a
 * recorder of the provider's answers that the Pi's own QueueDelivery applies later.
 */
export type QueueSink = Pick<QueueDelivery, 'due' | 'expire' | 'connected' | 'connectionFailed' | 'starting' | 'answered' | 'messageStream'>;

/** What the uplink needs from the daemon (or from a standalone `mailmule sync`). */
export interface UplinkContext {
    store: Store;
    logger: Logger;
    users(): readonly ResolvedUser[];
    hostname(): string;
    localDomain(): string;
    /** The outbound queue: what is due, and where the transport reports what the provider answered. */
    queue: QueueSink;
    flagScanIntervalMs(): number;
    tokens: TokenCache;
    budget: RunBudget;
    timeouts: { connectMs: number; socketMs: number };
}

/** Live figures for one account during a run; `report` pushes them to whoever watches. */
export interface AccountProgress {
    account: string;
    user: string;
    messagesSent: number;
    messagesReceived: number;
    bytesSent: number;
    bytesReceived: number;
    errors: string[];
    /** What did not fit and waits for the next run. */
    waiting: string[];
    budgetStopped: boolean;
    /**
     * Messages this run left on the provider for good, in words: the store refuses them
     * (MessageTooComplexError), and a note in their folder stands in for each (too-complex.ts).
     * Not errors: nothing waits, and the next run does not try them again.
     */
    leftUpstream: string[];
    /** Pushes the figures to whoever watches. */
    report(): void;
    /** What the account is doing now, for people ("connecting to imap.example.com"); reports. */
    step(activity: string): void;
}

/** One upstream folder in a receive pass, and the local mailbox it lands in. */
export interface FolderPlan {
    userName: string;
    folder: string;
    localPath: string;
    mailboxId: number;
}
