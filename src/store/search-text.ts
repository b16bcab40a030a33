/**
 * The search text of a message (mime.ts: its decoded header lines and its decoded text parts,
 * lower-cased), as the `blobs.search_text` column holds it: both in one Brotli stream (issue 17:
 * kept as plain text they were 4.2 KB of the 14.4 KB the store took per message; packed, about
 * 1.5 KB), and the SQL functions that SEARCH's compiled WHERE clause (search.ts) calls on it.
 *
 * Brotli rather than zstd, measured on the SpamAssassin corpus (3.7 KB of text per message):
 * quality 5 packed to 1.46 KB against zstd's 1.58 KB at its default level (quality 3, used now
 * for the CPU of storing, 1.70 KB: BROTLI_QUALITY), and what decides is that a SEARCH unpacks
 * every row it looks at, where Node's one-shot zstd pays about 20 µs per call for a fresh context
 * and Brotli about 20 µs for the whole decompression and match.
 *
 * Unpacking costs about 3 µs per KB of text, where a match of plain text cost a fraction of that:
 * so each value starts with a signature of the text (a 4,096-bit Bloom filter of its byte
 * trigrams, 512 bytes), and a row is unpacked only when every trigram of the needle is in it. A
 * word that is in few messages (what people search for) rules out nearly all the others without
 * unpacking them; a needle shorter than three bytes, or a very long text (whose filter is full),
 * is unpacked and searched as before. The filter can only say "maybe", never "no" wrongly.
 *
 * Rows from before migration 15 hold the two texts plain in search_headers and search_body (NULL
 * search_text); start-up packs them (packOldSearchText), and until it has, SEARCH packs such a
 * row on the fly (SEARCH_TEXT_SQL), so the answer never depends on how far it got.
 */
import zlib from 'node:zlib';
import type { Connection } from './connection';

/** What a WHERE clause over `blobs b` passes to the mm_* functions below. */
export const SEARCH_TEXT_SQL = 'COALESCE(b.search_text, mm_pack_search(b.search_headers, b.search_body))';

/**
 * The stored form: the signature of both texts (SIGNATURE_BYTES), then, packed, a 4-byte
 * little-endian length of the header text, the header text and the body text (UTF-8).
 */
export function packSearchText(headers: string, body: string): Buffer {
    const headerBytes = Buffer.byteLength(headers);
    const plain = Buffer.allocUnsafe(4 + headerBytes + Buffer.byteLength(body));
    plain.writeUInt32LE(headerBytes, 0);
    plain.write(headers, 4);
    plain.write(body, 4 + headerBytes);
    const signature = Buffer.alloc(SIGNATURE_BYTES);
    addTrigrams(signature, plain.subarray(4, 4 + headerBytes));
    addTrigrams(signature, plain.subarray(4 + headerBytes));
    return Buffer.concat([signature, packText(plain)]);
}

/** The signature's size: 4,096 bits, about half set by 4 KB of text. */
const SIGNATURE_BYTES = 512;

/** The signature bit of a byte trigram: the top 12 bits of a multiplicative hash. */
function trigramBit(first: number, second: number, third: number): number {
    return Math.imul((first << 16) | (second << 8) | third, 0x9e3779b1) >>> 20;
}

function addTrigrams(signature: Buffer, text: Buffer): void {
    for (let index = 0; index + 2 < text.length; index++) {
        const bit = trigramBit(text[index], text[index + 1], text[index + 2]);
        signature[bit >> 3] |= 1 << (bit & 7);
    }
}

/** False when `needle` cannot be in the text whose stored value `stored` is (a trigram of it is missing from the signature). */
function mayContain(stored: Buffer, needle: Buffer): boolean {
    for (let index = 0; index + 2 < needle.length; index++) {
        const bit = trigramBit(needle[index], needle[index + 1], needle[index + 2]);
        if (!(stored[bit >> 3] & (1 << (bit & 7)))) return false;
    }
    return true;
}

function packText(plain: Buffer): Buffer {
    return zlib.brotliCompressSync(plain, {
        params: {
            [zlib.constants.BROTLI_PARAM_QUALITY]: BROTLI_QUALITY,
            [zlib.constants.BROTLI_PARAM_LGWIN]: BROTLI_WINDOW_BITS,
            [zlib.constants.BROTLI_PARAM_MODE]: zlib.constants.BROTLI_MODE_TEXT,
            [zlib.constants.BROTLI_PARAM_SIZE_HINT]: plain.length
        }
    });
}

/**
 * Brotli's quality 3 with a 256 KB window (a text is at most MAX_SEARCH_BODY, 256 KB, and its
 * headers). Quality 4 against quality 5 with the default 4 MB window, on the 2,750 texts of the
 * SpamAssassin account of bench:sync (4.0 KB each), measured interleaved per text: packing about
 * 37 % less CPU, unpacking (what SEARCH does per row) about 40 % less, for 1,650 bytes against
 * 1,566 (5 % more). Quality 3 against 4 on the same texts (issue 11, four rounds, interleaved):
 * packing about 40 % less CPU again, unpacking no slower, for 1,701 bytes against 1,650 (51 bytes,
 * under 1 % of what the store takes per message). Storing a message packs its text on the event
 * loop inside its commit, and it was the largest piece of a first sync's commits in a CPU profile
 * of the daemon (0.43 of 1.5 s). Values packed before read the same (Brotli either way).
 */
