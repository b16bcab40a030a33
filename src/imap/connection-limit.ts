/**
 * At most N logged-in sessions per (user, client address), like Dovecot's
 * mail_max_userip_connections (default 10). A misbehaving or hostile client cannot then hold
 * hundreds of sessions (each with its listeners and buffers) for one user, while other users
 * and the same user on other devices are unaffected.
 */
import type { Callback, ImapSession } from './context';
import type { Logger } from '../log';

type AuthHook<L> = (login: L, session: ImapSession, callback: Callback) => void;

export class ConnectionLimit {
    /** Session ids per "user\0address". */
    private readonly open = new Map<string, Set<string>>();
    /** Session id to its key, for release on close. */
    private readonly keyOf = new Map<string, string>();

    constructor(
        private readonly max: () => number,
        private readonly logger: Logger
    ) {}

    /** Sessions currently counted for a user from an address (tests and status). */
    count(username: string, address: string): number {
        return this.open.get(`${username}\0${address}`)?.size ?? 0;
    }

    /**
     * Wraps an onAuth hook: a successful login over the limit is answered NO instead, and the
     * session is counted until `release` is called for it.
     */
    wrap<L>(onAuth: AuthHook<L>): AuthHook<L> {
        return (login, session, callback) =>
            onAuth(login, session, (err, result, ...rest) => {
                const user = (result as { user?: { username?: string } } | undefined)?.user;
                if (err || !user?.username) return callback(err, result, ...rest);
                // The client may have gone while its password was checked: then nothing to count.
                const socket = (session as { socket?: { destroyed?: boolean } }).socket;
                if (socket?.destroyed) return callback(err, result, ...rest);
                const address = session.remoteAddress || 'unknown';
                const key = `${user.username}\0${address}`;
                const sessions = this.open.get(key) ?? new Set<string>();
                const max = this.max();
                if (sessions.size >= max) {
                    this.logger.info({ username: user.username, remoteAddress: address, max, protocol: 'imap' }, 'login refused: too many connections for this user from this address');
                    // LOGIN shows response, code and message; AUTHENTICATE shows the message.
                    return callback(
                        Object.assign(new Error('too many connections'), {
                            response: 'NO',
                            message: `[LIMIT] Too many connections for ${user.username} from your address (at most ${max}); close another session first`
                        })
                    );
                }
                sessions.add(session.id);
                this.open.set(key, sessions);
                this.keyOf.set(session.id, key);
                callback(err, result, ...rest);
            });
    }

    /** imap-core's onClose hook. */
    release(session: { id: string }): void {
        const key = this.keyOf.get(session.id);
        if (key === undefined) return;
        this.keyOf.delete(session.id);
        const sessions = this.open.get(key);
        sessions?.delete(session.id);
        if (sessions && sessions.size === 0) this.open.delete(key);
    }
}
