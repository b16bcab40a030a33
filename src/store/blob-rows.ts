/**
 * The `blobs` table: one row per distinct raw message, with what FETCH, SEARCH and SORT need
 * from it, and a count of the rows (messages, queue entries) that point at it. The file itself
 * belongs to message-files.ts; a row reaching zero references hands its file to the
 * transaction, which has it removed after the commit.
 */
import v8 from 'node:v8';
import zlib from 'node:zlib';
import type { Connection, Tx } from './connection';
import { MessageTooComplexError, type AnalysedMessage, type MimeNode, type ParsedHeader } from './mime';
import { packSearchText } from './search-text';
import { isInlineSize, packRaw } from './inline-messages';

/**
 * v8.serialize, with V8's limits (call stack, buffer size) reported as what they are: this
 * message's shape, which fails the same way every time. analyseMessage bounds the depth of the
 * tree (MAX_MIME_DEPTH) so this should not be reached; were it, the client hears 554 / NO [LIMIT],
 * not a 4xx to retry for days.
 */
function serialize(value: unknown): Buffer {
    try {
        return v8.serialize(value);
    } catch (err) {
        if (err instanceof RangeError) throw new MessageTooComplexError(err);
        throw err;
    }
}

/**
 * The stored form of a serialised MIME tree: zstd-compressed (issue 17: the trees, with the small
 * bodies they hold, were 5.7 KB per message, more than the messages; they compress about 3 to 1).
 * Rows from before are plain v8.serialize output, which never starts with zstd's magic number
 * (it starts with 0xFF): unpackMimeTree reads both.
 */
export function packMimeTree(serialised: Buffer): Buffer {
    return zlib.zstdCompressSync(serialised, { params: { [zlib.constants.ZSTD_c_compressionLevel]: ZSTD_LEVEL } });
}

/** The serialised tree of a stored mime_tree, compressed or not (see packMimeTree). */
export function unpackMimeTree(stored: Buffer): Buffer {
    return isPacked(stored) ? zlib.zstdDecompressSync(stored) : stored;
}

/**
 * Compresses the MIME trees stored before migration 14, a batch per transaction, in hash order;
 * interrupted, it goes on at the next start (the marker goes when every row is done). Returns how
 * many were compressed.
 */
export function compressOldTrees(db: Connection): number {
    if (!db.stmt("SELECT 1 FROM meta WHERE key = 'pending_tree_compression'").get()) return 0;
    let compressed = 0;
    let after = '';
    for (;;) {
        // Only rows still to do reach JavaScript: on a store that has none, SQLite alone looks (once).
        const rows = db.rawStmt(`SELECT hash, mime_tree FROM blobs WHERE hash > ? AND substr(mime_tree, 1, 4) <> x'28b52ffd' ORDER BY hash LIMIT ${TREE_BATCH}`).all(after) as [
            hash: string,
            tree: Buffer
        ][];
        if (!rows.length) break;
        after = rows[rows.length - 1][0];
        const packed = rows.filter(([, tree]) => !isPacked(tree)).map(([hash, tree]) => [hash, packMimeTree(tree)] as const);
        db.write(tx => {
            for (const [hash, tree] of packed) tx.stmt('UPDATE blobs SET mime_tree = ? WHERE hash = ?').run(tree, hash);
        });
        compressed += packed.length;
    }
    db.write(tx => tx.stmt("DELETE FROM meta WHERE key = 'pending_tree_compression'").run());
    return compressed;
}

const TREE_BATCH = 500;

function isPacked(stored: Buffer): boolean {
    return stored.length >= 4 && stored.readUInt32LE(0) === ZSTD_MAGIC;
}

/** zstd's frame magic number, little-endian (RFC 8878 3.1.1). */
const ZSTD_MAGIC = 0xfd2fb528;
/** zstd's default level: the trees are written once per message, on the CPU of a Pi. */
const ZSTD_LEVEL = 3;

