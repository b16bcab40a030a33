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
 * - corkForTick holds the socket's writes until the end of the current tick, so that the last
 *   responses and the tagged completion (which imap-core writes synchronously when the handler
 *   calls back) leave in one write instead of two small segments (the socket has TCP_NODELAY,
 *   src/imap/server.ts): for a single-message FETCH, one segment instead of two.
 */
import type { Socket } from 'node:net';

/** Compiled responses are written once this many bytes have collected (and at every page end). */
const BATCH_BYTES = 256 * 1024;

/** One compiled response without its CRLF: a binary string, or pieces (binary strings and Buffers) to be written one after another. */
export type CompiledResponse = string | readonly (string | Buffer)[];

export class ResponseBatch {
    private lines: CompiledResponse[] = [];
    private bytes = 0;
    private pieces = false;

    constructor(private readonly output: { write(chunk: unknown): boolean }) {}

    /** Appends one compiled response. */
    add(line: CompiledResponse): void {
        this.lines.push(line);
        if (typeof line === 'string') {
            this.bytes += line.length;
        } else {
            this.pieces = true;
            for (const piece of line) this.bytes += piece.length;
        }
        if (this.bytes >= BATCH_BYTES) this.flush();
    }

    /** Writes what has collected. */
    flush(): void {
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
