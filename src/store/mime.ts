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
import { summariseHeader, type HeaderSummary } from './header-summary';

/** Leaf bodies larger than this are served from the message file instead of the stored tree. */
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

function buildSearchHeaders(headerLines: string[]): string {
    const out: string[] = [];
    for (const line of headerLines) {
        const colon = line.indexOf(':');
        if (colon <= 0) {
            continue;
        }
        const key = line.slice(0, colon).trim().toLowerCase();
        const value = Buffer.from(line.slice(colon + 1), 'binary')
            .toString('utf8')
            .replace(/\r?\n[ \t]*/g, ' ')
            .trim();
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
 * Replaces large leaf bodies with `r:<offset>:<length>` references into `raw`, searching forward
 * from the previous body so identical attachments map to their own positions. A body that does
 * not occur verbatim in raw (the parser normalised its line endings) stays in the tree.
 */
function detachBodies(tree: MimeNode, raw: Buffer): void {
    let cursor = 0;
    const walk = (node: MimeNode): void => {
        if (Buffer.isBuffer(node.body) && node.body.length > DETACH_THRESHOLD && !node.childNodes?.length && !node.message) {
            const offset = raw.indexOf(node.body, cursor);
            if (offset >= 0) {
                cursor = offset + node.body.length;
                node.attachmentId = `r:${offset}:${node.body.length}`;
                node.body = false;
            }
        }
        for (const child of node.childNodes ?? []) {
            walk(child);
        }
        if (node.message) {
            walk(node.message);
        }
    };
    walk(tree);
}

/**
 * Decoded text of the text parts (charset, QP/base64, HTML to text), via imap-core's getMaildata.
 * getMaildata detaches bodies from the tree as a side effect; they are put back afterwards.
 */
function textOf(tree: MimeNode): string {
    let maildata: { text?: string; nodes?: { attachmentId: string; body: Buffer }[] };
    try {
        maildata = loadParsers().indexer.getMaildata(tree);
    } catch {
        return '';
    }
    const bodies = new Map((maildata.nodes ?? []).map(node => [node.attachmentId, node.body]));
    const restore = (node: MimeNode): void => {
        if (node.attachmentId && bodies.has(node.attachmentId)) {
            node.body = bodies.get(node.attachmentId);
            delete node.attachmentId;
        }
        node.childNodes?.forEach(restore);
        if (node.message) {
            restore(node.message);
        }
    };
    restore(tree);
    return String(maildata.text || '');
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
