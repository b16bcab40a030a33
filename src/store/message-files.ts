/**
 * Raw messages as content-addressed files: `<dataDir>/blobs/ab/<sha256>`. This module is the
 * only code in mailmule that writes, reads or deletes a message file.
 *
 * A message is written once however many mailboxes (or queue entries) hold it. The rule: a file
 * is durable before any database row points at it (written to tmp/, fsynced, renamed into
 * place, its directory fsynced), and it is removed only when no row of the `blobs` table names
 * it. A crash can therefore leave a file nothing points at (moved to lost+found/ at start-up,
 * never deleted there), never a row pointing at a missing file. New mail goes through `putThen` (or `put` and later `commitWith`):
 * files first, then the caller's commit, then whichever of the files no row took is removed.
 *
 * Small messages (inline-messages.ts isInlineSize) have no file: their bytes are in their row,
 * written by the commit itself, and every read here looks there first.
 */
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import type { Connection, Reader } from './connection';
import { inlineSmallFiles, isInlineSize, unpackRaw } from './inline-messages';
import { FileSystemSync, SyncfsUnavailableError } from './syncfs';
import { rootHeaderLines } from './header-summary';

/** A message to be stored: its bytes and their SHA-256 (AnalysedMessage.hash). */
export interface MessageBytes {
    hash: string;
    raw: Buffer;
}

/**
 * `synced: false` writes files without fsyncing them or their directory: only for a caller whose
 * commit holds the same bytes (the SMTP intake's spool, store/queue.ts), so that one fsync, the
 * commit's, makes both durable; it must later make the files durable itself (syncFileSystem,
 * restoreSync) before it lets go of its copy.
 */
export interface WriteOptions {
    synced?: boolean;
}

/** The first read of a message's header (most headers are a few KB; a longer one is read on in doubling steps). */
const HEADER_READ = 16 * 1024;

export class MessageFiles {
    private readonly root: string;
    private readonly tmpDir: string;
    /** Subdirectories this process made sure exist, and those of them whose entry in blobs/ it fsynced. */
    private readonly madeDirs = new Set<string>();
    private readonly syncedDirs = new Set<string>();
    private syncfs: FileSystemSync | null = null;

    constructor(
        dataDir: string,
        private readonly db: Reader & { readonly inlineBytes: Map<string, Buffer> }
    ) {
        this.root = path.join(dataDir, 'blobs');
        this.tmpDir = path.join(dataDir, 'tmp');
        fs.mkdirSync(this.root, { recursive: true, mode: 0o700 });
        fs.mkdirSync(this.tmpDir, { recursive: true, mode: 0o700 });
    }

    /**
     * Writes the files (on the thread pool, one at a time: parallel fsyncs gain little on an SD
     * card), then commits as `commitWith` does.
     */
    async putThen<T>(messages: readonly MessageBytes[], commit: () => T): Promise<T> {
        await this.put(messages);
        return this.commitWith(messages, commit);
    }

    /**
     * Makes the files durable now, on the thread pool, for a commit that comes later through
     * `commitWith` (the SMTP intake writes each submission's files as it arrives and commits
     * them in groups). If a write fails, the files this call wrote and no row names are removed.
     * Unsynced, the files are written on the event loop: without an fsync that is a copy into the
     * page cache, cheaper than the thread pool's round trips.
     */
    async put(messages: readonly MessageBytes[], options: WriteOptions = {}): Promise<void> {
        const synced = options.synced ?? true;
        try {
            for (const message of messages) {
                // A small message's bytes go into its row with the commit (commitWith): no file.
                if (isInlineSize(message.raw.length)) continue;
                if (synced) await this.write(message.hash, message.raw);
                else this.writeSync(message.hash, message.raw, false);
            }
        } catch (err) {
            this.removeUnreferenced(messages.map(message => message.hash));
            throw err;
        }
    }

