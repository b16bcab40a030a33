/**
 * Web sessions, kept in memory: a session is a random id (the cookie) mapped to the user it
 * logged in as and its CSRF token. A restart logs everyone out, which is acceptable for pages
 * used now and then, and nothing about a session ever reaches the disk.
 *
 * Bounded: sessions expire after `idleMs` without a request and `maxAgeMs` in all, and at most
 * `maxSessions` exist (past it the least recently used goes). A password change ends every other
 * session of that user.
 */
import crypto from 'node:crypto';

export interface Session {
    id: string;
    userId: number;
    userName: string;
    /** Sent back in every form that changes something; compared in constant time. */
    csrf: string;
    createdAt: number;
    seenAt: number;
}

export interface SessionOptions {
    idleMs?: number;
    maxAgeMs?: number;
    maxSessions?: number;
    now?: () => number;
}

function token(): string {
    return crypto.randomBytes(32).toString('base64url');
}

export function sameToken(a: string, b: string): boolean {
    const left = Buffer.from(a);
    const right = Buffer.from(b);
    return left.length === right.length && crypto.timingSafeEqual(left, right);
}

export class Sessions {
    private readonly idleMs: number;
    private readonly maxAgeMs: number;
    private readonly maxSessions: number;
    private readonly now: () => number;
    /** Insertion order is least recently used first. */
    private readonly byId = new Map<string, Session>();

    constructor(options: SessionOptions = {}) {
        this.idleMs = options.idleMs ?? 30 * 60 * 1000;
        this.maxAgeMs = options.maxAgeMs ?? 12 * 3600 * 1000;
        this.maxSessions = options.maxSessions ?? 1000;
        this.now = options.now ?? Date.now;
    }

    create(user: { id: number; name: string }): Session {
        const at = this.now();
        const session: Session = { id: token(), userId: user.id, userName: user.name, csrf: token(), createdAt: at, seenAt: at };
        this.byId.set(session.id, session);
        while (this.byId.size > this.maxSessions) this.byId.delete(this.byId.keys().next().value!);
        return session;
    }

    /** The live session for a cookie value, touched; null when unknown or expired. */
    get(id: string | undefined): Session | null {
        if (!id) return null;
        const session = this.byId.get(id);
        if (!session) return null;
        const at = this.now();
        if (at - session.seenAt > this.idleMs || at - session.createdAt > this.maxAgeMs) {
            this.byId.delete(id);
            return null;
        }
        session.seenAt = at;
        this.byId.delete(id);
        this.byId.set(id, session);
        return session;
    }

    end(id: string): void {
        this.byId.delete(id);
    }

    /** Ends every session of the user except `keep` (after a password change). */
    endOthers(userId: number, keep: string | null): void {
        for (const [id, session] of this.byId) {
            if (session.userId === userId && id !== keep) this.byId.delete(id);
        }
    }

    get size(): number {
        return this.byId.size;
    }
}
