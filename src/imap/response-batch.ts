/**
 * How FETCH hands its untagged responses to imap-core's output stream (the connection's
 * IMAPComposer, which pipes to the socket):
 *
 * - ResponseBatch: compiled responses are collected and written as one `{ compiled }` string per
 *   BATCH_BYTES (imap-composer writes `compiled` plus CRLF: joined with CRLF, the bytes are those
 *   of one write per response). One socket write per message meant one TCP segment per message.
 *   Strings, not Buffers: encoding each response into 64 KB byte chunks allocated less heap,
 *   but V8 then ran a mark-compact during bench/imap.ts step 4 in every session (GC trace by
 *   step), so it was dropped. A batch that holds a message body read whole (compileFetchPieces
 *   keeps it a Buffer) is written as pieces instead (`compiled` an array, patches/ 132): the
 *   text around the bodies as binary strings and each body as its Buffer, which reaches the
 *   socket uncopied (in the writev of the tick's cork, below).
 * - addLine, for the many short lines of a metadata FETCH (`1:* (FLAGS)`: 10,000 of them), encodes
 *   each line into a byte chunk as it comes instead: the lines are garbage at once rather than
 *   kept for a join (and the joined string again for the composer's `+ '\r\n'` and encoding),
 *   which in bench/imap.ts step 2 made young-generation collections copy the page's lines. The
 *   chunks start small and grow, so a one-message FETCH holds a pooled slice, not 64 KB (the
 *   external memory that made step 4 collect, above).
 * - corkForTick holds the socket's writes until the end of the current tick, so that the last
 *   responses and the tagged completion (which imap-core writes synchronously when the handler
 *   calls back) leave in one write instead of two small segments (the socket has TCP_NODELAY,
 *   src/imap/server.ts): for a single-message FETCH, one segment instead of two.
 */
import type { Socket } from 'node:net';

/** Compiled responses are written once this many bytes have collected (and at every page end). */
const BATCH_BYTES = 256 * 1024;
/** addLine's first chunk (a slice of Node's Buffer pool) and the largest it grows to. */
export const FIRST_CHUNK_BYTES = 2048;
const MAX_CHUNK_BYTES = 64 * 1024;

/** One compiled response without its CRLF: a binary string, or pieces (binary strings and Buffers) to be written one after another. */
export type CompiledResponse = string | readonly (string | Buffer)[];

export class ResponseBatch {
    private lines: CompiledResponse[] = [];
    private bytes = 0;
    private pieces = false;
    /** addLine's lines, encoded: CRLF between them, none after the last. */
    private chunk: Buffer | null = null;
    private used = 0;
    private nextChunkBytes = FIRST_CHUNK_BYTES;

    constructor(private readonly output: { write(chunk: unknown): boolean }) {}

    /** Appends one compiled response. */
    add(line: CompiledResponse): void {
        this.seal();
        this.lines.push(line);
        if (typeof line === 'string') {
            this.bytes += line.length;
        } else {
            this.pieces = true;
            for (const piece of line) this.bytes += piece.length;
        }
        if (this.bytes >= BATCH_BYTES) this.flush();
    }

    /** Appends one compiled response that is a binary string, encoded at once (see above). */
    addLine(line: string): void {
        const needed = line.length + 2;
        if (!this.chunk || this.used + needed > this.chunk.length) {
            this.seal();
            this.chunk = Buffer.allocUnsafe(Math.max(needed, this.nextChunkBytes));
            this.nextChunkBytes = Math.min(this.nextChunkBytes * 4, MAX_CHUNK_BYTES);
        }
        if (this.used) {
            this.chunk[this.used++] = 13;
            this.chunk[this.used++] = 10;
        }
        this.used += this.chunk.write(line, this.used, 'latin1');
        this.bytes += needed;
        if (this.bytes >= BATCH_BYTES) this.flush();
    }

    /** Ends addLine's chunk: its lines become one response of one piece, in their place among the others. */
    private seal(): void {
        if (!this.chunk) return;
        if (this.used) {
            this.lines.push([this.chunk.subarray(0, this.used)]);
            this.pieces = true;
        }
        this.chunk = null;
        this.used = 0;
    }

    /** Writes what has collected. */
    flush(): void {
        this.seal();
        if (!this.lines.length) return;
        this.output.write({ compiled: this.pieces ? this.joinedPieces() : (this.lines as string[]).join('\r\n') });
        this.lines = [];
        this.bytes = 0;
        this.pieces = false;
    }

    /**
     * The lines joined with CRLF as pieces for imap-composer (patch 132): the text between Buffers
     * joined into binary strings, each Buffer (a message body) as it is, so it is never copied.
     */
    private joinedPieces(): (string | Buffer)[] {
        const out: (string | Buffer)[] = [];
        let text = '';
        this.lines.forEach((line, index) => {
            if (index) text += '\r\n';
            if (typeof line === 'string') {
                text += line;
                return;
            }
            for (const piece of line) {
                if (typeof piece === 'string') {
                    text += piece;
                } else {
                    if (text) out.push(text);
                    out.push(piece);
                    text = '';
                }
            }
        });
        if (text) out.push(text);
        return out;
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
