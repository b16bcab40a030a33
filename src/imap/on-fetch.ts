/**
 * FETCH and UID FETCH.
 *
 * Whole-message items (BODY[], BODY.PEEK[], RFC822, with or without a partial range) come
 * straight from the stored raw file (read whole up to INLINE_BODY_MAX, streamed beyond), so what
 * a client downloads is byte for byte what was delivered, and RFC822.SIZE is its exact length. Everything else (sections, headers,
 * ENVELOPE, BODYSTRUCTURE) comes from imap-core's getQueryResponse over the stored MIME tree,
 * whose large bodies are themselves byte ranges of the raw file.
 *
 * Only the columns a query needs are read: a FLAGS-only fetch of 10,000 messages never touches
 * a MIME tree, and a header-fields fetch uses the stored root header lines.
 *
 * Costs of a large FETCH kept out of the per-message loop (bench/imap.ts measured them; the
 * bytes on the wire are the same as imap-core's own formatResponse + compiler would write):
 * - the response itself: built and compiled by fetch-response.ts (sequence number by binary
 *   search, item names and flag lists compiled once, simple lines without the generic compiler);
 * - socket writes: one write per message meant one TCP segment per message; responses that
 *   need no stream are compiled and written in batches, and the socket is corked for the tick
 *   so the last batch and the tagged completion leave together (response-batch.ts);
 * - message fields and root header fields are read directly (directReader) instead of through
 *   getQueryResponse.
 */
import { Readable } from 'node:stream';
import { selectSummaryFields, splitSummaryLines, summaryFieldsValue, type FetchColumns, type FetchedMessage, type HeaderSummary } from '../store';
import { imapHandler } from './engine';
import { guarded, type Callback, type ImapContext, type ImapSession } from './context';
import { binaryValue, isBinary, UnknownEncodingError } from './fetch-binary';
import { endOnError } from './end-on-error';
import { compileFetchPieces, fetchResponse, metadataLineWriter, sequenceOf, type QueryItem } from './fetch-response';
import { corkForTick, ResponseBatch } from './response-batch';
import { bindTree, rawFileStorage } from './raw-file-storage';

