/**
 * FETCH's plan: what a command's query asks for, worked out once before any message is read
 * (which columns the store reads, which items are read directly, how big a page is). Pure: no
 * store, no session.
 */
import { selectSummaryFields, summaryFieldsValue, type FetchColumns, type FetchedMessage, type HeaderSummary } from '../store';
import { isBinary } from './fetch-binary';
import { metadataLineWriter, type QueryItem } from './fetch-response';

export interface FetchOptions {
    messages: number[];
    query: QueryItem[];
    markAsSeen?: boolean;
    metadataOnly?: boolean;
    changedSince?: number;
    isUid?: boolean;
    flagsExist?: boolean;
    envelopeExist?: boolean;
    bodystructureExist?: boolean;
}

/**
 * Messages per page. Small enough that a page's objects (its rows, header values, compiled
 * lines) die young: everything a page allocates stays reachable until the page is written, and
 * a page that allocates about as much as the young generation holds (2 MB, the systemd unit's
 * --max-semi-space-size) lives through two scavenges and is promoted whole. At 250 messages, a
 * `UID FETCH 1:*` of 10,000 header fields promoted 11 MB, and every such command ended in a
 * full mark-compact (10–40 ms, often paid by the next commands); at 100 or 50, about 1 MB, and
 * one full collection in five or six such sessions (bench/imap.ts steps 3 and 4,
 * `--trace-gc-nvp`); 100 pays a page's fixed costs (two queries, a turn of the event loop) half
 * as often. It also bounds what a page of whole messages holds: 100 × INLINE_BODY_MAX.
 */
const PAGE_SIZE = 100;
/**
 * Messages per page when the page comes from the mailbox index alone and every line is written
 * directly (FLAGS, UID, MODSEQ, RFC822.SIZE, INTERNALDATE): about 1 µs of work and 0.5 KB
 * allocated per message, so a page still ends within a few milliseconds, and a page's fixed
 * costs (the index's state query, a socket write, a turn of the event loop, and a wait for
 * 'drain' when the client reads slower than this writes) are paid 4 times for a 10,000-message
 * `1:*` instead of 10. Pages of 1,000 promoted less (0.7 MB against 2.6 MB per such command),
 * but at 50,000 messages `UID FETCH 1:* (FLAGS)` took 2.16× Dovecot's time with them against
 * 1.68× with 2,500 (bench:imap, one run each in the same hour; daemon CPU 41.6 against 36.3 ms).
 */
const INDEX_PAGE_SIZE = 2500;
const ROOT_HEADER_TYPES = new Set(['header', 'header.fields', 'header.fields.not']);

function isWholeMessage(item: QueryItem): boolean {
    return item.item === 'rfc822' || (item.item === 'body' && item.path === '' && item.type === 'content');
}

/** A root HEADER.FIELDS whose fields are all in the header summary (header-summary.ts). */
function summaryCovers(item: QueryItem & { headers?: string[] }): boolean {
    return item.item === 'body' && item.path === '' && item.type === 'header.fields' && selectSummaryFields(item.headers ?? []).covered;
}

/** For metadataLineWriter: BODY[HEADER.FIELDS (…)] of the root from the header summary; null for a message without one. */
function summaryLiteral(item: QueryItem & { headers?: string[] }): ((message: FetchedMessage) => string | null) | null {
    if (!(item.item === 'body' && item.path === '' && item.type === 'header.fields' && !item.partial)) return null;
    const selection = selectSummaryFields(item.headers ?? []);
    return message => (message.headerSummary ? summaryFieldsValue(message.headerSummary, selection) : null);
}

function isRootHeader(item: QueryItem): boolean {
    return item.item === 'rfc822.header' || (item.item === 'body' && item.path === '' && ROOT_HEADER_TYPES.has(item.type ?? ''));
}

function needsTree(item: QueryItem): boolean {
    return (item.item === 'body' || item.item === 'rfc822.text') && !isWholeMessage(item) && !isRootHeader(item);
}

export interface FetchRecord {
    uid: number;
    modseq: number;
    flags: string[];
    idate: Date;
    size: number;
    mimeTree?: { header?: string[] };
    headerSummary?: HeaderSummary | null;
}

/**
 * BODY[HEADER], BODY[HEADER.FIELDS (…)] and BODY[HEADER.FIELDS.NOT (…)] of the root, as
 * imap-core's Indexer.getContents makes them (indexer.js), with the field name of each line
 * found by indexOf instead of splitting the whole (often long, folded) line at every colon.
 */
function rootHeaderValue(item: QueryItem & { headers?: string[] }, lines: string[] | undefined): string {
    const all = lines || [];
    if (item.item === 'rfc822.header' || item.type === 'header') {
        return headerBlock(all);
    }
    const wanted = item.type === 'header.fields';
    if (!item.headers || !item.headers.length) {
        return wanted ? '\r\n' : headerBlock(all);
    }
    const keys = new Set(item.headers);
    const out: string[] = [];
    for (const line of all) {
        const colon = line.indexOf(':');
        const key = (colon < 0 ? line : line.slice(0, colon)).toLowerCase().trim();
        if (keys.has(key) === wanted) out.push(line);
    }
    return headerBlock(out);
}

/**
 * The UIDs in ascending order without repeats. imap-core hands them over that way (resolved
 * against the session's ascending UID list), so the list is only checked, not copied through a
 * Set and sorted (10,000 entries for a 1:* fetch).
 */
