/**
 * Headers first (docs/relay.md, "Headers first"): when a run's byte budget will not carry every
 * new message down, the relay sends them in two down bundles, one of header stubs for them all
 * (this module: each message's own header fields and a short note, a few hundred bytes), then
 * one of the whole messages, which take the stubs' places on the Pi (store.sync.replaceStub, as
 * direct mode's "Fetch full"). The Pi applies a bundle only whole, so the small first one
 * reaches it even when the budget stops the second: every new message is listed, with its
 * sender, subject and date, before the bodies spend the budget.
 */
import type { Readable } from 'node:stream';
import { headerBlockOf } from '../../uplink/stub';

/** The most of a message read to find its header block (headerBlockOf keeps at most 64 KB of it). */
const HEADER_READ_LIMIT = 64 * 1024 + 4;

/** Header fields that describe the original's MIME structure, not the stub's. */
const MIME_FIELDS = new Set(['content-type', 'content-transfer-encoding', 'mime-version', 'content-disposition']);

/** The start of a message (its header block, or HEADER_READ_LIMIT bytes), read from `stream`, which is then let go. */
async function headOf(stream: Readable): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let length = 0;
    try {
        for await (const chunk of stream as AsyncIterable<Buffer>) {
            chunks.push(chunk);
            length += chunk.length;
            const head = Buffer.concat(chunks);
            if (length >= HEADER_READ_LIMIT || head.includes('\r\n\r\n') || head.includes('\n\n')) return head;
        }
        return Buffer.concat(chunks);
    } finally {
        stream.destroy();
    }
}

/**
 * The header stub of a message of `size` bytes read from `stream`: its header fields as they
 * came (folded lines and encoded words untouched), but those of its MIME structure, then a
 * plain-text note that the whole message follows.
 */
export async function headerStub(stream: Readable, size: number): Promise<Buffer> {
    const block = headerBlockOf(await headOf(stream)).toString('binary');
    const fields: string[] = [];
    for (const line of block.split(/\r?\n/)) {
        if (!line) continue;
        if (/^[ \t]/.test(line) && fields.length) fields[fields.length - 1] += `\r\n${line}`;
        else fields.push(line);
    }
    const kept = fields.filter(field => {
        const colon = field.indexOf(':');
        return colon > 0 && !MIME_FIELDS.has(field.slice(0, colon).trim().toLowerCase());
    });
    const note = [
        `This message (${Math.ceil(size / 1024)} KB) is on its way: its headers came ahead of it, so that`,
        "all new mail is listed before the uplink's budget runs out. The whole message follows with",
        'a later uplink run and takes the place of this note.'
    ];
    const head = [`X-Mailmule-Stub: headers first, original size ${size}`, ...kept, 'MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 7bit'];
    return Buffer.from([...head, '', ...note, ''].join('\r\n'), 'binary');
}
