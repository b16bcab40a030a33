/**
 * Turns a raw RFC 5322 message into what the store keeps beside it: the MIME tree that FETCH
 * answers from, the cached ENVELOPE and BODYSTRUCTURE, and lower-cased text for SEARCH.
 *
 * Parsing is imap-core's own Indexer, so what we store is exactly what its FETCH code expects.
 * Large leaf bodies are not kept in the tree: they are replaced by a byte range of the raw
 * message file, and FETCH streams them from disk (see MessageFiles.createRangeStream in message-files.ts).
 *
 * The parsers (imap-core's Indexer with html-to-text, libmime with its charset tables) are loaded
 * on the first message analysed, not when the store is: `mailmule status`, `queue` and `users`
 * open the store only to read rows, and loading them cost about 0.2 s of each command's start.
 */
import crypto from 'node:crypto';
import type Indexer from '@zone-eu/wildduck/imap-core/lib/indexer/indexer';
import type addressparserFn from 'nodemailer/lib/addressparser';
import { isDeepStrictEqual } from 'node:util';
import { rootHeaderLines, summariseHeader, type HeaderSummary } from './header-summary';
import { searchBodyText } from './search-body';

/**
 * Leaf bodies larger than this were served from the message file before bodies were located exactly
 * (see detachBodies); every leaf body found in the message now is, whatever its size.
 */
export const DETACH_THRESHOLD = 8 * 1024;

/** How much decoded body text is kept for BODY/TEXT search per message. */
const MAX_SEARCH_BODY = 256 * 1024;

export interface AnalysedMessage {
    hash: string;
    size: number;
    mimeTree: MimeNode;
    envelope: unknown[];
    bodystructure: unknown[];
    /** The root header block as raw lines (folded lines joined), for header-only FETCH without the tree. */
    headerLines: string[];
    /** The root header's lines of the fields clients list folders by (header-summary.ts). */
    headerSummary: HeaderSummary;
    /**
     * Whether the message file's header, read back (header-summary.ts rootHeaderLines), gives the
     * tree's root header lines exactly: then the stored tree leaves them out (blob-rows.ts storedTree).
     */
    rootHeaderInFile: boolean;
    /** "name: decoded value" per header line, lower-cased, one per line. */
    searchHeaders: string;
    /** Decoded text of the text parts, lower-cased. */
    searchBody: string;
    messageId: string | null;
    /** Date header in ms, or null when missing or unparsable. */
    sentDate: number | null;
    /**
     * The day the Date header names, in its own time zone, as UTC midnight in ms: SENTON and
     * friends disregard time and time zone (RFC 3501 6.4.4), so 23:30 -0500 on 1 Jan is 1 Jan.
     */
    sentDay: number | null;
}

/** A Content-Type or Content-Disposition as imap-core's indexer parses it. */
export interface ParsedHeaderParams {
    value: string;
    type: string;
    subtype: string;
    params: Record<string, string>;
    hasParams?: boolean;
}

/** imap-core's parsed header: each field by its lower-case name; a repeated field as a list of its values. */
export type ParsedHeader = Record<string, string | string[] | ParsedHeaderParams | undefined>;

export interface MimeNode {
    header: string[];
    parsedHeader: ParsedHeader;
    body?: Buffer | false;
    size?: number;
    lineCount?: number;
    childNodes?: MimeNode[];
    message?: MimeNode;
    multipart?: boolean | string;
    boundary?: string | false;
    attachmentId?: string;
    rootNode?: boolean;
    attachmentMap?: Record<string, string>;
}

interface Parsers {
    indexer: InstanceType<typeof Indexer>;
    libmime: typeof import('libmime');
    addressparser: typeof addressparserFn;
}

let parsers: Parsers | undefined;

