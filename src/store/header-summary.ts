/**
 * The header summary: the lines of a message's root header that mail clients ask for when they
 * list a folder (`BODY.PEEK[HEADER.FIELDS (From To Subject …)]`), kept per message in UID order
 * (table message_headers, schema migration 12) as Dovecot keeps them in its cache file, so that
 * a `UID FETCH 1:*` of them reads one short row per message in order instead of the whole header.
 *
 * A summary is the root header lines of those fields, exactly as imap-core's parser gives them
 * (folded lines joined with CRLF: see rootHeaderLines), in the order of the message, joined with
 * CRLF, and a bit mask of which of LIST_HEADER_FIELDS occur in it. Requests for other fields, or
 * for the whole header, read the header of the message file.
 *
 * Changing LIST_HEADER_FIELDS changes the meaning of the stored masks: it needs a migration that
 * empties message_headers (start-up fills it again, see fillHeaderSummaries).
 */

/**
 * The fields (lower case) that Thunderbird, K-9, mutt, Roundcube, Apple Mail and Evolution ask
 * for in their message lists, at most 31 (one bit each in a positive 32-bit integer).
 */
export const LIST_HEADER_FIELDS: readonly string[] = [
    'from',
    'to',
    'cc',
    'bcc',
    'subject',
    'date',
    'message-id',
    'references',
    'in-reply-to',
    'content-type',
    'reply-to',
    'sender',
    'priority',
    'x-priority',
    'importance',
    'newsgroups',
    'list-post',
    'list-id',
    'list-unsubscribe',
    'list-subscribe',
    'delivered-to',
    'x-original-to',
    'disposition-notification-to',
    'mime-version',
    'content-description',
    'x-label',
    'x-k9mail-identity',
    'chat-version',
    'x-uniform-type-identifier',
    'x-universally-unique-identifier',
    'lines'
];

const FIELD_BITS = new Map(LIST_HEADER_FIELDS.map((name, index) => [name, 1 << index]));

/** A message's summary: which fields it has (bits of LIST_HEADER_FIELDS) and their lines joined with CRLF. */
export interface HeaderSummary {
    fields: number;
    lines: string;
}

/** The field name of a header line as imap-core matches it against HEADER.FIELDS (indexer.js getContents). */
export function fieldNameOf(line: string): string {
    const colon = line.indexOf(':');
    return (colon < 0 ? line : line.slice(0, colon)).toLowerCase().trim();
}

/** The summary of a root header given as imap-core's lines. */
export function summariseHeader(lines: readonly string[]): HeaderSummary {
    let fields = 0;
    const kept: string[] = [];
    for (const line of lines) {
        const bit = FIELD_BITS.get(fieldNameOf(line));
        if (bit !== undefined) {
            fields |= bit;
            kept.push(line);
        }
    }
    return { fields, lines: kept.join('\r\n') };
}

/**
 * A HEADER.FIELDS request compiled against the summary: `mask` has the bit of every requested
 * field; `covered` is false when a requested field is not in the summary (the whole header must
 * be read then).
 */
export interface SummarySelection {
    readonly mask: number;
    readonly covered: boolean;
    readonly names: ReadonlySet<string>;
    /** The distinct names, to walk without an iterator (isSelected). */
    readonly nameList: readonly string[];
}

/** Compiles the (lower-case) field names of a HEADER.FIELDS request. */
export function selectSummaryFields(names: readonly string[]): SummarySelection {
    let mask = 0;
    let covered = true;
    for (const name of names) {
        const bit = FIELD_BITS.get(name);
        if (bit === undefined) covered = false;
        else mask |= bit;
    }
    const distinct = new Set(names);
    return { mask, covered, names: distinct, nameList: [...distinct] };
}

/**
 * BODY[HEADER.FIELDS (…)] of a message from its summary, for a covered selection: the same bytes
 * as imap-core's getContents gives from the whole header (lines of the requested fields in the
 * message's order, each ending in CRLF, then an empty line; no line at all is CRLF alone).
 */
export function summaryFieldsValue(summary: HeaderSummary, selection: SummarySelection): string {
    return summaryFieldsPieces(summary, selection).join('');
}

/**
 * summaryFieldsValue in pieces, for a response written piece by piece (a folder listing's 1:*
 * fetch answers 10,000 messages): runs of consecutive wanted lines are slices of the stored
 * text, the separators and the empty line are constants, and a line's field name is compared
 * where it stands, so nothing else is built per line.
 */
export function summaryFieldsPieces(summary: HeaderSummary, selection: SummarySelection): string[] {
    if (!(summary.fields & selection.mask)) return ['\r\n'];
    // Every field the message has was asked for: the stored lines are the answer as they are.
    if (!(summary.fields & ~selection.mask)) return [summary.lines, '\r\n\r\n'];
    const text = summary.lines;
    const out: string[] = [];
    // The run of wanted lines being collected: from runStart to runEnd (-1: none).
    let runStart = -1;
    let runEnd = -1;
    const endRun = () => {
        if (runStart < 0) return;
        if (out.length) out.push('\r\n');
        out.push(text.slice(runStart, runEnd));
        runStart = -1;
    };
    for (let start = 0; start <= text.length;) {
        const end = summaryLineEnd(text, start);
        if (isSelected(text, start, end, selection)) {
            if (runStart < 0) runStart = start;
            runEnd = end;
        } else {
            endRun();
        }
        start = end + 2;
    }
    endRun();
    if (!out.length) return ['\r\n'];
    out.push('\r\n\r\n');
    return out;
}

