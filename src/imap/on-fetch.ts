/**
 * FETCH and UID FETCH.
 *
 * Whole-message items (BODY[], BODY.PEEK[], RFC822, with or without a partial range) are
 * streamed straight from the stored raw file, so what a client downloads is byte for byte what
 * was delivered, and RFC822.SIZE is its exact length. Everything else (sections, headers,
 * ENVELOPE, BODYSTRUCTURE) comes from imap-core's getQueryResponse over the stored MIME tree,
 * whose large bodies are themselves byte ranges of the raw file.
 *
 * Only the columns a query needs are read: a FLAGS-only fetch of 10,000 messages never touches
 * a MIME tree, and a header-fields fetch uses the stored root header lines.
 */
import { Readable } from 'node:stream';
import type { FetchColumns, FetchedMessage, MimeNode } from '../store';
import { imapHandler } from './engine';
import { guarded, type Callback, type ImapContext, type ImapSession } from './context';

interface QueryItem {
    item: string;
    original: { partial?: number[] } & Record<string, unknown>;
    path?: string;
    type?: string;
    partial?: { startFrom: number; maxLength: number };
}

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

const PAGE_SIZE = 250;
const ROOT_HEADER_TYPES = new Set(['header', 'header.fields', 'header.fields.not']);

function isWholeMessage(item: QueryItem): boolean {
    return item.item === 'rfc822' || (item.item === 'body' && item.path === '' && item.type === 'content');
}

function isRootHeader(item: QueryItem): boolean {
    return item.item === 'rfc822.header' || (item.item === 'body' && item.path === '' && ROOT_HEADER_TYPES.has(item.type ?? ''));
}

function needsTree(item: QueryItem): boolean {
    return (item.item === 'body' || item.item === 'rfc822.text') && !isWholeMessage(item) && !isRootHeader(item);
}

export function onFetch(ctx: ImapContext) {
    const attachmentStorage = {
        // A detached body is "r:<offset>:<length>" inside the message's raw file; the file is named by
        // the tree's attachmentMap entry, filled in per message below.
        async get(id: string) {
            return { metadata: {}, id };
        },
        createReadStream(id: string, _data: unknown, bounds: { startFrom: number; maxLength: number }) {
            const [hash, offset, length] = id.split(':');
            const start = Number(offset) + (bounds.startFrom || 0);
            const remaining = Number(length) - (bounds.startFrom || 0);
            const count = bounds.maxLength ? Math.min(bounds.maxLength, remaining) : remaining;
            if (count <= 0) {
                return Object.assign(Readable.from([]), { outputBytes: 0 });
            }
            return ctx.store.blobs.createRangeStream(hash, start, count);
        }
    };

    /** Points each detached node of this message's tree at its raw file. */
    function bindTree(tree: MimeNode, hash: string): MimeNode {
        const map: Record<string, string> = {};
        const walk = (node: MimeNode): void => {
            if (node.attachmentId && node.attachmentId.startsWith('r:')) {
                map[node.attachmentId] = hash + node.attachmentId.slice(1);
            }
            node.childNodes?.forEach(walk);
            if (node.message) walk(node.message);
        };
        walk(tree);
        tree.attachmentMap = map;
        return tree;
    }

    function wholeMessageValue(item: QueryItem, message: FetchedMessage): unknown {
        const size = message.size;
        if (!item.partial) {
            if (!size) return Buffer.alloc(0);
            return { type: 'stream', value: ctx.store.blobs.createRangeStream(message.blobHash, 0, 0), expectedLength: size };
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
        const stream = ctx.store.blobs.createRangeStream(message.blobHash, startFrom, length) as NodeJS.ReadableStream & { isLimited?: boolean };
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
            const wholeIndexes = new Set<number>();
            query.forEach((item, index) => isWholeMessage(item) && wholeIndexes.add(index));
            const treeQuery = query.filter((_item, index) => !wholeIndexes.has(index));
            const fullTree = treeQuery.some(needsTree);
            const headersOnly = !fullTree && treeQuery.some(isRootHeader);
            const columns: FetchColumns = {
                envelope: Boolean(options.envelopeExist),
                bodystructure: Boolean(options.bodystructureExist),
                mimeTree: fullTree,
                headerLines: headersOnly
            };
            const responseOptions = { acceptUTF8Enabled: session.isUTF8Enabled(), attachmentStorage };
            const uids = [...new Set(options.messages)].sort((a, b) => a - b);

            for (let start = 0; start < uids.length; start += PAGE_SIZE) {
                const page = uids.slice(start, start + PAGE_SIZE);
                const messages = ctx.store.fetchPage(userId, Number(mailboxId), page, columns, options.changedSince || 0);

                if (options.markAsSeen) {
                    const unseen = messages.filter(message => !message.flags.includes('\\Seen')).map(message => message.uid);
                    if (unseen.length) {
                        const result = ctx.store.updateFlags(userId, Number(mailboxId), unseen, 'add', ['\\Seen'], { ignoreSession: session.id });
                        const changed = new Map((result?.changes ?? []).map(change => [change.uid, change]));
                        for (const message of messages) {
                            const change = changed.get(message.uid);
                            if (change) {
                                message.flags = change.flags;
                                message.modseq = change.modseq;
                            }
                        }
                    }
                }

                for (const message of messages) {
                    const record: Record<string, unknown> = {
                        uid: message.uid,
                        modseq: message.modseq,
                        flags: message.flags,
                        idate: new Date(message.idate),
                        size: message.size,
                        envelope: message.envelope,
                        bodystructure: message.bodystructure
                    };
                    if (message.mimeTree) {
                        record.mimeTree = bindTree(message.mimeTree, message.blobHash);
                    } else if (message.headerLines) {
                        record.mimeTree = { rootNode: true, header: message.headerLines, parsedHeader: {} };
                    }
                    const treeValues = treeQuery.length ? session.getQueryResponse(treeQuery, record, responseOptions) : [];
                    let next = 0;
                    let streaming = false;
                    const values = query.map((item, index) => {
                        if (wholeIndexes.has(index)) {
                            streaming = true;
                            return wholeMessageValue(item, message);
                        }
                        const value = treeValues[next++] as { type?: string } | undefined;
                        if (value && value.type === 'stream') streaming = true;
                        return value;
                    });
                    const response = session.formatResponse('FETCH', message.uid, { query, values });
                    if (!streaming) {
                        session.writeStream.write({ compiled: imapHandler.compiler(response) });
                        continue;
                    }
                    const stream = imapHandler.compileStream(response);
                    await new Promise<void>((resolve, reject) => {
                        stream.once('error', reject);
                        session.writeStream.write(stream, () => resolve());
                    });
                }
                if (messages.length === PAGE_SIZE) {
                    // Let other sessions' commands in between pages of a very large FETCH.
                    await new Promise(resolve => setImmediate(resolve));
                }
            }
            callback(null, true);
        });
}
