/**
 * A reference for a body under other header lines (docs/relay.md, "Bodies once per village"):
 * one mailing-list post reaches two subscribers with other Received and Delivered-To lines, so
 * the whole messages' hashes differ while the bodies (the bytes after the header's blank line)
 * are the same. The relay records where each body it shipped whole lies (the message file the
 * Pi holds, by its hash, and the offset in it); a later message with the same body goes down as
 * a `bodyRef`: its own header bytes and that place, and the Pi rebuilds it (pi/apply.ts).
 */
import crypto from 'node:crypto';

/**
 * Bodies shorter than this go whole: zstd carries a short body for about what a reference's
 * meta costs (some 150 bytes compressed), and the relay's table stays small.
 */
export const MIN_BODY_REF_BYTES = 1024;

/** Where a message's body lies in the message file that holds it. */
export interface BodyPart {
    /** SHA-256 of the body bytes, hex. */
    hash: string;
    /** SHA-256 of the whole message (the file's name on the Pi), hex. */
    messageHash: string;
    offset: number;
    length: number;
}

export function sha256Hex(bytes: Buffer): string {
    return crypto.createHash('sha256').update(bytes).digest('hex');
}

/**
 * Where the body starts: the byte after the blank line that ends the header (CRLF CRLF or LF LF,
 * whichever comes first; a message that starts with a blank line has an empty header), or null
 * when there is no blank line (a header only).
 */
export function bodyOffset(raw: Buffer): number | null {
    if (raw[0] === 0x0a) return 1;
    if (raw[0] === 0x0d && raw[1] === 0x0a) return 2;
    const crlf = raw.indexOf('\r\n\r\n');
    const lf = raw.indexOf('\n\n');
    if (lf >= 0 && (crlf < 0 || lf < crlf)) return lf + 2;
    return crlf < 0 ? null : crlf + 4;
}

/** The body of `raw` (whose SHA-256 is `messageHash`) as a part worth a reference, or null. */
export function bodyPart(raw: Buffer, messageHash: string): BodyPart | null {
    const offset = bodyOffset(raw);
    if (offset === null || raw.length - offset < MIN_BODY_REF_BYTES) return null;
    return { hash: sha256Hex(raw.subarray(offset)), messageHash, offset, length: raw.length - offset };
}
