/**
 * FETCH BINARY[part]<partial>, BINARY.PEEK[...] and BINARY.SIZE[part] (RFC 3516 4.1, 4.2).
 *
 * imap-core parses the items (patch 100) and leaves the answer to the storage hook: the part's
 * body comes from getQueryResponse as BODY[part] would (a stream over the stored tree and raw
 * file) and is decoded by binary.ts. The whole message (BINARY[]) and multipart or message parts
 * are sent as they are.
 */
import type { Readable } from 'node:stream';
import Indexer from '@zone-eu/wildduck/imap-core/lib/indexer/indexer';
import type { MimeNode } from '../store';
import type { ImapSession } from './context';
import { measureDecoded, decodedStream, firstBytes, partDecoding } from './binary';

interface BinaryItem {
    item: string;
    path?: string;
    partial?: { startFrom: number; maxLength: number };
    original: { partial?: number[] } & Record<string, unknown>;
}

/** The part's content-transfer-encoding is not one binary.ts decodes: the command ends NO [UNKNOWN-CTE]. */
export class UnknownEncodingError extends Error {}

const indexer = new Indexer({});

export function isBinary(item: { item: string }): boolean {
    return item.item === 'binary' || item.item === 'binary.size';
}

/**
 * The value of one BINARY or BINARY.SIZE item for one message, shaped as fetch-response.ts's
 * fetchResponse takes it: a number (BINARY.SIZE); a Buffer, or { type: 'literal8' } when the data
 * holds NUL, for data up to `keep` bytes; a { type: 'stream' } literal, decoded while it is
 * written, for larger data.
 */
export async function binaryValue(item: BinaryItem, record: { mimeTree?: unknown }, session: ImapSession, responseOptions: unknown, keep: number): Promise<unknown> {
    const tree = record.mimeTree as MimeNode | undefined;
    const path = item.path ?? '';
    const node = tree && (path ? (indexer.resolveContentNode(tree, path) as MimeNode | false) : tree);
    const decoding = node ? partDecoding(node, !path) : 'identity';
    if (decoding === null) throw new UnknownEncodingError(`unknown content-transfer-encoding in part ${path}`);

    const open = (): Readable | null => {
        if (!node) return null;
        const [value] = session.getQueryResponse([{ item: 'body', path, type: 'content', original: {} }], record, responseOptions) as {
            type?: string;
            value?: Readable;
            expectedLength?: number;
        }[];
        return value && value.type === 'stream' && value.value ? firstBytes(value.value, value.expectedLength ?? 0) : null;
    };

    const first = open();
    const measured = first ? await measureDecoded(first, decoding, keep) : { size: 0, hasNul: false, data: Buffer.alloc(0) };
    if (item.item === 'binary.size') return measured.size;

    let start = 0;
    let length = measured.size;
    if (item.partial) {
        start = Math.min(item.partial.startFrom, measured.size);
        length = item.partial.maxLength ? Math.min(item.partial.maxLength, measured.size - start) : measured.size - start;
        // The response names the origin only: BINARY[part]<origin> (RFC 3516 4.1, as BODY[]<origin> in RFC 3501 7.4.2).
        if (item.original.partial && item.original.partial.length > 1) item.original.partial = [item.original.partial[0]];
    }
    // Dovecot answers a part that holds NUL in a literal8 for every range of it, so clients see one form per part.
    if (measured.data) {
        const data = measured.data.subarray(start, start + length);
        return measured.hasNul ? { type: 'literal8', value: data } : data;
    }
    const again = open();
    if (!again) return Buffer.alloc(0);
    return {
        type: 'stream',
        value: decodedStream(again, decoding),
        expectedLength: measured.size,
        startFrom: start,
        maxLength: length,
        literal8: measured.hasNul
    };
}