export function ascendingUnique(uids: number[]): number[] {
    for (let index = 1; index < uids.length; index++) {
        if (!(uids[index - 1] < uids[index])) return [...new Set(uids)].sort((a, b) => a - b);
    }
    return uids;
}

/** Header lines as a header section: each line ends in CRLF, then the empty line; no lines is the empty line alone (RFC 5322 2.1). */
function headerBlock(lines: string[]): string {
    return lines.length ? lines.join('\r\n') + '\r\n\r\n' : '\r\n';
}

/**
 * For items whose value is a field of the message (or its root header), a function that reads it
 * as imap-core's getQueryResponse would (imap-tools.js), without building an Indexer and walking
 * the whole query for every message. Null for everything else (ENVELOPE, BODYSTRUCTURE, BODY,
 * sections of parts, partial ranges), which goes through getQueryResponse.
 */
function directReader(item: QueryItem & { headers?: string[] }, fromSummary: boolean): ((record: FetchRecord) => unknown) | null {
    if (fromSummary && item.item === 'body' && item.type === 'header.fields' && item.path === '' && !item.partial) {
        const selection = selectSummaryFields(item.headers ?? []);
        return record => (record.headerSummary ? summaryFieldsValue(record.headerSummary, selection) : rootHeaderValue(item, record.mimeTree?.header));
    }
    switch (item.item) {
        case 'uid':
            return record => record.uid;
        case 'modseq':
            return record => record.modseq;
        case 'flags':
            return record => record.flags;
        case 'internaldate':
            return record => record.idate;
        case 'rfc822.size':
            // getQueryResponse falls back to measuring the tree when size is 0; callers check size first.
            return record => record.size;
        case 'rfc822.header':
            return record => rootHeaderValue(item, record.mimeTree?.header);
        case 'body':
            if (isRootHeader(item) && !item.partial) {
                return record => rootHeaderValue(item, record.mimeTree?.header);
            }
            return null;
        default:
            return null;
    }
}

/** What one FETCH command asks for, worked out once from its query before any message is read. */
export interface FetchPlan {
    query: QueryItem[];
    markAsSeen: boolean;
    /** Items that are the whole message (BODY[], RFC822), by position in the query. */
    wholeIndexes: Set<number>;
    /** BINARY[...] and BINARY.SIZE[...] items: decoded here (fetch-binary.ts). */
    binaryIndexes: Set<number>;
    /** The items getQueryResponse answers (neither whole messages nor BINARY). */
    treeQuery: QueryItem[];
    /** Every item is a message field, a root header or a whole message: read without getQueryResponse. */
    direct: boolean;
    readers: (((record: FetchRecord) => unknown) | null)[];
    needsSize: boolean;
    wantsFlags: boolean;
    needsDate: boolean;
    columns: FetchColumns;
    /** FLAGS, UID, MODSEQ, RFC822.SIZE, INTERNALDATE and summary header fields only: each line written directly. */
    writeLine: ((seq: number, message: FetchedMessage, flags: string[]) => string | null) | null;
    pageSize: number;
}

export function planFetch(options: FetchOptions): FetchPlan {
    const query = options.query;
    const markAsSeen = Boolean(options.markAsSeen);
    const wholeIndexes = new Set<number>();
    const binaryIndexes = new Set<number>();
    for (let index = 0; index < query.length; index++) {
        if (isWholeMessage(query[index])) wholeIndexes.add(index);
        else if (isBinary(query[index])) binaryIndexes.add(index);
    }
    const treeQuery = query.filter((_item, index) => !wholeIndexes.has(index) && !binaryIndexes.has(index));
    const fullTree = treeQuery.some(needsTree) || binaryIndexes.size > 0;
    const headersOnly = !fullTree && treeQuery.some(isRootHeader);
    // Root header fields that clients list folders by come from the stored header summary (header-summary.ts).
    const fromSummary = headersOnly && treeQuery.every(item => !isRootHeader(item) || summaryCovers(item));
    const readers = query.map(item => directReader(item, fromSummary));
    const direct = query.every((_item, index) => wholeIndexes.has(index) || readers[index]);
    const columns: FetchColumns = {
        envelope: Boolean(options.envelopeExist),
        bodystructure: Boolean(options.bodystructureExist),
        mimeTree: fullTree,
        headerLines: headersOnly && !fromSummary,
        headerSummary: fromSummary
    };
    const writeLine = !wholeIndexes.size && !binaryIndexes.size ? metadataLineWriter<FetchedMessage>(query, fromSummary ? summaryLiteral : undefined) : null;
    return {
        query,
        markAsSeen,
        wholeIndexes,
        binaryIndexes,
        treeQuery,
        direct,
        readers,
        needsSize: query.some(item => item.item === 'rfc822.size'),
        wantsFlags: query.some(item => item.item === 'flags'),
        // A Date per message only when something reads it (10,000 of them for nothing in a FLAGS fetch).
        needsDate: !direct || binaryIndexes.size > 0 || query.some(item => item.item === 'internaldate'),
        columns,
        writeLine,
        pageSize: writeLine && !markAsSeen && !columns.headerLines && !columns.headerSummary ? INDEX_PAGE_SIZE : PAGE_SIZE
    };
}
