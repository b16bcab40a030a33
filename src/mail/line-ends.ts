/**
 * Line ends of a message as mailmule keeps and serves it: CRLF (RFC 5322 2.1; SMTP DATA and
 * IMAP literals carry CRLF). Shared by the two ways mail arrives in another convention: SMTP
 * submission from clients that send bare LF, and `mailmule import` of Maildirs, which keep LF.
 */

/** Converts bare LF and bare CR line ends to CRLF; returns `raw` itself when it has none. */
export function normaliseLineEnds(raw: Buffer): Buffer {
    if (!raw.includes(10) && !raw.includes(13)) return raw;
    let needs = false;
    for (let i = 0; i < raw.length; i++) {
        const byte = raw[i];
        if ((byte === 10 && raw[i - 1] !== 13) || (byte === 13 && raw[i + 1] !== 10)) {
            needs = true;
            break;
        }
    }
    if (!needs) return raw;
    return Buffer.from(raw.toString('binary').replace(/\r\n|\r|\n/g, '\r\n'), 'binary');
}
