/**
 * The attachment storage imap-core's Indexer reads detached bodies through, when it builds
 * BODY[section] values for FETCH (on-fetch.ts) and for the URL parts of a CATENATE (on-catenate.ts):
 * both read the same bytes the same way.
 */
import { Readable } from 'node:stream';
import { crlfBody, type MimeNode } from '../store';
import type { ImapContext } from './context';

export function rawFileStorage(ctx: ImapContext) {
    return {
        // A detached body is "r:<offset>:<length>" inside the message's raw file; the file is named by
        // the tree's attachmentMap entry (bindTree). imap-core awaits get(); nothing is looked up.
        get(id: string) {
            return Promise.resolve({ metadata: {}, id });
        },
        createReadStream(id: string, _data: unknown, bounds: { startFrom: number; maxLength: number }) {
            const [hash, offset, length, form] = id.split(':');
            if (form === 'c') {
                // Bytes stored with LF line ends, which the parser gave as CRLF: bounds count the CRLF form (mime.ts detachBodies).
                let body: Buffer;
                try {
                    body = crlfBody(ctx.store.messages.readRange(hash, Number(offset), Number(length)));
                } catch (err) {
                    // As a file stream reports it: on the stream (imap-core's indexer listens for 'error').
                    const failed = new Readable({ read() {} });
                    process.nextTick(() => failed.destroy(err as Error));
                    return Object.assign(failed, { outputBytes: 0 });
                }
                const start = bounds.startFrom || 0;
                const part = body.subarray(start, bounds.maxLength ? start + bounds.maxLength : body.length);
                return Object.assign(Readable.from(part.length ? [part] : []), { outputBytes: part.length });
            }
            const start = Number(offset) + (bounds.startFrom || 0);
            const remaining = Number(length) - (bounds.startFrom || 0);
            const count = bounds.maxLength ? Math.min(bounds.maxLength, remaining) : remaining;
            if (count <= 0) {
                return Object.assign(Readable.from([]), { outputBytes: 0 });
            }
            return ctx.store.messages.createRangeStream(hash, start, count);
        }
    };
}

/** Points each detached node of a message's tree at its raw file. */
export function bindTree(tree: MimeNode, hash: string): MimeNode {
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
