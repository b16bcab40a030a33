/**
 * BINARY (RFC 3516): the content-transfer-encoding of a MIME part, undone.
 *
 * FETCH BINARY[part] and BINARY.SIZE[part] need the decoded bytes and their length before the
 * literal is written. A part is decoded through a stream (decodedStream) once to measure it
 * (measureDecoded): a part that decodes to at most `keep` bytes is kept from that pass and sent as
 * a plain value; a larger one is decoded a second time while it is written, so memory stays
 * bounded by the chunk size whatever the part's size.
 */
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import type { MimeNode } from '../store';

/** How a part is decoded: as is (7bit, 8bit, binary, multipart and message parts), base64 or quoted-printable. */
export type PartDecoding = 'identity' | 'base64' | 'quoted-printable';

/**
 * How BINARY[...] of `node` is decoded, or null when its encoding is not one the server knows
 * (answered NO [UNKNOWN-CTE], RFC 3516 4.1). Multipart and message/rfc822 parts are sent as
 * they are, as Dovecot does (a content-transfer-encoding other than 7bit/8bit/binary is not
 * allowed on them, RFC 2045 6.4).
 */
export function partDecoding(node: MimeNode, wholeMessage: boolean): PartDecoding | null {
    if (wholeMessage || node.multipart || node.message) return 'identity';
    const header = node.parsedHeader?.['content-transfer-encoding'];
    const value = (typeof header === 'string' ? header : header && !Array.isArray(header) ? header.value : '').trim().toLowerCase();
    if (!value || value === '7bit' || value === '8bit' || value === 'binary') return 'identity';
    if (value === 'base64' || value === 'quoted-printable') return value;
    return null;
}

const BASE64_CHARS = /[^A-Za-z0-9+/]/g;

/** Streaming base64 decoder: characters outside the alphabet (line breaks, padding) are skipped, RFC 2045 6.8. */
class Base64Decoder extends Transform {
    private rest = '';
    override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
        const text = this.rest + chunk.toString('latin1').replace(BASE64_CHARS, '');
        const whole = text.length - (text.length % 4);
        this.rest = text.slice(whole);
        if (whole) this.push(Buffer.from(text.slice(0, whole), 'base64'));
        done();
    }
    override _flush(done: TransformCallback): void {
        // A truncated last group still yields the bytes it fully holds.
        if (this.rest.length > 1) this.push(Buffer.from(this.rest, 'base64'));
        done();
    }
}

const HEX = /^[0-9A-Fa-f]{2}$/;
/** Longest unterminated line held back (its end may be a soft line break or trailing white space). */
const QP_MAX_PENDING = 64 * 1024;

/**
 * Streaming quoted-printable decoder (RFC 2045 6.7): =XX is the byte XX, "=" at the end of a
 * line is a soft line break, white space at the end of a line is transport padding and dropped;
 * anything else (a lone "=") is kept as it is.
 */
class QuotedPrintableDecoder extends Transform {
    private pending = '';
    override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
        let text = this.pending + chunk.toString('latin1');
        const lastBreak = text.lastIndexOf('\n');
        let out = '';
        if (lastBreak >= 0) {
            out = decodeLines(text.slice(0, lastBreak + 1));
            text = text.slice(lastBreak + 1);
        }
        if (text.length > QP_MAX_PENDING) {
            // Keep back only what could still change meaning: trailing white space and a partial "=XX".
            const keep = text.length - /[ \t]*(=[0-9A-Fa-f]?)?$/.exec(text)![0].length;
            out += decodeText(text.slice(0, keep));
            text = text.slice(keep);
        }
        this.pending = text;
        if (out) this.push(Buffer.from(out, 'latin1'));
        done();
    }
    override _flush(done: TransformCallback): void {
        const last = this.pending.replace(/[ \t]+$/, '');
        const out = decodeText(last.endsWith('=') ? last.slice(0, -1) : last);
        if (out) this.push(Buffer.from(out, 'latin1'));
        done();
    }
}

/** Complete lines, each ending in LF (or CRLF). */
function decodeLines(text: string): string {
    let out = '';
    for (const line of text.split('\n').slice(0, -1)) {
        const body = line.replace(/\r$/, '').replace(/[ \t]+$/, '');
        if (body.endsWith('=')) {
            out += decodeText(body.slice(0, -1));
        } else {
            out += decodeText(body) + '\r\n';
        }
    }
    return out;
}

function decodeText(text: string): string {
    return text.replace(/=(..)/gs, (match, hex: string) => (HEX.test(hex) ? String.fromCharCode(parseInt(hex, 16)) : match));
}

/**
 * The first `length` bytes of `source`. imap-core's rebuild streams of a part can run a line
 * break past the length they announce (the literal writer cuts them there), so the body is cut
 * at that length before it is decoded.
 */
export function firstBytes(source: Readable, length: number): Readable {
    let left = length;
    const limiter = new Transform({
        transform(chunk: Buffer, _encoding, done) {
            if (left > 0) {
                const part = chunk.length > left ? chunk.subarray(0, left) : chunk;
                left -= part.length;
                this.push(part);
            }
            done();
        }
    });
    source.once('error', err => limiter.destroy(err));
    return source.pipe(limiter);
}

/** The decoded bytes of `source` (the part's body as stored). */
export function decodedStream(source: Readable, decoding: PartDecoding): Readable {
    if (decoding === 'identity') return source;
    const decoder = decoding === 'base64' ? new Base64Decoder() : new QuotedPrintableDecoder();
    source.once('error', err => decoder.destroy(err));
    return source.pipe(decoder);
}

export interface DecodedMeasure {
    /** Decoded length in bytes (BINARY.SIZE). */
    size: number;
    /** Whether the decoded data holds a NUL, which only a literal8 may carry (RFC 3516 4.3). */
    hasNul: boolean;
    /** The decoded bytes, when they are at most `keep` long. */
    data?: Buffer;
}

/** Decodes `source` to its end, counting; keeps the bytes while they fit in `keep`. */
export async function measureDecoded(source: Readable, decoding: PartDecoding, keep: number): Promise<DecodedMeasure> {
    let size = 0;
    let hasNul = false;
    let chunks: Buffer[] | undefined = [];
    for await (const chunk of decodedStream(source, decoding) as AsyncIterable<Buffer | string>) {
        const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk;
        size += bytes.length;
        if (!hasNul && bytes.includes(0)) hasNul = true;
        if (chunks) {
            if (size <= keep) chunks.push(bytes);
            else chunks = undefined;
        }
    }
    return { size, hasNul, data: chunks ? Buffer.concat(chunks, size) : undefined };
}