/** The parsers, loaded once, on first use (see the header). */
function loadParsers(): Parsers {
    if (!parsers) {
        /* eslint-disable @typescript-eslint/no-require-imports */
        const IndexerClass: typeof Indexer = require('@zone-eu/wildduck/imap-core/lib/indexer/indexer');
        const libmime = require('libmime') as typeof import('libmime');
        const addressparser = require('nodemailer/lib/addressparser') as typeof addressparserFn;
        /* eslint-enable @typescript-eslint/no-require-imports */
        parsers = { indexer: new IndexerClass({}), libmime, addressparser };
    }
    return parsers;
}

export function hashRaw(raw: Buffer): string {
    return crypto.createHash('sha256').update(raw).digest('hex');
}

function decodeHeaderValue(value: string): string {
    // Without "=?" (and its join marker, which holds a NUL) there is no encoded word, and decodeWords' five passes return the value unchanged.
    if (!value.includes('=?') && !value.includes('\x00')) return value;
    try {
        return loadParsers().libmime.decodeWords(value);
    } catch {
        return value;
    }
}

/** Header fields whose value is an address list (RFC 5322 3.6.2, 3.6.3). */
const ADDRESS_HEADERS = new Set(['from', 'sender', 'reply-to', 'to', 'cc', 'bcc', 'resent-from', 'resent-sender', 'resent-to', 'resent-cc', 'resent-bcc']);

/**
 * The addresses of an address-list header as parsed ("user@domain.org", group members included).
 * SEARCH FROM user@domain.org must find `<user (comment)@ (comment) domain.org>` too: comments
 * and folding white space are not part of the address (RFC 5322 3.4.1), so the raw text alone
 * does not contain it.
 */
function parsedAddresses(value: string): string[] {
    const out: string[] = [];
    const walk = (entries: { address?: string; group?: unknown[] }[]): void => {
        for (const entry of entries) {
            if (entry.group) walk(entry.group as { address?: string; group?: unknown[] }[]);
            else if (entry.address) out.push(entry.address);
        }
    };
    try {
        walk(loadParsers().addressparser(value));
    } catch {
        // unparsable: the raw text is all there is to search
    }
    return out;
}

const NON_ASCII = /[^\x00-\x7f]/;

function buildSearchHeaders(headerLines: string[]): string {
    const out: string[] = [];
    for (const line of headerLines) {
        const colon = line.indexOf(':');
        if (colon <= 0) {
            continue;
        }
        const key = line.slice(0, colon).trim().toLowerCase();
        const raw = line.slice(colon + 1);
        // The line holds the header's bytes one per character: UTF-8 read from them, unless they are all ASCII (then the same).
        const value = (NON_ASCII.test(raw) ? Buffer.from(raw, 'binary').toString('utf8') : raw).replace(/\r?\n[ \t]*/g, ' ').trim();
        let text = decodeHeaderValue(value);
        if (ADDRESS_HEADERS.has(key)) {
            // Appended after the raw text, so a substring search of the text as written still matches as before.
            const missing = parsedAddresses(text).filter(address => !text.toLowerCase().includes(address.toLowerCase()));
            if (missing.length) text += ' ' + missing.join(' ');
        }
        out.push(`${key}: ${text}`.toLowerCase());
    }
    return out.join('\n');
}

/**
 * A node as imap-core's parser gives it: `bodyOffset` is where the node's body starts in the input
 * the parser was given (patch 104, mime-node-body-offset), in bytes, as analyse gives it a Buffer.
 * The parts of a message/rfc822 part count from the start of that part's body, which the parser
 * parses on its own. detachBodies removes it, so stored trees do not hold it.
 */
type ParsedNode = MimeNode & { bodyOffset?: number };

/**
 * Replaces each leaf body with a reference to its bytes in `raw`: `r:<offset>:<length>` when the
 * body is those bytes, `r:<offset>:<length>:c` when it is those bytes with bare LFs made CRLF (the
 * parser does so for a message stored with LF line ends). The offset is where the parser found the
 * body (its `bodyOffset`, see ParsedNode), and the bytes there are compared with the body before it
 * is dropped: a body that does not match stays in the tree. So the tree keeps no copy of the
 * message's text.
 */
