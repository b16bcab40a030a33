/**
 * Sort keys for SORT and THREAD (RFC 5256, RFC 5957), computed from a message's stored ENVELOPE
 * and header lines. Pure functions: no SQL here.
 */

/** Envelope as imap-core builds it: [date, subject, from, sender, reply-to, to, cc, bcc, in-reply-to, message-id]. */
type EnvelopeField = Buffer | string | null | undefined;
type EnvelopeAddress = [EnvelopeField, EnvelopeField, EnvelopeField, EnvelopeField];

export interface BaseSubject {
    /** The base subject (RFC 5256 section 2.1), upper-cased for i;ascii-casemap comparison. */
    base: string;
    /** Whether a "Re:", "Fwd:", "(fwd)" or "[fwd: ...]" was removed: the message is a reply or forward. */
    isReply: boolean;
}

const SUBJ_REFWD = /^((?:\[[^[\]]*\] *)*)(?:re|fwd?) *(?:\[[^[\]]*\] *)?:/i;
const SUBJ_BLOB = /^\[[^[\]]*\] */;

/**
 * RFC 5256 section 2.1: the subject with whitespace collapsed, trailing "(fwd)"s, leading
 * "Re:"/"Fwd:" (with any "[blob]" before them), leading "[blob]"s that do not make up the whole
 * subject, and a "[fwd: ...]" wrapper removed, repeatedly. `subject` must be decoded already.
 */
export function baseSubject(subject: string): BaseSubject {
    let text = subject.replace(/[\t\r\n ]+/g, ' ');
    let isReply = false;
    for (;;) {
        // (2) subj-trailer: "(fwd)" and whitespace at the end.
        for (;;) {
            if (text.endsWith(' ')) {
                text = text.slice(0, -1);
            } else if (text.toLowerCase().endsWith('(fwd)')) {
                text = text.slice(0, -5);
                isReply = true;
            } else {
                break;
            }
        }
        // (3) subj-leader and (4) a leading subj-blob, until neither applies.
        for (;;) {
            const before = text;
            text = text.replace(/^ +/, '');
            const refwd = SUBJ_REFWD.exec(text);
            if (refwd) {
                text = text.slice(refwd[0].length);
                isReply = true;
            }
            const blob = SUBJ_BLOB.exec(text);
            if (blob && text.slice(blob[0].length).trim()) {
                text = text.slice(blob[0].length);
            }
            if (text === before) break;
        }
        // (5) subj-fwd-hdr ... subj-fwd-trl: unwrap "[fwd: ...]" and start again.
        if (/^\[fwd:/i.test(text) && text.endsWith(']')) {
            text = text.slice(5, -1);
            isReply = true;
            continue;
        }
        break;
    }
    return { base: text.toUpperCase(), isReply };
}

function text(field: EnvelopeField): string {
    if (field == null) return '';
    return Buffer.isBuffer(field) ? field.toString('utf8') : String(field);
}

function firstAddress(envelope: unknown[] | null | undefined, index: number): EnvelopeAddress | null {
    const list = envelope?.[index];
    return Array.isArray(list) && Array.isArray(list[0]) ? (list[0] as EnvelopeAddress) : null;
}

const ENVELOPE_FIELDS = { from: 2, to: 5, cc: 6 } as const;
export type AddressField = keyof typeof ENVELOPE_FIELDS;

/**
 * FROM, TO, CC (RFC 5256 section 3): the addr-mailbox of the first address, which for a group
 * is the group's name (as ENVELOPE shows it), compared case-insensitively.
 */
export function addressKey(envelope: unknown[] | null | undefined, field: AddressField): string {
    const address = firstAddress(envelope, ENVELOPE_FIELDS[field]);
    return address ? text(address[2]).toLowerCase() : '';
}

/**
 * DISPLAYFROM, DISPLAYTO (RFC 5957 section 3): the decoded display name of the first address,
 * or when it has none its addr-spec (a group: its name), compared case-insensitively.
 */
export function displayKey(envelope: unknown[] | null | undefined, field: 'from' | 'to'): string {
    const address = firstAddress(envelope, ENVELOPE_FIELDS[field]);
    if (!address) return '';
    const name = text(address[0]).trim();
    if (name) return name.toLowerCase();
    const mailbox = text(address[2]);
    const host = text(address[3]);
    return (host ? `${mailbox}@${host}` : mailbox).toLowerCase();
}

/** The decoded subject from the envelope (imap-core keeps it decoded in storage). */
export function envelopeSubject(envelope: unknown[] | null | undefined): string {
    return text(envelope?.[1] as EnvelopeField);
}

const MESSAGE_ID = /<[^<>]*>/g;

/** The value of the first `name:` header among raw header lines, unfolded. */
export function headerValue(headerLines: readonly string[], name: string): string | null {
    const prefix = name.toLowerCase() + ':';
    for (const line of headerLines) {
        if (line.slice(0, prefix.length).toLowerCase() === prefix) {
            return line
                .slice(prefix.length)
                .replace(/\r?\n[ \t]+/g, ' ')
                .trim();
        }
    }
    return null;
}

/** The `<id>`s in a header value, as written (RFC 5256 compares message-ids as strings). */
export function messageIds(value: string | null): string[] {
    return value ? (value.match(MESSAGE_ID) ?? []).filter(id => id.length > 2) : [];
}

/**
 * The parent chain for THREAD=REFERENCES (RFC 5256 section 4, step 1.A): the References
 * message-ids, or when there are none, the first message-id of In-Reply-To.
 */
export function referenceChain(headerLines: readonly string[]): string[] {
    const references = messageIds(headerValue(headerLines, 'references'));
    if (references.length) return references;
    return messageIds(headerValue(headerLines, 'in-reply-to')).slice(0, 1);
}