/**
 * The MIME tree as stored: without the root header when the message file gives it back exactly
 * (issue 17: its lines and imap-core's parse of them were 1.4 of the 1.5 KB a packed tree took).
 * Of the root's parsed header only the Content-* fields stay: FETCH's BODY and BINARY read those
 * from the tree (body-structure.js, binary.ts); ENVELOPE and BODYSTRUCTURE are stored apart, and
 * header sections are built from the lines. withRootHeader puts the lines back.
 */
export function storedTree(message: AnalysedMessage): MimeNode {
    if (!message.rootHeaderInFile) return message.mimeTree;
    const contentFields: ParsedHeader = {};
    for (const [name, value] of Object.entries(message.mimeTree.parsedHeader ?? {})) {
        if (name.startsWith('content-')) contentFields[name] = value;
    }
    const stored: Partial<MimeNode> = { ...message.mimeTree, parsedHeader: contentFields };
    delete stored.header;
    return stored as MimeNode;
}

/** A stored tree with its root header lines (storedTree): read from the message file when the tree left them out. */
export function withRootHeader(tree: MimeNode, readLines: () => string[]): MimeNode {
    if (!Array.isArray(tree.header)) tree.header = readLines();
    return tree;
}

/** Adds one reference to the message's row, creating the row on first use. */
export function insertBlob(tx: Tx, message: AnalysedMessage): void {
    // The message rows about to point at it take their header summary from here (messages/rows.ts).
    tx.headerSummaries.set(message.hash, message.headerSummary);
    // A row that exists only gains a reference: the packing below is for new rows (a submission's
    // queue entry and its Sent copy are one message, two references; a list post to two users too).
    if (tx.stmt('UPDATE blobs SET refs = refs + 1 WHERE hash = ?').run(message.hash).changes) return;
    const raw = tx.inlineBytes.get(message.hash);
    tx.stmt(
        `INSERT INTO blobs (hash, size, refs, mime_tree, envelope, bodystructure, search_headers, search_body, search_text, message_id, sent_date, sent_day, created_at, raw)
         VALUES (?, ?, 1, ?, ?, ?, '', '', ?, ?, ?, ?, ?, ?)`
    ).run(
        message.hash,
        message.size,
        packMimeTree(serialize(storedTree(message))),
        serialize(message.envelope),
        serialize(message.bodystructure),
        packSearchText(message.searchHeaders, message.searchBody),
        message.messageId,
        message.sentDate,
        message.sentDay,
        Date.now(),
        // A small message's bytes, from the commit that carries them (message-files.ts commitWith): in the row, with no file.
        raw && isInlineSize(raw.length) ? packRaw(raw) : null
    );
}

/** One more reference to a row that exists (a copy shares its source's message). */
export function addBlobRef(tx: Tx, hash: string): void {
    tx.stmt('UPDATE blobs SET refs = refs + 1 WHERE hash = ?').run(hash);
}

/** Drops one reference per hash; a row left with none is deleted and its file released. */
export function releaseBlobs(tx: Tx, hashes: readonly string[]): void {
    const released: string[] = [];
    for (const hash of hashes) {
        const refs = tx.stmt('UPDATE blobs SET refs = refs - 1 WHERE hash = ? RETURNING refs').pluck().get(hash) as number | undefined;
        if (refs !== undefined && refs <= 0) {
            tx.stmt('DELETE FROM blobs WHERE hash = ?').run(hash);
            released.push(hash);
        }
    }
    tx.release(released);
}

/** At start-up: rows that no longer have a reference (left by an older version). */
export function deleteOrphanBlobs(tx: Tx): number {
    const orphans = tx.stmt('SELECT hash FROM blobs WHERE refs <= 0').pluck().all() as string[];
    for (const hash of orphans) {
        tx.stmt('DELETE FROM blobs WHERE hash = ? AND refs <= 0').run(hash);
    }
    tx.release(orphans);
    return orphans.length;
}
