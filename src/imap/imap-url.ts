/**
 * The IMAP URLs a CATENATE part may name (RFC 4469 section 5, RFC 5092): a message, or a section
 * of one, in a mailbox of the session's own user on this server, written as an absolute path:
 *
 *     /INBOX;UIDVALIDITY=1234/;UID=20/;SECTION=1.2.MIME/;PARTIAL=0.1024
 *
 * Only this relative form is accepted. A URL with a scheme and an authority (imap://user@host/…)
 * names a server and a user that mailmule cannot vouch for being itself and this session's user,
 * and URLAUTH (;EXPIRE=, ;URLAUTH=) is not offered: both are refused as BADURL, which RFC 4469
 * section 5 allows for any URL the server cannot resolve.
 *
 * Pure parsing: whether the mailbox, UID and section exist is for the caller (on-catenate.ts).
 */

/** A section as imap-core's FETCH hands it to getQueryResponse (commands/fetch.js): path '1.2' or '', type 'content', 'header', … */
export interface UrlSection {
    path: string;
    type: 'content' | 'header' | 'text' | 'mime' | 'header.fields' | 'header.fields.not';
    /** Lower-cased field names, for header.fields and header.fields.not. */
    headers?: string[];
}

export interface MessagePartUrl {
    /** The mailbox name, percent-decoded as UTF-8 (RFC 5092 section 3.3); INBOX in upper case. */
    mailbox: string;
    uidValidity?: number;
    uid: number;
    /** Absent: the whole message. */
    section?: UrlSection;
    /** RFC 5092 ;PARTIAL=offset[.length]: length absent means to the end. */
    partial?: { offset: number; length?: number };
}

/** RFC 3501 nz-number: 1 to 2^32-1, no leading zero. */
function nzNumber(text: string): number | null {
    if (!/^[1-9][0-9]{0,9}$/.test(text)) return null;
    const value = Number(text);
    return value <= 0xffffffff ? value : null;
}

/** RFC 3501 number: 0 to 2^32-1. */
function number(text: string): number | null {
    return text === '0' ? 0 : nzNumber(text);
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * RFC 5092 bchar (RFC 3986 unreserved, %XX, and & = : @ /) percent-decoded as UTF-8. Null for
 * any other character (";" "?" "#" must be escaped inside a name), a broken escape, or bytes that
 * are not UTF-8.
 */
function decodeBchars(text: string): string | null {
    if (!text || !/^(?:[A-Za-z0-9\-._~!$'()*+,&=:@/]|%[0-9A-Fa-f]{2})+$/.test(text)) return null;
    const bytes: number[] = [];
    for (let i = 0; i < text.length; i++) {
        if (text[i] === '%') {
            bytes.push(parseInt(text.slice(i + 1, i + 3), 16));
            i += 2;
        } else {
            bytes.push(text.charCodeAt(i));
        }
    }
    try {
        return strictUtf8.decode(Uint8Array.from(bytes));
    } catch {
        return null;
    }
}

/** A header-fld-name (RFC 3501 9: astring): an atom or a quoted string, without the specials an atom excludes. */
function headerNames(list: string): string[] | null {
    const names: string[] = [];
    const pattern = /\s*(?:"((?:[^"\\]|\\["\\])*)"|([^\s()"{%*\\\]]+))/y;
    let match: RegExpExecArray | null;
    let pos = 0;
    while (pos < list.length && (match = pattern.exec(list))) {
        const name = match[1] !== undefined ? match[1].replace(/\\(.)/g, '$1') : match[2];
        if (!name) return null;
        names.push(name.toLowerCase());
        pos = pattern.lastIndex;
    }
    return pos === list.length && names.length ? names : null;
}

/** RFC 3501 section-spec (the text between BODY[ and ]); null when it is not one. */
export function parseSection(text: string): UrlSection | null {
    const match = /^((?:[1-9][0-9]*)(?:\.[1-9][0-9]*)*)?(?:^|\.|$)(.*)$/s.exec(text);
    if (!match) return null;
    const path = match[1] ?? '';
    const rest = match[2];
    if (!rest) {
        // A bare part number (the whole message is no section at all).
        return path ? { path, type: 'content' } : null;
    }
    if (path && text.charAt(path.length) !== '.') return null;
    const upper = rest.toUpperCase();
    if (upper === 'HEADER' || upper === 'TEXT') return { path, type: upper === 'HEADER' ? 'header' : 'text' };
    if (upper === 'MIME') return path ? { path, type: 'mime' } : null;
    const fields = /^HEADER\.FIELDS(\.NOT)? ?\((.*)\)$/is.exec(rest);
    if (fields) {
        const headers = headerNames(fields[2]);
        if (!headers) return null;
        return { path, type: fields[1] ? 'header.fields.not' : 'header.fields', headers };
    }
    return null;
}

/** Parses a CATENATE URL part; null for anything this server will not resolve (answered BADURL). */
export function parseImapUrl(url: string): MessagePartUrl | null {
    // iabsolute-path only: "//host" is a network path, "imap:" a scheme.
    if (!url.startsWith('/') || url.startsWith('//')) return null;
    // The mailbox runs up to its first ";" (which a name must escape): ";UIDVALIDITY=" or "/;UID=".
    const rest = url.slice(1);
    const semicolon = rest.indexOf(';');
    if (semicolon < 0) return null;
    let mailboxText = rest.slice(0, semicolon);
    let params = rest.slice(semicolon);
    let uidValidity: number | undefined;
    if (mailboxText.endsWith('/')) {
        mailboxText = mailboxText.slice(0, -1);
        params = '/' + params;
    } else {
        const validity = /^;UIDVALIDITY=([0-9]+)(?=\/)/i.exec(params);
        if (!validity) return null;
        const value = nzNumber(validity[1]);
        if (value === null) return null;
        uidValidity = value;
        params = params.slice(validity[0].length);
    }
    let mailbox = decodeBchars(mailboxText);
    if (!mailbox) return null;
    if (/^inbox(?:\/|$)/i.test(mailbox)) mailbox = 'INBOX' + mailbox.slice(5);

    // "/;UID=n" then optional "/;SECTION=…" and "/;PARTIAL=…", each starting at "/;" (enc-section may hold "/").
    const fields = params.split(/\/;/);
    if (fields[0] !== '') return null;
    const [, uidField, ...more] = fields;
    const uidMatch = /^UID=(.*)$/is.exec(uidField ?? '');
    const uid = uidMatch ? nzNumber(uidMatch[1]) : null;
    if (uid === null) return null;
    const result: MessagePartUrl = { mailbox, uid };
    if (uidValidity !== undefined) result.uidValidity = uidValidity;

    let next = more.shift();
    const sectionMatch = next !== undefined ? /^SECTION=(.*)$/is.exec(next) : null;
    if (sectionMatch) {
        const decoded = decodeBchars(sectionMatch[1]);
        const section = decoded === null ? null : parseSection(decoded);
        if (!section) return null;
        result.section = section;
        next = more.shift();
    }
    const partialMatch = next !== undefined ? /^PARTIAL=([0-9]+)(?:\.([0-9]+))?$/i.exec(next) : null;
    if (partialMatch) {
        const offset = number(partialMatch[1]);
        const length = partialMatch[2] === undefined ? undefined : nzNumber(partialMatch[2]);
        if (offset === null || length === null) return null;
        result.partial = length === undefined ? { offset } : { offset, length };
        next = more.shift();
    }
    // Anything left (;EXPIRE=, ;URLAUTH=, a repeated field, junk) is not resolved.
    return next === undefined ? result : null;
}
