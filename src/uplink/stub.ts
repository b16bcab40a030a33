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

export function buildStub(input: StubInput): Promise<Buffer> {
    const root = new MimeNode('multipart/mixed', { baseBoundary: input.boundarySeed, keepBcc: true });
    // Keep every original header except the MIME structure ones, which now describe the stub.
    const text = input.headers.toString('binary').replace(/\r?\n$/, '');
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
    return new Promise((resolve, reject) => root.build((err: Error | null, message: Buffer) => (err ? reject(err) : resolve(message))));
}