function detachBodies(tree: MimeNode, raw: Buffer): void {
    const walk = (node: ParsedNode, base: number): void => {
        const offset = node.bodyOffset === undefined ? -1 : base + node.bodyOffset;
        delete node.bodyOffset;
        if (Buffer.isBuffer(node.body) && node.body.length && !node.childNodes?.length && !node.message && offset >= 0) {
            const reference = bodyReference(raw, offset, node.body);
            if (reference) {
                node.attachmentId = reference;
                node.body = false;
            }
        }
        for (const child of node.childNodes ?? []) {
            walk(child, base);
        }
        // The parts of a message/rfc822 part were parsed from its body alone.
        if (node.message) {
            walk(node.message, offset >= 0 ? offset : base);
        }
    };
    walk(tree, 0);
}

/** The attachmentId of `body` found at `offset` in `raw` (see detachBodies), or null when the bytes there are not it. */
function bodyReference(raw: Buffer, offset: number, body: Buffer): string | null {
    if (offset + body.length <= raw.length && raw.subarray(offset, offset + body.length).equals(body)) return `r:${offset}:${body.length}`;
    // The body with LFs made CRLF: walk both, an LF in raw standing for CRLF in the body.
    let at = offset;
    for (let index = 0; index < body.length; at++) {
        if (at >= raw.length) return null;
        const byte = raw[at];
        if (byte === body[index]) index++;
        else if (byte === 0x0a && body[index] === 0x0d && body[index + 1] === 0x0a) index += 2;
        else return null;
    }
    return `r:${offset}:${at - offset}:c`;
}

/**
 * The bytes of a detached body (see detachBodies) from the raw bytes its reference points at:
 * those bytes, or, for a `:c` reference, those bytes with each bare LF made CRLF.
 */
export function crlfBody(raw: Buffer): Buffer {
    const text = raw.toString('latin1');
    return Buffer.from(text.replace(/\r?\n/g, '\r\n'), 'latin1');
}

/** Decoded text of the text parts (charset, QP/base64, HTML to text), as imap-core's getMaildata gives it (search-body.ts). */
function textOf(tree: MimeNode): string {
    try {
        return searchBodyText(tree);
    } catch {
        return '';
    }
}

/**
 * A multipart whose boundary is missing or never used has no parts, and imap-core would then
 * answer BODYSTRUCTURE with `(() "MIXED" …)`, which IMAP's grammar forbids (a multipart needs at
 * least one body). Such a node is really one text body: describe it so, which also makes its
 * text searchable.
 */
function demoteEmptyMultiparts(node: MimeNode): void {
    const type = node.parsedHeader?.['content-type'];
    if (typeof type === 'object' && !Array.isArray(type) && type.type === 'multipart' && !node.childNodes?.length) {
        node.parsedHeader['content-type'] = { value: 'text/plain', type: 'text', subtype: 'plain', params: {} };
        node.multipart = false;
        node.boundary = false;
        delete node.childNodes;
    }
    node.childNodes?.forEach(demoteEmptyMultiparts);
    if (node.message) demoteEmptyMultiparts(node.message);
}

/**
 * How deep MIME parts may nest (multipart in multipart, message/rfc822 in either): Dovecot's
 * limit too (message-parser.h, MESSAGE_PARSER_DEFAULT_MAX_NESTED_MIME_PARTS). Real mail stays far
 * below it (a forward of a forward of a reply is a handful of levels). Past it the tree is refused
 * as soon as it is parsed: what comes after walks it recursively, and V8 runs out of stack at a
 * depth that depends on the caller's stack (v8.serialize of the tree, at the store's insert,
 * failed from about 1,500 levels: a file written, then a 451 as if it would go next time).
 */
export const MAX_MIME_DEPTH = 100;