    /**
     * Runs `commit`, whose rows may point at these files; afterwards removes those of the files
     * no row points at (the commit failed, or kept an existing copy instead). Each file is made
     * sure of first, on the event loop: written now if `put` was not called, or again if a
     * concurrent clean-up removed it since (cheap when it is there).
     */
    commitWith<T>(messages: readonly MessageBytes[], commit: () => T, options: WriteOptions = {}): T {
        // Small messages: their bytes are handed to the commit (blob-rows.ts insertBlob stores them in the row).
        const handed: string[] = [];
        try {
            for (const message of messages) {
                if (!isInlineSize(message.raw.length)) this.writeSync(message.hash, message.raw, options.synced ?? true);
                else if (!this.db.inlineBytes.has(message.hash)) {
                    this.db.inlineBytes.set(message.hash, message.raw);
                    handed.push(message.hash);
                }
            }
            return commit();
        } finally {
            for (const hash of handed) this.db.inlineBytes.delete(hash);
            this.removeUnreferenced(messages.map(message => message.hash));
        }
    }

    /**
     * Removes each file that no `blobs` row names. Best effort: a file left behind is swept at
     * the next start, and the caller's answer must not depend on it.
     */
    removeUnreferenced(hashes: readonly string[]): number {
        let removed = 0;
        for (const hash of new Set(hashes)) {
            try {
                // Another transaction may have added the same content since; only remove a file nothing points at.
                if (!this.db.stmt('SELECT 1 FROM blobs WHERE hash = ?').get(hash)) {
                    fs.rmSync(this.pathOf(hash), { force: true });
                    removed++;
                }
            } catch {
                // See above.
            }
        }
        return removed;
    }

    /**
     * At start-up: removes temporary files left by a crash, and moves every message file that no
     * `blobs` row names to `<dataDir>/lost+found/`. Moved, not deleted: the database passed its
     * identity check, but if it is still the wrong one, those are someone's messages. Returns
     * how many message files were moved.
     */
    sweep(): number {
        this.clearTmpSync();
        // Whether each row has its bytes inline: a file beside such a row is a copy left by a move (inline-messages.ts).
        const known = new Map(this.db.rawStmt('SELECT hash, raw IS NOT NULL FROM blobs').all() as [string, number][]);
        let moved = 0;
        for (const hash of listMessageHashes(this.root)) {
            if (known.get(hash)) {
                fs.rmSync(this.pathOf(hash), { force: true });
            } else if (!known.has(hash)) {
                this.moveToLostFound(hash);
                moved++;
            }
        }
        if (moved) fsyncDir(this.lostFoundDir);
        return moved;
    }

    private get lostFoundDir(): string {
        return path.join(path.dirname(this.root), 'lost+found');
    }

    private moveToLostFound(hash: string): void {
        fs.mkdirSync(this.lostFoundDir, { recursive: true, mode: 0o700 });
        const target = path.join(this.lostFoundDir, hash);
        if (fs.existsSync(target)) {
            // Named by its content hash: lost+found already holds these very bytes.
            fs.rmSync(this.pathOf(hash), { force: true });
        } else {
            fs.renameSync(this.pathOf(hash), target);
        }
    }

    private pathOf(hash: string): string {
        return messageFilePath(this.root, hash);
    }

    /** Writes `raw` under its hash unless already present; returns once it is on disk. */
    private writeSync(hash: string, raw: Buffer, synced = true): void {
        const target = this.pathOf(hash);
        if (fs.existsSync(target)) {
            return;
        }
        const dir = path.dirname(target);
        if (!this.madeDirs.has(dir)) {
            fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
            this.madeDirs.add(dir);
        }
        // Unsynced, a new directory waits for the caller's sync as its file does.
        if (synced && !this.syncedDirs.has(dir)) {
            fsyncDir(this.root);
            this.syncedDirs.add(dir);
        }
        const tmp = path.join(this.tmpDir, `${hash}.${process.pid}.${crypto.randomBytes(4).toString('hex')}`);
        try {
            const fd = fs.openSync(tmp, 'w', 0o600);
            try {
                let offset = 0;
                while (offset < raw.length) {
                    offset += fs.writeSync(fd, raw, offset, raw.length - offset);
                }
                if (synced) fs.fsyncSync(fd);
            } finally {
                fs.closeSync(fd);
            }
            fs.renameSync(tmp, target);
        } catch (err) {
            // A full disk, a file size limit: what was written is of no use, and must not wait for the next start.
            fs.rmSync(tmp, { force: true });
            throw err;
        }
        if (synced) fsyncDir(dir);
    }

