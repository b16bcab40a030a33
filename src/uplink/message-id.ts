/**
 * The one Message-ID parser of the uplink: the header pass, the re-link after a UIDVALIDITY
 * change and anything else that reads a Message-ID off an upstream header block use it, so a
 * message is recognised the same way wherever it is met.
 */
import { normaliseMessageId } from '../store';

/**
 * The Message-ID field of a raw header block (the whole header, or just the field as
 * `BODY[HEADER.FIELDS (MESSAGE-ID)]` returns it), in the store's form: the first `<…>`,
 * lower-cased, so it compares equal to what the store keeps for local messages. A folded field
 * (RFC 5322 2.2.3) is unfolded first. Null when there is none or it is empty.
 */
export function messageIdOf(headers: Buffer | string | null | undefined): string | null {
    if (!headers) return null;
    const text = typeof headers === 'string' ? headers : headers.toString('utf8');
    const value = /^message-id:[ \t]*(.*(?:\r?\n[ \t].*)*)/im.exec(text)?.[1]?.replace(/\s+/g, ' ').trim();
    return value ? normaliseMessageId(value) : null;
}
