/**
 * The notifier imap-core calls to keep sessions in step. Change entries live in the store's
 * journal; this object only routes "something changed for user N" (the store's `change` event)
 * to that user's sessions, which then read the journal with getUpdates.
 *
 * One process owns the store, so an in-process map of listeners is enough.
 */
import type { Store, JournalEntry } from '../store';
import type { Logger } from '../log';

type Listener = (payload?: unknown) => void;

export class Notifier {
    private readonly listeners = new Map<number, Set<Listener>>();
    private readonly onChange: (userId: number) => void;

    constructor(
        private readonly store: Store,
        private readonly logger?: Logger
    ) {
        this.onChange = userId => this.deliver(userId);
        store.on('change', this.onChange);
    }

    addListener(session: { user: { id: number } }, listener: Listener): void {
        const userId = session.user.id;
        let set = this.listeners.get(userId);
        if (!set) {
            set = new Set();
            this.listeners.set(userId, set);
        }
        set.add(listener);
    }

    removeListener(session: { user: { id: number } }, listener: Listener): void {
        const set = this.listeners.get(session.user.id);
        if (set) {
            set.delete(listener);
            if (!set.size) this.listeners.delete(session.user.id);
        }
    }

    /**
     * imap-core (1.50+) queues an entry only once per `_id` and drops entries without one, so each
     * carries its journal row id.
     */
    getUpdates(mailboxId: number, sinceModseq: number, callback: (err: Error | null, entries?: (JournalEntry & { _id: string })[]) => void): void {
        let entries: (JournalEntry & { _id: string })[];
        try {
            entries = this.store.getUpdates(Number(mailboxId), Number(sinceModseq) || 0).map(entry => ({ ...entry, _id: `${mailboxId}:${entry.id}` }));
        } catch (err) {
            return callback(err as Error);
        }
        callback(null, entries);
    }

    /**
     * A committed change: every session of the user reads the journal now, before the code that
     * made the change writes its own response. imap-core keeps only the newest queued FETCH per
     * UID, and that rule needs the acting session's own entry (marked `ignore`) in the queue. Were
     * it queued later (on a later tick), a UID STORE, or a command pipelined behind a STORE, would
     * flush another session's older entry after its own newer FETCH: stale flags and a MODSEQ going
     * backwards for the client (RFC 7162 3.1.2: a message's mod-sequence only ever increases).
     * A listener that throws is logged and skipped: the change is committed and the other sessions
     * must still hear of it.
     */
    private deliver(userId: number): void {
        const set = this.listeners.get(userId);
        if (!set) return;
        for (const listener of [...set]) {
            try {
                listener();
            } catch (err) {
                this.logger?.error({ err }, 'IMAP change listener failed');
            }
        }
    }

    /**
     * Tells the user's sessions to look for changes, on a later tick. A payload is only for
     * session-level commands ({command:'DROP', mailbox} or {command:'LOGOUT'}), whose BYE must
     * follow the tagged reply of the command that caused it.
     */
    fire(userId: number, payload?: { command: 'DROP'; mailbox: number } | { command: 'LOGOUT'; reason?: string }): void {
        const set = this.listeners.get(userId);
        if (!set) return;
        for (const listener of [...set]) {
            setImmediate(() => listener(payload));
        }
    }

    sessionCount(): number {
        let count = 0;
        for (const set of this.listeners.values()) count += set.size;
        return count;
    }

    close(): void {
        this.store.off('change', this.onChange);
        this.listeners.clear();
    }
}
