/**
 * Login penalty in the manner of Dovecot's auth penalty, shared by IMAP and SMTP.
 *
 * - Failures are counted per (address, user) and per address, over a sliding window.
 * - A failure is answered after a delay that grows with those counts (up to `maxDelayMs`); a
 *   success is never delayed, and an address is never locked out, so an honest user behind the
 *   same NAT or on a shared PC logs in at once.
 * - The same wrong password again (a mail client retrying a stale saved password) counts once:
 *   a keyed hash of it is kept, never the password.
 * - A success clears that (address, user) pair only, never another user's count.
 * - Guesses against one user from one address are capped: once `maxGuesses` distinct wrong
 *   passwords fell in the window, further attempts for that pair are refused without checking
 *   the password, until the oldest failure leaves the window. However logins are interleaved,
 *   fewer than `maxGuesses + 1` passwords are ever tried per pair per window.
 * - Memory is bounded: entries expire with the window and the tables are capped. Past the cap
 *   of users per address, the rest share one slot: during a spray of that many names from one
 *   address, an untracked user there may be refused with them until the window passes.
 *
 * Pure policy: the caller measures nothing and waits `delayMs` itself; the clock is injectable.
 */
import crypto from 'node:crypto';

export interface AuthPenaltyOptions {
    /** Sliding window for counting failures (ms). */
    windowMs?: number;
    /** Distinct wrong passwords per (address, user) per window before that pair is refused. */
    maxGuesses?: number;
    /** Delay after the first failure; doubles with each further one. */
    baseDelayMs?: number;
    /** Longest delay before a failure reply. */
    maxDelayMs?: number;
    /** Addresses tracked at once; the least recently failed is dropped past it. */
    maxAddresses?: number;
    /** Users tracked per address. */
    maxUsersPerAddress?: number;
    now?: () => number;
}

/** What to do with an attempt before its password is checked. */
export interface AttemptVerdict {
    /** Refuse without checking the password: this pair has used up its guesses. */
    refuse: boolean;
    /** When refused: wait this long before the failure reply. */
    delayMs: number;
}

export interface FailureVerdict {
    /** Wait this long before the failure reply. */
    delayMs: number;
    /** Distinct failures counted for this (address, user) in the window. */
    failures: number;
    /** False when this password had already failed for this pair in the window (counted once). */
    counted: boolean;
}

/** The slot for users past the per-address cap (not a valid user name: it has a NUL). */
const OVERFLOW = '\0overflow';

interface Failure {
    at: number;
    /** Keyed hash of (user, password). */
    hash: string;
}

interface AddressEntry {
    /** user key -> its failures in the window, oldest first. */
    users: Map<string, Failure[]>;
}

export class AuthPenalty {
    private readonly windowMs: number;
    private readonly maxGuesses: number;
    private readonly baseDelayMs: number;
    private readonly maxDelayMs: number;
    private readonly maxAddresses: number;
    private readonly maxUsersPerAddress: number;
    private readonly now: () => number;
    /** Random per process: the hashes mean nothing outside it and cannot be looked up. */
    private readonly key = crypto.randomBytes(32);
    /** Map order is least recently failed first: the eviction order. */
    private readonly addresses = new Map<string, AddressEntry>();

    constructor(options: AuthPenaltyOptions = {}) {
        this.windowMs = options.windowMs ?? 5 * 60 * 1000;
        this.maxGuesses = options.maxGuesses ?? 9;
        this.baseDelayMs = options.baseDelayMs ?? 500;
        this.maxDelayMs = options.maxDelayMs ?? 15_000;
        this.maxAddresses = options.maxAddresses ?? 10_000;
        this.maxUsersPerAddress = options.maxUsersPerAddress ?? 64;
        this.now = options.now ?? Date.now;
    }

    /** Call before checking a password. `user` is the account's canonical name (or the name given, lower-cased). */
    check(address: string, user: string): AttemptVerdict {
        const entry = this.entry(address);
        const failures = (entry && entry.users.get(this.slot(entry, user))) ?? [];
        if (failures.length < this.maxGuesses) return { refuse: false, delayMs: 0 };
        return { refuse: true, delayMs: this.delayFor(failures.length, this.addressFailures(entry!)) };
    }

    /** Records a wrong password (or an unknown user) and says how long to hold the reply. */
    fail(address: string, user: string, password: string): FailureVerdict {
        const at = this.now();
        const hash = crypto.createHmac('sha256', this.key).update(user).update('\0').update(password).digest('base64url').slice(0, 22);
        let entry = this.entry(address);
        if (!entry) entry = { users: new Map() };
        // Re-insert: most recently failed last, so eviction drops the stalest address.
        this.addresses.delete(address);
        this.addresses.set(address, entry);
        const slot = this.slot(entry, user);
        let failures = entry.users.get(slot);
        if (!failures) {
            failures = [];
            entry.users.set(slot, failures);
        }
        const counted = !failures.some(failure => failure.hash === hash);
        if (counted && failures.length < this.maxGuesses) failures.push({ at, hash });
        this.evict();
        return { delayMs: this.delayFor(failures.length, this.addressFailures(entry)), failures: failures.length, counted };
    }

    /** A correct password: clears this pair's count, and nobody else's. */
    succeed(address: string, user: string): void {
        const entry = this.addresses.get(address);
        if (!entry) return;
        entry.users.delete(user);
        if (entry.users.size === 0) this.addresses.delete(address);
    }

    /** Addresses currently tracked (for tests and metrics). */
    get size(): number {
        return this.addresses.size;
    }

    /**
     * Where a user's failures are counted. Past `maxUsersPerAddress` users, further ones share
     * one overflow slot rather than evicting a tracked user: evicting would let a guesser wipe
     * a victim's count by failing as enough other names.
     */
    private slot(entry: AddressEntry, user: string): string {
        if (entry.users.has(user)) return user;
        const tracked = entry.users.size - (entry.users.has(OVERFLOW) ? 1 : 0);
        return tracked >= this.maxUsersPerAddress ? OVERFLOW : user;
    }

    private delayFor(pairFailures: number, addressFailures: number): number {
        const n = Math.max(pairFailures, addressFailures);
        if (n <= 0) return 0;
        return Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** Math.min(n - 1, 30));
    }

    private addressFailures(entry: AddressEntry): number {
        let total = 0;
        for (const failures of entry.users.values()) total += failures.length;
        return total;
    }

    /** The address's entry with failures older than the window dropped; undefined when none are left. */
    private entry(address: string): AddressEntry | undefined {
        const entry = this.addresses.get(address);
        if (!entry) return undefined;
        const oldest = this.now() - this.windowMs;
        for (const [user, failures] of entry.users) {
            while (failures.length && failures[0].at <= oldest) failures.shift();
            if (!failures.length) entry.users.delete(user);
        }
        if (entry.users.size === 0) {
            this.addresses.delete(address);
            return undefined;
        }
        return entry;
    }

    private evict(): void {
        if (this.addresses.size <= this.maxAddresses) return;
        // Expired entries first (cheap: the stalest are at the front), then the stalest live ones.
        for (const address of this.addresses.keys()) {
            if (this.addresses.size <= this.maxAddresses) break;
            if (!this.entry(address)) continue;
            this.addresses.delete(address);
        }
    }
}
