/**
 * Small messages are kept in their `blobs` row (column `raw`, packed: packRaw) instead of a file of
 * their own (issue 17). A file costs whole filesystem blocks: 4.6 KB messages took 6.6 KB each in
 * blobs/, as much as Dovecot's whole Maildir, and packed they take less than half of that. A
 * message up to INLINE_MAX bytes is inline; larger ones stay files, so their reads stream.
 *
 * The bytes go into the same transaction as the row (message-files.ts commitWith hands them to
 * blob-rows.ts insertBlob through the connection's `inlineBytes`): durable with the commit's
 * fsync, and a kill -9 leaves the row with its bytes or neither. The content-hash sharing is the
 * row's, as before.
 */
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import type { Connection } from './connection';

/** The largest message kept inline, in bytes. Reading one unpacks it whole, so it stays small. */
export const INLINE_MAX = 64 * 1024;

export function isInlineSize(size: number): boolean {
    return size <= INLINE_MAX;
}

/**
 * A small message's bytes as its row keeps them: zstd at level 3. Rows written before are
 * Brotli (quality 5), which unpackRaw still reads: a Brotli stream starts with its window size,
 * an odd first byte for the 4 MB window those were packed with (0x1b on all of the corpus below),
 * and zstd's magic number with 0x28.
 *
 * zstd rather than Brotli, measured on the 2,745 SpamAssassin messages of up to 64 KB (4.9 KB on
 * average): 45 µs per message against Brotli's 149 µs, for 1,970 bytes against 1,807 (0.16 KB more
 * per message, 2 % of what the store takes per message); unpacking costs the same (about 40 µs).
 * Storing a message packs it once, on the event loop, inside its commit: with Brotli that was
 * 0.6 s of a CPU profile of a first sync of 2,750 messages (bench:sync, real mail).
 */
export function packRaw(raw: Buffer): Buffer {
    return zlib.zstdCompressSync(raw, { params: { [zlib.constants.ZSTD_c_compressionLevel]: ZSTD_LEVEL } });
}

/**
 * The bytes of a stored small message, packed by zstd (packRaw) or, before, by Brotli. With the
 * message's `size` (the blobs row's), they are unpacked into one buffer of that size: zlib's
 * default is 16 KB buffers from Buffer's shared pool, joined when the message is larger, so a
 * median 8 KB message left 16 KB of garbage and a 40 KB one 88 KB (three buffers and their
 * join), which the garbage collector frees late and glibc's heap keeps the size of (bench:imap's
 * 100 BODY[] fetches). One byte more than the size: a full buffer makes zlib allocate another
 * before it sees the end.
 */
export function unpackRaw(packed: Buffer, size?: number): Buffer {
    const options = size ? { chunkSize: Math.max(zlib.constants.Z_MIN_CHUNK, size + 1) } : {};
    return packed.length >= 4 && packed.readUInt32LE(0) === ZSTD_MAGIC ? zlib.zstdDecompressSync(packed, options) : zlib.brotliDecompressSync(packed, options);
}

/** zstd's frame magic number, little-endian (RFC 8878 3.1.1). */
const ZSTD_MAGIC = 0xfd2fb528;
/** zstd's default level. */
const ZSTD_LEVEL = 3;

/**
 * Moves the small messages of a store from before migration 16 from their files into their rows,
 * a batch per transaction, in hash order; each file is removed once its row's commit holds the
 * bytes. Interrupted, it goes on at the next start (the marker goes when every row is done); a file
 * left behind by an interruption between a commit and its removal is removed by the sweep
 * (message-files.ts). A file that is missing or does not match its hash stays as it is, for the
 * integrity checks to report. Returns how many messages were moved.
 */
export function inlineSmallFiles(db: Connection, readFile: (hash: string) => Buffer | null, removeFile: (hash: string) => void): number {
    if (!db.stmt("SELECT 1 FROM meta WHERE key = 'pending_inline_messages'").get()) return 0;
    let moved = 0;
    let after = '';
    for (;;) {
        const hashes = db.stmt(`SELECT hash FROM blobs WHERE hash > ? AND raw IS NULL AND size <= ? ORDER BY hash LIMIT ${BATCH}`).pluck().all(after, INLINE_MAX) as string[];
        if (!hashes.length) break;
        after = hashes[hashes.length - 1];
        const packed: [hash: string, packed: Buffer][] = [];
        for (const hash of hashes) {
            const raw = readFile(hash);
            if (raw && crypto.createHash('sha256').update(raw).digest('hex') === hash) packed.push([hash, packRaw(raw)]);
        }
        const done = db.write(tx => packed.filter(([hash, bytes]) => tx.stmt('UPDATE blobs SET raw = ? WHERE hash = ? AND raw IS NULL').run(bytes, hash).changes > 0));
        for (const [hash] of done) removeFile(hash);
        moved += done.length;
    }
    db.write(tx => tx.stmt("DELETE FROM meta WHERE key = 'pending_inline_messages'").run());
    return moved;
}

const BATCH = 200;