const BROTLI_QUALITY = 3;
const BROTLI_WINDOW_BITS = 18;

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
    const body = packed.subarray(SIGNATURE_BYTES);
    const plain = zlib.brotliDecompressSync(body, { chunkSize: Math.max(MIN_UNPACK_CHUNK, body.length * UNPACK_RATIO) });
    const headerEnd = 4 + plain.readUInt32LE(0);
    lastText = { headers: plain.subarray(4, headerEnd), body: plain.subarray(headerEnd) };
    lastPacked = packed;
    return lastText;
}

/**
 * The output buffer of an unpacking, as a multiple of the packed size: the texts of bench:imap's
 * corpus unpack to at most 2.98 times their packed size (median 2.33), so one buffer of 4 times
 * holds nearly all of them; a larger text takes more buffers, joined, as before. zlib's default
 * (16 KB, from Buffer's shared pool) was 16 KB of garbage per row for a median text of 5.6 KB,
 * and a text over 16 KB took two buffers and their join.
 */
const UNPACK_RATIO = 4;
const MIN_UNPACK_CHUNK = 1024;

let lastPacked: Buffer | null = null;
let lastText: SearchText = { headers: Buffer.alloc(0), body: Buffer.alloc(0) };

/** A function argument as bytes to search for: the needle is lower-cased text (search.ts); NULL reads as ''. */
function needleOf(value: unknown): Buffer {
    if (Buffer.isBuffer(value)) return value;
    return Buffer.from(typeof value === 'string' ? value : typeof value === 'number' || typeof value === 'bigint' ? String(value) : '');
}

/**
 * The signature test of mayContain as SQL over `b.search_text`, for SEARCH's WHERE clause to rule
 * rows out before it calls an mm_* function on them; null for a needle shorter than three bytes
 * (every row may hold it). Calling the function hands it a copy of the whole packed value (3.4 KB
 * on average in bench:imap's corpus): a SEARCH TEXT over 10,000 messages made 34 MB of Buffers
 * for the garbage collector, and the daemon's heap kept most of that size after it. With the test
 * in SQL only the rows that may hold the needle reach JavaScript (999 of 10,000 there, for about
 * 40 ms less CPU). The test is the same as mayContain's, so it never rules out a row that the
 * function would match. Each byte of the signature that the needle's trigrams need is tested
 * against the byte values that have all their bits set (e.g. bit 0x04: 0x04, 0x05, 0x06, 0x07,
 * 0x0c, …). A row not packed yet (NULL) passes, to be packed on the fly (SEARCH_TEXT_SQL). Only
 * numbers from the hash go into the SQL, never the needle's text.
 */
export function signatureSql(needle: string): string | null {
    const bytes = Buffer.from(needle);
    const masks = new Map<number, number>();
    for (let index = 0; index + 2 < bytes.length; index++) {
        const bit = trigramBit(bytes[index], bytes[index + 1], bytes[index + 2]);
        masks.set(bit >> 3, (masks.get(bit >> 3) ?? 0) | (1 << (bit & 7)));
    }
    if (!masks.size) return null;
    // Any of the bytes is a valid test on its own: a long needle tests the first few, which rule out as much, in short SQL.
    const tests = [...masks].slice(0, MAX_SIGNATURE_TESTS).map(([byte, mask]) => {
        const values: string[] = [];
        for (let value = 0; value < 256; value++) {
            if ((value & mask) === mask) values.push(`x'${value.toString(16).padStart(2, '0')}'`);
        }
        return `substr(b.search_text, ${byte + 1}, 1) IN (${values.join(',')})`;
    });
    return `(b.search_text IS NULL OR (${tests.join(' AND ')}))`;
}

/**
 * The most signature bytes one needle's SQL tests: each is an IN list of up to 128 values, and a
 * needle of a few hundred bytes needs all 512, about 0.5 MB of SQL for SQLite to parse per SEARCH.
 */
const MAX_SIGNATURE_TESTS = 16;

/** A packed value that may hold `needle` (see mayContain), unpacked; else, or for NULL (a row without search text), nothing to search. */
function textOf(packed: unknown, needle: Buffer): SearchText {
    return Buffer.isBuffer(packed) && packed.length >= SIGNATURE_BYTES && mayContain(packed, needle) ? unpackSearchText(packed) : NOTHING;
}

const NOTHING: SearchText = { headers: Buffer.alloc(0), body: Buffer.alloc(0) };

/** TEXT: the needle in the header text or in the body text (not across the two, as when they were two columns). */
export function textContainsSql(packed: unknown, needle: unknown): number {
    const bytes = needleOf(needle);
    const text = textOf(packed, bytes);
    return text.headers.includes(bytes) || text.body.includes(bytes) ? 1 : 0;
}

/** BODY: the needle in the body text. */
export function bodyContainsSql(packed: unknown, needle: unknown): number {
    const bytes = needleOf(needle);
    return textOf(packed, bytes).body.includes(bytes) ? 1 : 0;
}

/**
 * The header text of a packed value (or NULL), for HEADER's line-by-line match (search.ts
 * headerMatch) of `needle` (a value must contain it): '' when the text cannot hold it.
 */
export function headerText(packed: unknown, needle: unknown): string {
    return textOf(packed, needleOf(needle)).headers.toString('utf8');
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
