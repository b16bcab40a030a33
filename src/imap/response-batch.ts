/**
 * How FETCH hands its untagged responses to imap-core's output stream (the connection's
 * IMAPComposer, which pipes to the socket):
 *
 * - ResponseBatch: compiled responses are collected and written as one `{ compiled }` string per
 *   BATCH_CHARS (imap-composer writes `compiled` plus CRLF: joined with CRLF, the bytes are those
 *   of one write per response). One socket write per message meant one TCP segment per message.
 *   Strings, not Buffers: encoding each response into 64 KB byte chunks allocated less heap,
 *   but V8 then ran a mark-compact during bench/imap.ts step 4 in every session (GC trace by
 *   step), so it was dropped.
 * - corkForTick holds the socket's writes until the end of the current tick, so that the last
 *   responses and the tagged completion (which imap-core writes synchronously when the handler
 *   calls back) leave in one write instead of two small segments (the socket has TCP_NODELAY,
 *   src/imap/server.ts): for a single-message FETCH, one segment instead of two.
 */
import type { Socket } from 'node:net';

/** Compiled responses are written once this many characters have collected (and at every page end). */
const BATCH_CHARS = 256 * 1024;

export class ResponseBatch {
    private lines: string[] = [];
    private chars = 0;

    constructor(private readonly output: { write(chunk: unknown): boolean }) {}

    /** Appends one compiled response (a binary string, without its CRLF). */
    add(line: string): void {
        this.lines.push(line);
        this.chars += line.length;
        if (this.chars >= BATCH_CHARS) this.flush();
    }

    /** Writes what has collected. */
    flush(): void {
        if (!this.lines.length) return;
        this.output.write({ compiled: this.lines.join('\r\n') });
        this.lines = [];
        this.chars = 0;
    }
}

/**
 * Corks `socket` until the end of the current tick (once per tick: nested calls are free). Data
 * written meanwhile, through any stream piped to it, leaves in one writev when the tick ends.
 * Nothing waits on the socket within a tick (a FETCH that streams a body awaits, and so ends the
 * tick), so corking cannot hold back data someone is waiting for.
 */
export function corkForTick(socket: Socket | undefined): void {
    if (!socket || socket.destroyed || socket.writableCorked) return;
    socket.cork();
    process.nextTick(() => socket.uncork());
}
