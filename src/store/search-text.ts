/**
 * The search text of a message (mime.ts: its decoded header lines and its decoded text parts,
 * lower-cased), as the `blobs.search_text` column holds it: both in one Brotli stream (issue 17:
 * kept as plain text they were 4.2 KB of the 14.4 KB the store took per message; packed, about
 * 1.5 KB), and the SQL functions that SEARCH's compiled WHERE clause (search.ts) calls on it.
 *
 * Brotli rather than zstd, measured on the SpamAssassin corpus (3.7 KB of text per message):
 * quality 5 packs to 1.46 KB against zstd's 1.58 KB at its default level, and a SEARCH unpacks every
 * row it looks at, where Node's one-shot zstd pays about 20 µs per call for a fresh context and
 * Brotli about 20 µs for the whole decompression and match.
 *
 * Rows from before migration 15 hold the two texts plain in search_headers and search_body (NULL
 * search_text); start-up packs them (packOldSearchText), and until it has, SEARCH packs such a
 * row on the fly (SEARCH_TEXT_SQL), so the answer never depends on how far it got.
 */
import zlib from 'node:zlib';
import type { Connection } from './connection';

/** What a WHERE clause over `blobs b` passes to the mm_* functions below. */
export const SEARCH_TEXT_SQL = 'COALESCE(b.search_text, mm_pack_search(b.search_headers, b.search_body))';

/** The stored form: a 4-byte little-endian length of the header text, the header text, the body text (UTF-8), packed. */
export function packSearchText(headers: string, body: string): Buffer {
    const headerBytes = Buffer.byteLength(headers);
    const plain = Buffer.allocUnsafe(4 + headerBytes + Buffer.byteLength(body));
    plain.writeUInt32LE(headerBytes, 0);
    plain.write(headers, 4);
    plain.write(body, 4 + headerBytes);
    return zlib.brotliCompressSync(plain, {
        params: {
            [zlib.constants.BROTLI_PARAM_QUALITY]: BROTLI_QUALITY,
            [zlib.constants.BROTLI_PARAM_MODE]: zlib.constants.BROTLI_MODE_TEXT,
            [zlib.constants.BROTLI_PARAM_SIZE_HINT]: plain.length
        }
    });
}

/** Brotli's quality 5: as small as 9 on this text (within 1 %) at a fraction of the CPU, at delivery on a Pi. */
const BROTLI_QUALITY = 5;

export interface SearchText {
    headers: Buffer;
    body: Buffer;
}

/**
 * The two texts of a packed value. One SEARCH may call several functions on the same row (TEXT
 * and HEADER terms together): the last value unpacked is kept, and compared by content, since
 * SQLite hands each call its own copy.
 */
export function unpackSearchText(packed: Buffer): SearchText {
    if (lastPacked && lastPacked.equals(packed)) return lastText;
    const plain = zlib.brotliDecompressSync(packed);
    const headerEnd = 4 + plain.readUInt32LE(0);
    lastText = { headers: plain.subarray(4, headerEnd), body: plain.subarray(headerEnd) };
    lastPacked = packed;
    return lastText;
}

let lastPacked: Buffer | null = null;
let lastText: SearchText = { headers: Buffer.alloc(0), body: Buffer.alloc(0) };

/** A function argument as bytes to search for: the needle is lower-cased text (search.ts); NULL reads as ''. */
function needleOf(value: unknown): Buffer {
    if (Buffer.isBuffer(value)) return value;
    return Buffer.from(typeof value === 'string' ? value : typeof value === 'number' || typeof value === 'bigint' ? String(value) : '');
}

/** A packed value, or NULL (a row without search text) as nothing to search. */
function textOf(packed: unknown): SearchText {
    return Buffer.isBuffer(packed) && packed.length ? unpackSearchText(packed) : { headers: Buffer.alloc(0), body: Buffer.alloc(0) };
}

/** TEXT: the needle in the header text or in the body text (not across the two, as when they were two columns). */
export function textContainsSql(packed: unknown, needle: unknown): number {
    const text = textOf(packed);
    const bytes = needleOf(needle);
    return text.headers.includes(bytes) || text.body.includes(bytes) ? 1 : 0;
}

/** BODY: the needle in the body text. */
export function bodyContainsSql(packed: unknown, needle: unknown): number {
    return textOf(packed).body.includes(needleOf(needle)) ? 1 : 0;
}

/** The header text of a packed value (or NULL), for HEADER's line-by-line match (search.ts headerMatch). */
export function headerText(packed: unknown): string {
    return textOf(packed).headers.toString('utf8');
}

/**
 * Packs the search text of rows from before migration 15, a batch per transaction, in hash order;
 * interrupted, it goes on at the next start (the marker goes when every row is done). The plain
 * columns are emptied as each row is packed. Returns how many rows were packed.
 */
export function packOldSearchText(db: Connection): number {
    if (!db.stmt("SELECT 1 FROM meta WHERE key = 'pending_search_packing'").get()) return 0;
    let packed = 0;
    let after = '';
    for (;;) {
        const rows = db.rawStmt(`SELECT hash, search_headers, search_body FROM blobs WHERE hash > ? AND search_text IS NULL ORDER BY hash LIMIT ${BATCH}`).all(after) as [
            hash: string,
            headers: string,
            body: string
        ][];
        if (!rows.length) break;
        after = rows[rows.length - 1][0];
        const values = rows.map(([hash, headers, body]) => [hash, packSearchText(headers, body)] as const);
        db.write(tx => {
            for (const [hash, value] of values) {
                tx.stmt("UPDATE blobs SET search_text = ?, search_headers = '', search_body = '' WHERE hash = ? AND search_text IS NULL").run(value, hash);
            }
        });
        packed += values.length;
    }
    db.write(tx => tx.stmt("DELETE FROM meta WHERE key = 'pending_search_packing'").run());
    return packed;
}

const BATCH = 500;
