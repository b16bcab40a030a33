/**
 * Slows down password guessing per remote address: after `freeFailures` failures within
 * `windowMs`, each further attempt from that address is refused until the window has passed.
 * Other addresses are unaffected, so one noisy laptop cannot lock out the village.
 */
export interface FailureLimiterOptions {
    /** Failures allowed in a window before the address is refused. */
    freeFailures?: number;
    /** Length of the window in ms. */
    windowMs?: number;
}

export class FailureLimiter {
    private readonly freeFailures: number;
    private readonly windowMs: number;
    private readonly failures = new Map<string, { count: number; since: number }>();

    constructor(options: FailureLimiterOptions = {}) {
        this.freeFailures = options.freeFailures ?? 10;
        this.windowMs = options.windowMs ?? 5 * 60 * 1000;
    }

    /** Seconds to wait before this address may try again; 0 when it may try now. */
    retryAfter(address: string): number {
        const entry = this.failures.get(address);
        if (!entry) return 0;
        const age = Date.now() - entry.since;
        if (age > this.windowMs) {
            this.failures.delete(address);
            return 0;
        }
        return entry.count >= this.freeFailures ? Math.ceil((this.windowMs - age) / 1000) : 0;
    }

    fail(address: string): number {
        const entry = this.failures.get(address);
        if (!entry || Date.now() - entry.since > this.windowMs) {
            this.failures.set(address, { count: 1, since: Date.now() });
            return 1;
        }
        entry.count++;
        if (this.failures.size > 10000) {
            this.failures.delete(this.failures.keys().next().value!);
        }
        return entry.count;
    }

    succeed(address: string): void {
        this.failures.delete(address);
    }
}