    /** Like writeSync, but the write and fsync run on libuv's thread pool, not the event loop. */
    private async write(hash: string, raw: Buffer): Promise<void> {
        const target = this.pathOf(hash);
        if (fs.existsSync(target)) {
            return;
        }
        const dir = path.dirname(target);
        if (!this.syncedDirs.has(dir)) {
            await fs.promises.mkdir(dir, { recursive: true, mode: 0o700 });
            await fsyncDirAsync(this.root);
            this.syncedDirs.add(dir);
        }
        const tmp = path.join(this.tmpDir, `${hash}.${process.pid}.${crypto.randomBytes(4).toString('hex')}`);
        try {
            const handle = await fs.promises.open(tmp, 'w', 0o600);
            try {
                await handle.writeFile(raw);
                await handle.sync();
            } finally {
                await handle.close();
            }
            await fs.promises.rename(tmp, target);
        } catch (err) {
            // As in writeSync.
            await fs.promises.rm(tmp, { force: true });
            throw err;
        }
        await fsyncDirAsync(dir);
    }

    /**
     * Puts everything written so far under blobs/ on disk, with one syncfs(2) of the file system
     * that holds it (coreutils `sync -f`: the same guarantee as an fsync of every file on it,
     * errors reported since Linux 5.8), run by a helper process (syncfs.ts). Where that is not
     * available, fsyncs each of `hashes` and its directory instead. Rejects when either fails.
     */
    async syncFileSystem(hashes: readonly string[]): Promise<void> {
        try {
            this.syncfs ??= new FileSystemSync(this.root);
            await this.syncfs.sync();
            return;
        } catch (err) {
            if (!(err instanceof SyncfsUnavailableError)) throw err;
        }
        const dirs = new Set<string>();
        for (const hash of hashes) {
            const file = this.pathOf(hash);
            let handle: fs.promises.FileHandle;
            try {
                handle = await fs.promises.open(file, 'r');
            } catch (err) {
                // Released (and removed) since it was written: nothing left to make durable.
                if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
                throw err;
            }
            try {
                await handle.sync();
            } finally {
                await handle.close();
            }
            dirs.add(path.dirname(file));
        }
        for (const dir of dirs) await fsyncDirAsync(dir);
        // Subdirectories created by unsynced writes.
        await fsyncDirAsync(this.root);
    }

    /**
     * Writes `raw` under its hash durably whatever is there now (tmp, fsync, rename over, fsync
     * the directory): at start-up, a spooled file an outage may have left short or empty.
     */
    restoreSync(hash: string, raw: Buffer): void {
        if (this.isInline(hash)) return;
        const target = this.pathOf(hash);
        fs.mkdirSync(path.dirname(target), { recursive: true, mode: 0o700 });
        fsyncDir(this.root);
        fs.rmSync(target, { force: true });
        this.writeSync(hash, raw, true);
    }

    /** The whole message (small messages only; stream large ones with createRangeStream). */
    readSync(hash: string): Buffer {
        return this.inlineOr(
            hash,
            bytes => bytes,
            () => fs.readFileSync(this.pathOf(hash))
        );
    }

    /**
     * The bytes of an inline message, or null when the message is a file (or unknown). Small:
     * unpacked whole.
     */
    inline(hash: string): Buffer | null {
        const row = this.db.rawStmt('SELECT raw, size FROM blobs WHERE hash = ?').get(hash) as [raw: Buffer | null, size: number] | undefined;
        return row && row[0] ? unpackRaw(row[0], row[1]) : null;
    }

    /** Whether the message's bytes are in its row (without unpacking them). */
    private isInline(hash: string): boolean {
        return this.db.stmt('SELECT 1 FROM blobs WHERE hash = ? AND raw IS NOT NULL').get(hash) !== undefined;
    }

    /**
     * `fromBytes` of the inline bytes, else `fromFile`. A file not found is looked for inline again:
     * another process may have moved it into its row since the first look (inline-messages.ts).
     */
    private inlineOr<T>(hash: string, fromBytes: (bytes: Buffer) => T, fromFile: () => T): T {
        const bytes = this.inline(hash);
        if (bytes) return fromBytes(bytes);
        try {
            return fromFile();
        } catch (err) {
            const moved = (err as NodeJS.ErrnoException).code === 'ENOENT' ? this.inline(hash) : null;
            if (moved) return fromBytes(moved);
            throw err;
        }
    }

