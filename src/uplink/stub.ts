/**
 * The stand-in for a message too large to download whole over the uplink: its original
 * headers, its text parts, and a note listing the attachments left upstream with how to get
 * them (move the message into "Fetch full"). Built with nodemailer's MIME composer.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const MimeNode = require('nodemailer/lib/mime-node');
import { FETCH_FULL_FOLDER } from './folders';

export interface StubPart {
    part: string;
    type: string;
    size: number;
    filename: string | null;
    charset: string | null;
    encoding: string | null;
    isText: boolean;
}

export interface StubInput {
    /** The original header block (raw). */
    headers: Buffer;
    size: number;
    parts: StubPart[];
    /** Decoded text parts (UTF-8). */
    texts: { part: StubPart; content: Buffer }[];
    boundarySeed: string;
}

const DROPPED_HEADERS = new Set(['content-type', 'content-transfer-encoding', 'mime-version', 'content-disposition']);

function humanSize(bytes: number): string {
    return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(1)} MB` : `${Math.ceil(bytes / 1024)} KB`;
}

/** A multipart/mixed root carrying the original's header fields, except the MIME structure ones, which now describe the stand-in. */
function standInRoot(headers: Buffer, boundarySeed: string): typeof MimeNode {
    const root = new MimeNode('multipart/mixed', { baseBoundary: boundarySeed, keepBcc: true });
    const text = headers.toString('binary').replace(/\r?\n$/, '');
    const fields: string[] = [];
    for (const line of text.split(/\r?\n/)) {
        if (!line) continue;
        if (/^[ \t]/.test(line) && fields.length) fields[fields.length - 1] += '\r\n' + line;
        else fields.push(line);
    }
    for (const field of fields) {
        const colon = field.indexOf(':');
        if (colon <= 0) continue;
        const name = field.slice(0, colon).trim();
        if (DROPPED_HEADERS.has(name.toLowerCase())) continue;
        // Already encoded as it came from the provider: pass it through untouched.
        // Unfold (RFC 5322 2.2.3): nodemailer folds the value again where it needs to.
        const value = field
            .slice(colon + 1)
            .replace(/\r\n(?=[ \t])/g, '')
            .trim();
        root.addHeader({ key: name, value: Buffer.from(value, 'binary').toString('utf8'), prepared: true });
    }
    return root;
}

function build(root: typeof MimeNode): Promise<Buffer> {
    return new Promise((resolve, reject) => root.build((err: Error | null, message: Buffer) => (err ? reject(err) : resolve(message))));
}

export function buildStub(input: StubInput): Promise<Buffer> {
    const root = standInRoot(input.headers, input.boundarySeed);
    root.setHeader('X-Mailmule-Stub', `original size ${input.size}`);

    const left = input.parts.filter(part => !part.isText);
    const note = [
        `This message is ${humanSize(input.size)}, larger than what this gateway downloads over the uplink on its own.`,
        left.length ? 'Left on the server:' : 'Some of it was left on the server.',
        ...left.map(part => `  - ${part.filename ?? '(unnamed)'} (${part.type}, ${humanSize(part.size)})`),
        '',
        `To get the whole message, move it into the folder "${FETCH_FULL_FOLDER}". The next uplink run`,
        'downloads it and puts the full message back in its original folder.',
        ''
    ].join('\r\n');
    root.createChild('text/plain; charset=utf-8').setContent(note);
    for (const { part, content } of input.texts) {
        root.createChild(`${part.type}; charset=utf-8`).setContent(content.toString('utf8'));
    }
    return build(root);
}

/** Header blocks longer than this are cut at a line end for a stand-in (the store refused the message; its header may be as odd as its body). */
const MAX_STAND_IN_HEADER = 64 * 1024;

/** The header block of a raw message (up to the first empty line), at most MAX_STAND_IN_HEADER bytes, cut at a line end. */
export function headerBlockOf(raw: Buffer): Buffer {
    let end = raw.indexOf('\r\n\r\n');
    const lf = raw.indexOf('\n\n');
    if (end < 0 || (lf >= 0 && lf < end)) end = lf;
    let block = raw.subarray(0, end < 0 ? raw.length : end);
    if (block.length > MAX_STAND_IN_HEADER) {
        const cut = block.lastIndexOf('\n', MAX_STAND_IN_HEADER);
        block = block.subarray(0, cut < 0 ? 0 : cut);
    }
    return block;
}

export interface TooComplexInput {
    /** The whole message as the provider sent it (only its header block is kept). */
    raw: Buffer;
    /** Why the store refused it, in its words ("MIME parts nested 151 levels deep; the limit is 100"). */
    reason: string;
    /** Where it stays: the account and the upstream folder. */
    account: string;
    folder: string;
    boundarySeed: string;
}

/**
 * The stand-in for a message the store refuses for good (MessageTooComplexError: MIME nested past
 * MAX_MIME_DEPTH, …): its original headers and a note that the message stays on the provider, and
 * why. It is not a stub to "Fetch full": the whole message would be refused the same way.
 */
export function buildTooComplexNote(input: TooComplexInput): Promise<Buffer> {
    const root = standInRoot(headerBlockOf(input.raw), input.boundarySeed);
    root.setHeader('X-Mailmule-Left-Upstream', `too complex to store, original size ${input.raw.length}`);
    const note = [
        `This message (${humanSize(input.raw.length)}) is built in a way this gateway cannot store:`,
        `  ${input.reason}.`,
        '',
        `It was left on the server, untouched, in the folder "${input.folder}" of ${input.account}.`,
        "Read it there, with the provider's webmail or another mail app. This note stands in for it,",
        'and the uplink will not try to download it again.',
        ''
    ].join('\r\n');
    root.createChild('text/plain; charset=utf-8').setContent(note);
    return build(root);
}
