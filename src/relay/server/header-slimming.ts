/**
 * Header slimming for local delivery (docs/relay.md, "Header slimming"; off by default,
 * uplink.relay.slimHeaders on the Pi): a message that went through many hops carries a Received
 * line for each, often 5 to 15 of them and a few KB, in every copy the village pays for. The
 * relay keeps the first `keepReceived` of them (the newest hops, at the top: the user's own
 * provider taking the message in, which says when and from where it arrived) and drops the
 * older ones (the path before, of use only for tracing a delay or a forgery at the provider,
 * which keeps its copy whole). What was dropped is said in a header of its own, first in the
 * header, so the user sees it:
 *
 *     X-Mailmule-Slimmed: received=7 bytes=2345
 *
 * Only the header changes, byte for byte everywhere else: the body (and so a `bodyRef` to it,
 * body-refs.ts) is untouched, and the same message always slims to the same bytes (a
 * `messageRef` still finds a second copy). A message whose DKIM signature covers Received lines
 * is left whole, as dropping them would break its signature for a client that checks it.
 */
import { bodyOffset } from './body-refs';

export interface SlimHeaders {
    /** Received lines kept, from the top (the newest hops). */
    keepReceived: number;
}

/** The header field that tells what slimming removed. */
export const SLIMMED_FIELD = 'X-Mailmule-Slimmed';

/** The header's fields as they are in `header` (each with its folded lines and its line end). */
function fields(header: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let start = 0;
    let at = 0;
    while (at < header.length) {
        const end = header.indexOf(0x0a, at);
        const next = end < 0 ? header.length : end + 1;
        // A line that starts with a space or tab continues the field before it.
        if (next < header.length && (header[next] === 0x20 || header[next] === 0x09)) {
            at = next;
            continue;
        }
        out.push(header.subarray(start, next));
        start = at = next;
    }
    return out;
}

function fieldName(field: Buffer): string {
    const colon = field.indexOf(0x3a);
    return colon < 0 ? '' : field.subarray(0, colon).toString('latin1').trim().toLowerCase();
}

/** Whether a DKIM-Signature field signs Received lines (its h= tag lists them). */
function signsReceived(field: Buffer): boolean {
    const value = field.toString('latin1').replace(/\r?\n[ \t]/g, ' ');
    const tag = /(?:^|;)\s*h\s*=([^;]*)/i.exec(value.slice(value.indexOf(':') + 1));
    return tag !== null && tag[1].split(':').some(name => name.trim().toLowerCase() === 'received');
}

/**
 * `raw` with its Received lines after the first `options.keepReceived` dropped, and the
 * X-Mailmule-Slimmed field first; `raw` itself when there is nothing to drop or when its DKIM
 * signature covers Received.
 */
export function slimHeaders(raw: Buffer, options: SlimHeaders): Buffer {
    const offset = bodyOffset(raw) ?? raw.length;
    const all = fields(raw.subarray(0, offset));
    let received = 0;
    const kept: Buffer[] = [];
    let dropped = 0;
    let droppedBytes = 0;
    for (const field of all) {
        const name = fieldName(field);
        if (name === 'dkim-signature' && signsReceived(field)) return raw;
        if (name === 'received' && ++received > options.keepReceived) {
            dropped++;
            droppedBytes += field.length;
            continue;
        }
        kept.push(field);
    }
    if (!dropped) return raw;
    const lineEnd = all[0]?.includes('\r\n') === false ? '\n' : '\r\n';
    const note = Buffer.from(`${SLIMMED_FIELD}: received=${dropped} bytes=${droppedBytes}${lineEnd}`, 'latin1');
    return Buffer.concat([note, ...kept, raw.subarray(offset)]);
}