/** Where the summary line starting at `start` ends: the CRLF not followed by white space (splitSummaryLines), or the end. */
function summaryLineEnd(text: string, start: number): number {
    let from = start;
    for (;;) {
        const at = text.indexOf('\r\n', from);
        if (at < 0) return text.length;
        if (!isWhiteSpace(text, at + 2)) return at;
        from = at + 2;
    }
}

/** WHITE_SPACE.test(text.charAt(index)) without making the character a string. */
function isWhiteSpace(text: string, index: number): boolean {
    if (index >= text.length) return false;
    const code = text.charCodeAt(index);
    if (code < 128) return code === 32 || (code >= 9 && code <= 13);
    return code === 160 || (code > 255 && WHITE_SPACE.test(text.charAt(index)));
}

/**
 * Whether the line text[start, end) is of a field in `selection` (selection.names has its
 * fieldNameOf), compared in place: names in a covered selection are ASCII, which a name matches
 * only if it is ASCII too, so lower-casing A-Z is all of toLowerCase that can matter. Anything
 * unusual (a non-ASCII name) goes through fieldNameOf.
 */
function isSelected(text: string, start: number, end: number, selection: SummarySelection): boolean {
    const colon = text.indexOf(':', start);
    let nameEnd = colon < 0 || colon > end ? end : colon;
    let nameStart = start;
    while (nameStart < nameEnd && isWhiteSpace(text, nameStart)) nameStart++;
    while (nameEnd > nameStart && isWhiteSpace(text, nameEnd - 1)) nameEnd--;
    const length = nameEnd - nameStart;
    for (const name of selection.nameList) {
        if (name.length !== length) continue;
        let index = 0;
        for (; index < length; index++) {
            let code = text.charCodeAt(nameStart + index);
            if (code >= 128) return selection.names.has(fieldNameOf(text.slice(start, end)));
            if (code >= 65 && code <= 90) code += 32;
            if (code !== name.charCodeAt(index)) break;
        }
        if (index === length) return true;
    }
    return false;
}

/**
 * The lines of a stored summary. A CRLF inside a line is always followed by white space (it joins
 * a folded line, see rootHeaderLines), so a CRLF followed by anything else starts the next line.
 */
export function splitSummaryLines(text: string): string[] {
    if (!text) return [];
    const out: string[] = [];
    let start = 0;
    let from = 0;
    for (;;) {
        const at = text.indexOf('\r\n', from);
        if (at < 0) break;
        if (!WHITE_SPACE.test(text.charAt(at + 2))) {
            out.push(text.slice(start, at));
            start = at + 2;
        }
        from = at + 2;
    }
    out.push(text.slice(start));
    return out;
}

/** What imap-core's parser takes for the start of a folded line (parse-mime-tree.js processNodeHeader: /^\s/). */
const WHITE_SPACE = /^\s/;

/**
 * The root header lines of a raw message (or of its start, if it holds the whole header) as
 * imap-core's parser makes them (parse-mime-tree.js): the message as a binary string split into
 * lines at CRLF, LF (after any CRs) or a lone CR; the header ends at the first empty line (or the
 * end); a line that starts with white space is joined to the one before with CRLF. `complete` is
 * false when `raw` ended before the header did and more of the message follows.
 */
export function rootHeaderLines(raw: Buffer, isWholeMessage: boolean): { lines: string[]; complete: boolean } {
    const text = raw.toString('latin1');
    const lines: string[] = [];
    let position = 0;
    let complete = false;
    while (position <= text.length) {
        // The line runs to the first CR or LF.
        let end = position;
        while (end < text.length) {
            const code = text.charCodeAt(end);
            if (code === 10 || code === 13) break;
            end++;
        }
        const line = text.slice(position, end);
        if (!line && end < text.length) {
            // An empty line (whatever its line break) ends the header.
            complete = true;
            break;
        }
        if (end >= text.length) {
            // The last line has no line break: only the whole message ends it.
            if (!isWholeMessage) break;
            if (line) lines.push(line);
            complete = true;
            break;
        }
        // The line break: CRs then LF, or a lone CR (readLine's /\r*\n|\r(?!\n)/).
        let next = end;
        while (next < text.length && text.charCodeAt(next) === 13) next++;
        if (next < text.length && text.charCodeAt(next) === 10) next++;
        else if (next === text.length && !isWholeMessage) break;
        else next = end + 1;
        lines.push(line);
        position = next;
    }
    // Folded lines, joined as processNodeHeader does (from the end, so a run of them joins in order).
    for (let index = lines.length - 1; index > 0; index--) {
        if (WHITE_SPACE.test(lines[index])) {
            lines[index - 1] = lines[index - 1] + '\r\n' + lines[index];
            lines.splice(index, 1);
        }
    }
    return { lines, complete: complete || isWholeMessage };
}