/**
 * A message whose shape is past what can be indexed: MIME parts nested deeper than
 * MAX_MIME_DEPTH, or so deep that the parser's recursion runs out of stack (some 2,000 levels at
 * Node's default stack size), or a value past V8's string or array limits. The same message
 * fails the same way every time, so it is refused for good (SMTP 554, IMAP NO [LIMIT]), not
 * reported as a passing failure.
 */
export class MessageTooComplexError extends Error {
    constructor(cause: unknown) {
        super('message structure exceeds what can be indexed', { cause });
        this.name = 'MessageTooComplexError';
    }
}

export function analyseMessage(raw: Buffer): AnalysedMessage {
    try {
        return analyse(raw);
    } catch (err) {
        // RangeError is how V8 reports a limit passed (call stack, string or array length):
        // thrown while parsing, it comes from this message's content and will come again.
        if (err instanceof RangeError) throw new MessageTooComplexError(err);
        throw err;
    }
}

/** How many levels of parts the tree has (a single-part message: 1); iterative, so any depth can be measured. */
export function mimeDepth(tree: MimeNode): number {
    let deepest = 0;
    const stack: [MimeNode, number][] = [[tree, 1]];
    for (let entry = stack.pop(); entry; entry = stack.pop()) {
        const [node, depth] = entry;
        deepest = Math.max(deepest, depth);
        for (const child of node.childNodes ?? []) stack.push([child, depth + 1]);
        if (node.message) stack.push([node.message, depth + 1]);
    }
    return deepest;
}

function analyse(raw: Buffer): AnalysedMessage {
    const { indexer } = loadParsers();
    const mimeTree: MimeNode = indexer.parseMimeTree(raw);
    const depth = mimeDepth(mimeTree);
    if (depth > MAX_MIME_DEPTH) throw new MessageTooComplexError(new RangeError(`MIME parts nested ${depth} levels deep; the limit is ${MAX_MIME_DEPTH}`));
    demoteEmptyMultiparts(mimeTree);
    const envelope = indexer.getEnvelope(mimeTree);
    const bodystructure = indexer.getBodyStructure(mimeTree);
    const headerLines = [...(mimeTree.header ?? [])];
    const searchHeaders = buildSearchHeaders(headerLines);

    const messageIdRaw = mimeTree.parsedHeader?.['message-id'];
    const messageId = typeof messageIdRaw === 'string' && messageIdRaw.trim() ? normaliseMessageId(messageIdRaw) : null;
    const dateField = mimeTree.parsedHeader?.date;
    const dateRaw = typeof dateField === 'string' ? dateField : '';
    const dateValue = dateRaw ? Date.parse(dateRaw.replace(/\s*\([^)]*\)\s*$/, '')) : NaN;

    const searchBody = textOf(mimeTree).slice(0, MAX_SEARCH_BODY).toLowerCase();
    detachBodies(mimeTree, raw);

    return {
        hash: hashRaw(raw),
        size: raw.length,
        mimeTree,
        envelope,
        bodystructure,
        headerLines,
        headerSummary: summariseHeader(headerLines),
        rootHeaderInFile: isDeepStrictEqual(rootHeaderLines(raw, true).lines, headerLines),
        searchHeaders,
        searchBody,
        messageId,
        sentDate: Number.isFinite(dateValue) ? dateValue : null,
        sentDay: Number.isFinite(dateValue) ? sentDayOf(dateRaw, dateValue) : null
    };
}

function sentDayOf(header: string, instant: number): number {
    const zone = /([+-])(\d{2})(\d{2})\s*(?:\([^)]*\))?\s*$/.exec(header.trim());
    const offset = zone ? (zone[1] === '-' ? -1 : 1) * (Number(zone[2]) * 60 + Number(zone[3])) * 60000 : 0;
    const local = instant + offset;
    return local - (((local % 86400000) + 86400000) % 86400000);
}

/** `<abc@host>` in canonical form for matching across copies. */
export function normaliseMessageId(value: string): string {
    const match = /<[^>]*>/.exec(value);
    return (match ? match[0] : `<${value.trim()}>`).toLowerCase();
}
