/**
 * What a run may spend on the wire: uplink.budget.perRun, and what is left of
 * uplink.budget.perDay after today's earlier runs, whichever is less. Counted on the socket
 * (after TLS and compression) by the run's WireMeter, and checked before each message.
 */
import type { WireMeter } from './meter';

/** A run's byte allowance: what it may still spend, counted on the wire. */
export class RunBudget {
    constructor(
        private readonly meter: WireMeter,
        /** Bytes this run may spend (Infinity: no cap). */
        readonly limit: number
    ) {}

    allows(bytes: number): boolean {
        return this.meter.total() + bytes <= this.limit;
    }

    remaining(): number {
        return Math.max(this.limit - this.meter.total(), 0);
    }

    /** What the run has spent so far, on the wire. */
    spent(): number {
        return this.meter.total();
    }
}

/** Headroom on the measured ratio: the next messages may compress a little worse than the last. */
const RATIO_MARGIN = 1.15;

/**
 * What message bodies cost on the wire in this run, measured: the raw (RFC822.SIZE) bytes of each
 * downloaded batch against the bytes the meter counted for it (command, response lines, deflate
 * and TLS included). Planning with raw sizes alone leaves a compressed run at half its budget
 * (text deflates to a third or so); planning with the measured cost lets it fill the budget.
 *
 * The estimate errs high: it uses the worst ratio any batch of this run had, plus a margin, and
 * the raw size itself until something was measured (deflate never makes a message much larger).
 * Erring high costs little: the run only stops one message early; erring low could overspend.
 */
export class WireCost {
    private worstRatio = 0;
    private measured = false;

    /** One downloaded batch: `rawBytes` of messages cost `wireBytes` on the socket. */
    record(rawBytes: number, wireBytes: number): void {
        if (rawBytes <= 0 || wireBytes < 0) return;
        this.worstRatio = Math.max(this.worstRatio, wireBytes / rawBytes);
        this.measured = true;
    }

    /** What `rawBytes` of message bodies will likely cost on the wire, rounded up. */
    estimate(rawBytes: number): number {
        if (!this.measured) return rawBytes;
        return Math.ceil(rawBytes * Math.min(this.worstRatio * RATIO_MARGIN, 1));
    }
}

/**
 * The cap of one run, in bytes: `perRun` and `perDay` are the configured budgets (0: none),
 * `usedToday` what today's runs have already spent. Infinity when neither is set; 0 when the
 * day's budget is spent (the run is skipped).
 */
export function runLimit(perRun: number, perDay: number, usedToday: number): number {
    return Math.min(perRun || Infinity, perDay ? Math.max(perDay - usedToday, 0) : Infinity);
}

/** Midnight today, local time: where "today" starts for uplink.budget.perDay. */
export function startOfDay(now: Date = new Date()): number {
    const day = new Date(now);
    day.setHours(0, 0, 0, 0);
    return day.getTime();
}