    /** The whole message as a stream (the uplink's SMTP DATA); a missing file errors on the stream. */
    createReadStream(hash: string): Readable {
        const bytes = this.inline(hash);
        return bytes ? Readable.from([bytes]) : fs.createReadStream(this.pathOf(hash));
    }

    /**
     * The header block (its lines, each with its CRLF, without the blank line that ends it), read from the start of
     * the file without reading the body: bounces quote only the original's headers.
     */
    readHeaderBlock(hash: string): Buffer {
        return this.inlineOr(hash, headerBlockOf, () => this.readHeaderBlockFromFile(hash));
    }

    private readHeaderBlockFromFile(hash: string): Buffer {
        const fd = fs.openSync(this.pathOf(hash), 'r');
        try {
            const chunks: Buffer[] = [];
            let total = 0;
            const chunk = Buffer.alloc(16 * 1024);
            // Headers end at the first blank line; cap the read at 1 MB for a pathological header.
            while (total < 1024 * 1024) {
                const read = fs.readSync(fd, chunk, 0, chunk.length, total);
                if (!read) break;
                chunks.push(Buffer.from(chunk.subarray(0, read)));
                total += read;
                const joined = Buffer.concat(chunks);
                const end = joined.indexOf('\r\n\r\n');
                if (end >= 0) return joined.subarray(0, end + 2);
            }
            return Buffer.concat(chunks);
        } finally {
            fs.closeSync(fd);
        }
    }

    /** `length` bytes from `offset` (fewer at the end of the file). */
    readRangeSync(hash: string, offset: number, length: number): Buffer {
        return this.inlineOr(
            hash,
            bytes => bytes.subarray(offset, offset + length),
            () => this.readRangeFromFile(hash, offset, length)
        );
    }

    private readRangeFromFile(hash: string, offset: number, length: number): Buffer {
        const fd = fs.openSync(this.pathOf(hash), 'r');
        try {
            const buffer = Buffer.allocUnsafe(length);
            let filled = 0;
            while (filled < length) {
                const read = fs.readSync(fd, buffer, filled, length - filled, offset + filled);
                if (!read) break;
                filled += read;
            }
            return buffer.subarray(0, filled);
        } finally {
            fs.closeSync(fd);
        }
    }

    /**
     * The root header lines as imap-core's parser makes them (header-summary.ts rootHeaderLines),
     * reading the file from its start only as far as the header goes.
     */
    readRootHeaderLines(hash: string): string[] {
        return this.inlineOr(
            hash,
            bytes => rootHeaderLines(bytes, true).lines,
            () => this.readRootHeaderLinesFromFile(hash)
        );
    }

    private readRootHeaderLinesFromFile(hash: string): string[] {
        const fd = fs.openSync(this.pathOf(hash), 'r');
        try {
            let buffer = Buffer.allocUnsafe(HEADER_READ);
            let length = 0;
            for (;;) {
                if (length === buffer.length) {
                    const larger = Buffer.allocUnsafe(buffer.length * 2);
                    buffer.copy(larger, 0, 0, length);
                    buffer = larger;
                }
                const read = fs.readSync(fd, buffer, length, buffer.length - length, length);
                length += read;
                const { lines, complete } = rootHeaderLines(buffer.subarray(0, length), read === 0);
                if (complete) return lines;
            }
        } finally {
            fs.closeSync(fd);
        }
    }

    /**
     * Streams `length` bytes from `offset` (length 0 or past the end: to the end of the file).
     * `outputBytes` is set for imap-core's Indexer, which uses it to keep its partial-fetch counters.
     */
    createRangeStream(hash: string, offset: number, length: number): Readable & { outputBytes?: number } {
        const bytes = this.inline(hash);
        if (bytes) {
            const range = bytes.subarray(offset, length > 0 ? offset + length : bytes.length);
            const stream = Readable.from(range.length ? [range] : []) as Readable & { outputBytes?: number };
            stream.outputBytes = 0;
            stream.on('data', (chunk: Buffer) => {
                stream.outputBytes! += chunk.length;
            });
            return stream;
        }
        const options: { start: number; end?: number; highWaterMark: number } = { start: offset, highWaterMark: 64 * 1024 };
        if (length > 0) {
            options.end = offset + length - 1;
        }
        const stream = fs.createReadStream(this.pathOf(hash), options) as Readable & { outputBytes?: number };
        stream.outputBytes = 0;
        stream.on('data', (chunk: Buffer) => {
            stream.outputBytes! += chunk.length;
        });
        return stream;
    }

