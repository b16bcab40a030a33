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
