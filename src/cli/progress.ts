/**
 * `mailmule sync`'s live lines on a terminal: one per account (what it does, for how long, the
 * messages and bytes each way, the average rate), redrawn every REDRAW_MS from the last figures
 * the run sent, so the elapsed time moves even while a provider says nothing. Log lines go
 * through log(): the block is erased, the line written, the block drawn again below it, so the
 * two never mix. stop() erases the block; the final report is printed after it.
 */
import type { ProgressSnapshot } from '../uplink';
import { kb } from './common';

export const REDRAW_MS = 500;

interface Seen {
    snapshot: ProgressSnapshot;
    /** When it arrived (the clock of this process). */
    at: number;
}

function seconds(ms: number): string {
    const s = Math.floor(ms / 1000);
    return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
}

/** One account's line at `now` (ms). */
export function progressLine(snapshot: ProgressSnapshot, receivedAt: number, now: number): string {
    if (snapshot.phase === 'waiting' && !snapshot.elapsedMs) return `${snapshot.account}: waiting`;
    const active = snapshot.phase === 'send' || snapshot.phase === 'receive';
    const elapsed = snapshot.elapsedMs + (active ? Math.max(0, now - receivedAt) : 0);
    const bytes = snapshot.bytesSent + snapshot.bytesReceived;
    const rate = elapsed >= 1000 ? `${kb(bytes / (elapsed / 1000))}/s` : '-';
    const doing = active ? `${snapshot.activity} … ${seconds(elapsed)}` : `${snapshot.activity} after ${seconds(elapsed)}`;
    return `${snapshot.account}: ${doing} | ${snapshot.messagesReceived} in, ${snapshot.messagesSent} out | ${kb(snapshot.bytesReceived)} down, ${kb(snapshot.bytesSent)} up | ${rate}`;
}

export interface Terminal {
    write(text: string): unknown;
    columns?: number;
}

export class LiveDisplay {
    private readonly accounts = new Map<string, Seen>();
    private readonly started: number;
    private drawn = 0;
    private timer?: NodeJS.Timeout;

    constructor(
        private readonly out: Terminal,
        private readonly now: () => number = Date.now
    ) {
        this.started = now();
    }

    start(): this {
        this.draw();
        this.timer = setInterval(() => this.draw(), REDRAW_MS);
        return this;
    }

    update(snapshot: ProgressSnapshot): void {
        this.accounts.set(snapshot.account, { snapshot, at: this.now() });
        this.draw();
    }

    /** The lines as they would be drawn now. */
    lines(): string[] {
        const now = this.now();
        if (!this.accounts.size) return [`uplink: starting (link, budget) … ${seconds(now - this.started)}`];
        return [...this.accounts.values()].map(seen => progressLine(seen.snapshot, seen.at, now));
    }

    /** Writes `text` (whole lines) above the live block. */
    log(text: string): void {
        this.out.write(this.erasure() + text);
        this.drawn = 0;
        this.draw();
    }

    /** Stops redrawing and erases the block. */
    stop(): void {
        clearInterval(this.timer);
        this.timer = undefined;
        this.out.write(this.erasure());
        this.drawn = 0;
    }

    private erasure(): string {
        // To the start of the block's first line, then clear to the end of the screen.
        return this.drawn ? `\x1b[${this.drawn}F\x1b[J` : '';
    }

    private draw(): void {
        const width = Math.max(20, (this.out.columns || 100) - 1);
        const lines = this.lines();
        // Each line cut to the width: a line that wrapped would leave the block's height unknown.
        const body = lines.map(line => `\x1b[2K${line.length > width ? line.slice(0, width - 1) + '…' : line}\n`).join('');
        this.out.write((this.drawn ? `\x1b[${this.drawn}F` : '') + body + '\x1b[J');
        this.drawn = lines.length;
    }
}