interface FetchOptions {
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
/**
 * A whole message up to this size is read in one synchronous read and sent as a literal, like any
 * other value: a file stream costs several thread-pool round trips (open, read, close) per
 * message, which made 100 single BODY[] fetches several times slower than Dovecot. Larger
 * messages are streamed from disk.
 */
const INLINE_BODY_MAX = 128 * 1024;
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

interface FetchRecord {
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
function ascendingUnique(uids: number[]): number[] {
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

export function onFetch(ctx: ImapContext) {
    const attachmentStorage = rawFileStorage(ctx);

    /** Message bodies read whole (INLINE_BODY_MAX); they are plain literals, not streams. */
    const inlined = new WeakSet<Buffer>();

    function wholeMessageValue(item: QueryItem, message: FetchedMessage): unknown {
        const size = message.size;
        if (!item.partial) {
            if (!size) return Buffer.alloc(0);
            if (size <= INLINE_BODY_MAX) {
                const raw = ctx.store.messages.readRaw(message.blobHash);
                if (raw.length === size) {
                    inlined.add(raw);
                    return raw;
                }
            }
            return { type: 'stream', value: ctx.store.messages.createRangeStream(message.blobHash, 0, 0), expectedLength: size };
        }
        const startFrom = item.partial.startFrom;
        const maxLength = item.partial.maxLength;
        // As imap-core does for tree-built bodies: past the end, answer <origin> only (RFC 3501 6.4.5).
        if (item.original.partial && item.original.partial.length === 2 && maxLength - startFrom > size) {
            item.original.partial.pop();
        }
        if (startFrom >= size) {
            return Buffer.alloc(0);
        }
        const length = maxLength ? Math.min(maxLength, size - startFrom) : size - startFrom;
        const stream = ctx.store.messages.createRangeStream(message.blobHash, startFrom, length) as NodeJS.ReadableStream & { isLimited?: boolean };
        stream.isLimited = true;
        return { type: 'stream', value: stream, expectedLength: size, startFrom, maxLength: length };
    }

    return (mailboxId: number, options: FetchOptions, session: ImapSession, callback: Callback): void =>
        guarded(ctx, 'fetch', callback, async () => {
            const userId = session.user.id;
            const selected = session.selected;
            if (!selected) {
                return callback(null, 'NONEXISTENT');
            }
            const query = options.query;
            const markAsSeen = Boolean(options.markAsSeen);
            const wholeIndexes = new Set<number>();
            query.forEach((item, index) => isWholeMessage(item) && wholeIndexes.add(index));
            // BINARY[...] and BINARY.SIZE[...] are decoded here (fetch-binary.ts), from the part's body as getQueryResponse streams it.
            const binaryIndexes = new Set<number>();
            query.forEach((item, index) => isBinary(item) && binaryIndexes.add(index));
            const treeQuery = query.filter((_item, index) => !wholeIndexes.has(index) && !binaryIndexes.has(index));
            const fullTree = treeQuery.some(needsTree) || binaryIndexes.size > 0;
            const headersOnly = !fullTree && treeQuery.some(isRootHeader);
            // Root header fields that clients list folders by come from the stored header summary (header-summary.ts).
            const fromSummary = headersOnly && treeQuery.every(item => !isRootHeader(item) || summaryCovers(item));
            // When every item is a message field or a root header, values are read directly (see directReader).
            const readers = query.map(item => directReader(item, fromSummary));
            const direct = query.every((_item, index) => wholeIndexes.has(index) || readers[index]);
            const needsSize = query.some(item => item.item === 'rfc822.size');
            const wantsFlags = query.some(item => item.item === 'flags');
            // A Date per message only when something reads it (10,000 of them for nothing in a FLAGS fetch).
            const needsDate = !direct || binaryIndexes.size > 0 || query.some(item => item.item === 'internaldate');
            const recent = selected.recent && selected.recent.size ? selected.recent : null;
            const columns: FetchColumns = {
                envelope: Boolean(options.envelopeExist),
                bodystructure: Boolean(options.bodystructureExist),
                mimeTree: fullTree,
                headerLines: headersOnly && !fromSummary,
                headerSummary: fromSummary
            };
            const responseOptions = { acceptUTF8Enabled: session.isUTF8Enabled(), attachmentStorage };
            // FLAGS, UID, MODSEQ, RFC822.SIZE, INTERNALDATE and summary header fields only: each line is
            // written directly (the cheapest path, for the 1:* fetches of a folder listing).
            const writeLine = !wholeIndexes.size && !binaryIndexes.size ? metadataLineWriter<FetchedMessage>(query, fromSummary ? summaryLiteral : undefined) : null;
            // Flag lists already announced in this command: the store shares one array among messages with the same flags.
            const announced = new Set<string[]>();
            // The flags of recent messages with \Recent added, one array per stored flags array: line writers look compiled flag lists up by array.
            const withRecent = new Map<string[], string[]>();
            const pageSize = writeLine && !markAsSeen && !columns.headerLines && !columns.headerSummary ? INDEX_PAGE_SIZE : PAGE_SIZE;
            const uids = ascendingUnique(options.messages);
            const names = new Map<QueryItem, string>();

            // Compiled responses waiting to be written, in order; written before any stream and at each page end.
            const batch = new ResponseBatch(session.writeStream);
            const flush = () => {
                corkForTick(session.socket);
                batch.flush();
            };

            for (let start = 0; start < uids.length; start += pageSize) {
                const page = uids.slice(start, start + pageSize);
                const messages = ctx.store.messages.fetchPage(userId, Number(mailboxId), page, columns, options.changedSince || 0);

                if (markAsSeen) {
                    const unseen = messages.filter(message => !message.flags.includes('\\Seen')).map(message => message.uid);
                    if (unseen.length) {
                        // The new flags are in this response (imap-core adds FLAGS when marking seen), so this session skips the journal entry.
                        const result = ctx.store.messages.updateFlags(userId, Number(mailboxId), unseen, 'add', ['\\Seen'], { ignoreSession: session.id });
                        const changed = new Map(result.changes.map(change => [change.uid, change]));
                        messages.forEach((message, index) => {
                            const change = changed.get(message.uid);
                            // A new object: the store's are shared and read-only.
                            if (change) messages[index] = { ...message, flags: change.flags, modseq: change.modseq };
                        });
                    }
                }

                // The session's UID list, read per page: it only changes between commands, never during this one.
                const uidList = selected.uidList;
                let seq = 0;
                // Indexed: a for-of here made an iterator result object per message (the loop runs unoptimised in this async function).
                for (let position = 0; position < messages.length; position++) {
                    const message = messages[position];
                    // The messages come in UID order: this one is most likely right after the last one found.
                    seq = sequenceOf(uidList, message.uid, seq);
                    if (!seq) {
                        // formatResponse would have returned false for a UID the session does not know.
                        continue;
                    }
                    // RFC 3501 2.3.2: \Recent in the one session the message is recent in.
                    let flags = message.flags;
                    if (recent && recent.has(message.uid)) {
                        let shown = withRecent.get(message.flags);
                        if (!shown) {
                            shown = [...message.flags, '\\Recent'];
                            withRecent.set(message.flags, shown);
                        }
                        flags = shown;
                    }
                    if (wantsFlags && !announced.has(message.flags)) {
                        // RFC 3501 7.2.6: a keyword new to this session is announced in FLAGS before the FETCH shows it.
                        session.announceFlags(message.flags);
                        announced.add(message.flags);
                    }
                    const line = writeLine ? writeLine(seq, message, flags) : null;
                    if (line !== null) {
                        batch.addLine(line);
                        continue;
                    }
                    const record: Record<string, unknown> = {
                        uid: message.uid,
                        modseq: message.modseq,
                        flags,
                        idate: needsDate ? new Date(message.idate) : undefined,
                        size: message.size,
                        envelope: message.envelope,
                        bodystructure: message.bodystructure
                    };
                    if (message.mimeTree) {
                        record.mimeTree = bindTree(message.mimeTree, message.blobHash);
                    } else if (message.headerLines) {
                        record.mimeTree = { rootNode: true, header: message.headerLines, parsedHeader: {} };
                    } else if (message.headerSummary !== undefined) {
                        const summary = message.headerSummary;
                        record.headerSummary = summary;
                        // Lines for getQueryResponse (a partial), or the whole header of a message without a summary.
                        if (!summary || !direct || (!message.size && needsSize)) {
                            const header = summary ? splitSummaryLines(summary.lines) : ctx.store.messages.rootHeaderLines(message.blobHash);
                            record.mimeTree = { rootNode: true, header, parsedHeader: {} };
                        }
                    }
                    const readDirectly = direct && (message.size > 0 || !needsSize);
                    const treeValues = !readDirectly && treeQuery.length ? session.getQueryResponse(treeQuery, record, responseOptions) : [];
                    const binaryValues = binaryIndexes.size ? new Map<number, unknown>() : null;
                    for (const index of binaryIndexes) {
                        try {
                            binaryValues!.set(index, await binaryValue(query[index], record, session, responseOptions, INLINE_BODY_MAX));
                        } catch (err) {
                            if (!(err instanceof UnknownEncodingError)) throw err;
                            // RFC 3516 4.1: a content-transfer-encoding the server cannot decode fails the command.
                            flush();
                            return callback(null, 'UNKNOWN-CTE');
                        }
                    }
                    let next = 0;
                    let streaming = false;
                    const values = query.map((item, index) => {
                        if (binaryIndexes.has(index)) {
                            const value = binaryValues!.get(index) as { type?: string } | undefined;
                            if (value && value.type === 'stream') streaming = true;
                            return value;
                        }
                        if (wholeIndexes.has(index)) {
                            const value = wholeMessageValue(item, message);
                            if (!(Buffer.isBuffer(value) && inlined.has(value))) streaming = true;
                            return value;
                        }
                        if (readDirectly) {
                            return readers[index]!(record as unknown as FetchRecord);
                        }
                        const value = treeValues[next++] as { type?: string } | undefined;
                        if (value && value.type === 'stream') streaming = true;
                        return value;
                    });
                    const response = fetchResponse(seq, query, values, names);
                    if (!streaming) {
                        batch.add(compileFetchPieces(response as { command: string; attributes: unknown[] }) ?? imapHandler.compiler(response));
                        continue;
                    }
                    flush();
                    // Each body stream ends rather than fails (endOnError); a failure ends the command NO after this response.
                    const failures: Error[] = [];
                    for (const node of (response.attributes as unknown[][])[1] as { type?: string; value?: unknown }[]) {
                        if (node && node.type === 'LITERAL' && node.value instanceof Readable) node.value = endOnError(node.value, failures);
                    }
                    const stream = imapHandler.compileStream(response);
                    await new Promise<void>((resolve, reject) => {
                        stream.once('error', reject);
                        session.writeStream.write(stream, () => resolve());
                    });
                    if (failures.length) throw failures[0];
                }
                flush();
                if (messages.length === pageSize) {
                    // The next page once the client has taken this one (imap-core patch 134): a
                    // client that does not read would otherwise have the whole FETCH held in memory,
                    // up to PAGE_SIZE × INLINE_BODY_MAX a page (issue 8). Then let other sessions' commands in.
                    const outputTaken = session.whenOutputTaken;
                    if (outputTaken) await new Promise<void>(resolve => outputTaken(resolve));
                    await new Promise(resolve => setImmediate(resolve));
                }
            }
            // The tagged completion is written as this returns: corked with the last responses (response-batch.ts).
            flush();
            callback(null, true);
        });
}
