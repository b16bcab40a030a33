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

/** The part of imap-core's session getUpdates looks at. */
interface RecentSession {
    id: string;
    selected: false | { mailbox: number | string; readOnly: boolean };
}

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
    getUpdates(mailboxId: number, sinceModseq: number, callback: (err: Error | null, entries?: (JournalEntry & { _id: string; recent?: boolean })[]) => void, session?: RecentSession): void {
        let entries: (JournalEntry & { _id: string; recent?: boolean })[];
        try {
            entries = this.store.messages.journal(Number(mailboxId), Number(sinceModseq) || 0).map(entry => ({ ...entry, _id: `${mailboxId}:${entry.id}` }));
            this.markRecent(Number(mailboxId), entries, session);
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
     * A session that cannot take more (an IDLE client not reading, or 1,000 entries queued) does
     * not read now: imap-core (patch 135) reads what it skipped before it next sends notifications.
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
     * RFC 3501 2.3.2: a new message is \Recent in exactly one session. The first session with the
     * mailbox selected to hear of it takes it (imap-core, patch 033, passes the session and shows
     * `recent` entries as \Recent); a read-only session only looks. The acting session's own
     * additions (ignored here) are taken when it announces them.
     */
    private markRecent(mailboxId: number, entries: { command: string; uid: number; ignore?: string; recent?: boolean }[], session?: RecentSession): void {
        const selected = session?.selected;
        if (!selected || Number(selected.mailbox) !== mailboxId) return;
        const added = entries.filter(entry => entry.command === 'EXISTS' && !entry.ignore);
        if (!added.length) return;
        const recent = new Set(
            this.store.mailboxes.takeRecent(
                mailboxId,
                added.map(entry => entry.uid),
                { readOnly: selected.readOnly }
            )
        );
        for (const entry of added) {
            if (recent.has(entry.uid)) entry.recent = true;
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