    /** At start-up: the small messages of a store from before migration 16 into their rows (inline-messages.ts). */
    moveSmallFilesInline(db: Connection): number {
        return inlineSmallFiles(
            db,
            hash => {
                try {
                    return fs.readFileSync(this.pathOf(hash));
                } catch {
                    return null;
                }
            },
            hash => fs.rmSync(this.pathOf(hash), { force: true })
        );
    }

    /** Stops the sync helper, if one was started (the store is closing). */
    close(): void {
        this.syncfs?.close();
        this.syncfs = null;
    }

    /** Removes temporary files left by a crash. */
    private clearTmpSync(): void {
        for (const name of fs.readdirSync(this.tmpDir)) {
            fs.rmSync(path.join(this.tmpDir, name), { force: true });
        }
    }
}

/** The header block of a whole message, as readHeaderBlock reads it from a file: up to and including the CRLF before the first blank line. */
function headerBlockOf(raw: Buffer): Buffer {
    const end = raw.subarray(0, 1024 * 1024).indexOf('\r\n\r\n');
    return end >= 0 ? raw.subarray(0, end + 2) : raw.subarray(0, 1024 * 1024);
}

/** Where the message file of `hash` lives under `root` (a data directory's, or a backup's, blobs/). */
export function messageFilePath(root: string, hash: string): string {
    if (!/^[0-9a-f]{64}$/.test(hash)) {
        throw new Error('invalid blob hash');
    }
    return path.join(root, hash.slice(0, 2), hash);
}

/** Every hash that has a file under `root` (absent root: none). */
export function* listMessageHashes(root: string): Generator<string> {
    let dirs: string[];
    try {
        dirs = fs.readdirSync(root);
    } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw err;
    }
    for (const dir of dirs) {
        if (!/^[0-9a-f]{2}$/.test(dir)) {
            continue;
        }
        for (const name of fs.readdirSync(path.join(root, dir))) {
            if (/^[0-9a-f]{64}$/.test(name)) {
                yield name;
            }
        }
    }
}

/** The store id written beside the message files (identity.ts), or null when there is none. */
export function readStoreId(root: string): string | null {
    try {
        return fs.readFileSync(path.join(root, STORE_ID_FILE), 'utf8').trim() || null;
    } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw err;
    }
}

/** Writes the store id beside the message files, durably (tmp, fsync, rename, fsync the directory). */
export function writeStoreId(root: string, storeId: string): void {
    fs.mkdirSync(root, { recursive: true, mode: 0o700 });
    const target = path.join(root, STORE_ID_FILE);
    const tmp = `${target}.${process.pid}.tmp`;
    const fd = fs.openSync(tmp, 'w', 0o600);
    try {
        fs.writeSync(fd, `${storeId}\n`);
        fs.fsyncSync(fd);
    } finally {
        fs.closeSync(fd);
    }
    fs.renameSync(tmp, target);
    fsyncDir(root);
}

/** The file in blobs/ that names the store the message files belong to. */
export const STORE_ID_FILE = '.store-id';

export function fsyncDirSync(dir: string): void {
    fsyncDir(dir);
}

async function fsyncDirAsync(dir: string): Promise<void> {
    let handle: fs.promises.FileHandle | undefined;
    try {
        handle = await fs.promises.open(dir, 'r');
        await handle.sync();
    } catch {
        // As in fsyncDir.
    } finally {
        await handle?.close();
    }
}

function fsyncDir(dir: string): void {
    let fd: number | undefined;
    try {
        fd = fs.openSync(dir, 'r');
        fs.fsyncSync(fd);
    } catch {
        // Some filesystems refuse fsync on directories; the rename is still ordered after the data fsync.
    } finally {
        if (fd !== undefined) {
            fs.closeSync(fd);
        }
    }
}
