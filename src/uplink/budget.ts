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
 * The most `rawBytes` of message can cost on the wire, whatever they are: deflate does not shrink
 * what does not compress and adds a few bytes per block and flush (zlib's deflateBound: 0.03 %
 * and 5 bytes per 16 KB block), TLS adds up to 29 bytes per record. 8 bytes per KB (0.8 %) covers
 * both with room as long as a record carries 3.6 KB or more. What the FETCH command and response
 * lines add is the caller's per-message overhead.
 */
export function worstWireCost(rawBytes: number): number {
    return rawBytes + Math.ceil(rawBytes / 1024) * 8;
}

/** The most raw bytes whose worst wire cost fits in `wireBytes` (0 when nothing does). */
export function rawWithin(wireBytes: number): number {
    let raw = Math.max(Math.floor((wireBytes * 1024) / 1032), 0);
    while (raw > 0 && worstWireCost(raw) > wireBytes) raw--;
    return raw;
}

/** The first piece of a message fetched in pieces: small, to learn how it compresses before spending much on it. */
export const PROBE_PIECE = 16 * 1024;
/** A piece smaller than this is not worth its round trip: the message waits for the next run. */
export const MIN_PIECE = 1024;

/**
 * A message fetched in pieces (bodies.ts, when even the smallest pending message's worst case no
 * longer fits what is left of the run's budget, but its measured cost does): how many raw bytes
 * to ask for next, 0 to stop (the message waits for the next run; what it cost is spent).
 * `size` is the message's RFC822.SIZE, `got` the bytes fetched so far, which cost `spentOnIt` on
 * the wire, and `left` what the run may still spend on this piece (budget, less the reserve and
 * the piece's command and response lines). Every piece is asked for at most `rawWithin(left)`
 * bytes, so even a piece that does not compress at all stays within the budget: the run never
 * overspends. It asks for one byte past the expected end, so a shorter answer says the message
 * ended. It stops early when the message's own ratio so far says the rest will not fit.
 */
export function nextPiece(size: number, got: number, spentOnIt: number, left: number): number {
    const rest = Math.max(size - got, 0);
    let want = Math.min(rawWithin(left), rest + 1);
    if (got === 0) {
        want = Math.min(want, PROBE_PIECE);
    } else if (Math.ceil(rest * Math.min((spentOnIt / got) * RATIO_MARGIN, 1.01)) > left) {
        return 0;
    }
    return want >= Math.min(MIN_PIECE, rest + 1) ? want : 0;
}

/**
 * What message bodies cost on the wire in this run, measured: the raw (RFC822.SIZE) bytes of each
 * downloaded batch against the bytes the meter counted for it (command, response lines, deflate
 * and TLS included). Batches are planned at their worst (worstWireCost), which alone would stop
 * a compressed run short of its budget by up to a message; the measured cost says whether the
 * message that no longer fits at its worst is worth fetching in pieces (nextPiece).
 *
 * The estimate errs high: it uses the worst ratio any batch of this run had, plus a margin, and
 * the raw size itself until something was measured (deflate never makes a message much larger).
 * Erring high costs little: a message is not tried in pieces that might have fitted; erring low
 * costs its probe piece (nextPiece), never more than the budget.
 */
export class WireCost {
    private worstRatio = 0;
    private recorded = false;

    /** Whether a batch was measured yet (until then the estimate is the raw size). */
    get measured(): boolean {
        return this.recorded;
    }

    /** One downloaded batch: `rawBytes` of messages cost `wireBytes` on the socket. */
    record(rawBytes: number, wireBytes: number): void {
        if (rawBytes <= 0 || wireBytes < 0) return;
        this.worstRatio = Math.max(this.worstRatio, wireBytes / rawBytes);
        this.recorded = true;
    }

    /** What `rawBytes` of message bodies will likely cost on the wire, rounded up. */
    estimate(rawBytes: number): number {
        if (!this.recorded) return rawBytes;
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
