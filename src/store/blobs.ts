/**
 * Raw messages as content-addressed files: `<dataDir>/blobs/ab/<sha256>`.
 *
 * A message is written once however many mailboxes (or queue entries) hold it. A file is made
 * durable before any database row points at it: written to tmp/, fsynced, renamed into place,
 * and its directory fsynced. A crash can therefore leave a file nothing points at (swept at
 * start-up), never a row pointing at a missing file.
 */
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { Readable } from 'node:stream';

export class BlobFiles {
    readonly root: string;
    private readonly tmpDir: string;
    private readonly syncedDirs = new Set<string>();

    constructor(dataDir: string) {
        this.root = path.join(dataDir, 'blobs');
        this.tmpDir = path.join(dataDir, 'tmp');
        fs.mkdirSync(this.root, { recursive: true, mode: 0o700 });
        fs.mkdirSync(this.tmpDir, { recursive: true, mode: 0o700 });
    }

    pathOf(hash: string): string {
        if (!/^[0-9a-f]{64}$/.test(hash)) {
            throw new Error('invalid blob hash');
        }
        return path.join(this.root, hash.slice(0, 2), hash);
    }

    exists(hash: string): boolean {
        return fs.existsSync(this.pathOf(hash));
    }

    /** Writes `raw` under its hash unless already present; returns once it is on disk. */
    writeSync(hash: string, raw: Buffer): void {
        const target = this.pathOf(hash);
        if (fs.existsSync(target)) {
            return;
        }
        const dir = path.dirname(target);
        if (!this.syncedDirs.has(dir)) {
            fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
            fsyncDir(this.root);
            this.syncedDirs.add(dir);
        }
        const tmp = path.join(this.tmpDir, `${hash}.${process.pid}.${crypto.randomBytes(4).toString('hex')}`);
        const fd = fs.openSync(tmp, 'w', 0o600);
        try {
            let offset = 0;
            while (offset < raw.length) {
                offset += fs.writeSync(fd, raw, offset, raw.length - offset);
            }
            fs.fsyncSync(fd);
        } finally {
            fs.closeSync(fd);
        }
        fs.renameSync(tmp, target);
        fsyncDir(dir);
    }

    /** Like writeSync, but the write and fsync run on libuv's thread pool, not the event loop. */
    async write(hash: string, raw: Buffer): Promise<void> {
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
        const handle = await fs.promises.open(tmp, 'w', 0o600);
        try {
            await handle.writeFile(raw);
            await handle.sync();
        } finally {
            await handle.close();
        }
        await fs.promises.rename(tmp, target);
        await fsyncDirAsync(dir);
    }

    /**
     * Moves an already written, fsynced temporary file into place under `hash`
     * (for writers that streamed a message to disk while hashing it).
     */
    adoptSync(tmpFile: string, hash: string): void {
        const target = this.pathOf(hash);
        if (fs.existsSync(target)) {
            fs.rmSync(tmpFile, { force: true });
            return;
        }
        const dir = path.dirname(target);
        fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
        fs.renameSync(tmpFile, target);
        fsyncDir(dir);
    }

    /** A path for a temporary file on the same filesystem as the blobs. */
    tempPath(): string {
        return path.join(this.tmpDir, `in.${process.pid}.${crypto.randomBytes(8).toString('hex')}`);
    }

    readSync(hash: string): Buffer {
        return fs.readFileSync(this.pathOf(hash));
    }

    /**
     * Streams `length` bytes from `offset` (length 0 or past the end: to the end of the file).
     * `outputBytes` is set for imap-core's Indexer, which uses it to keep its partial-fetch counters.
     */
    createRangeStream(hash: string, offset: number, length: number): Readable & { outputBytes?: number } {
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

    removeSync(hash: string): void {
        fs.rmSync(this.pathOf(hash), { force: true });
    }

    /** Every hash that has a file. */
    *listHashes(): Generator<string> {
        for (const dir of fs.readdirSync(this.root)) {
            const full = path.join(this.root, dir);
            if (!/^[0-9a-f]{2}$/.test(dir)) {
                continue;
            }
            for (const name of fs.readdirSync(full)) {
                if (/^[0-9a-f]{64}$/.test(name)) {
                    yield name;
                }
            }
        }
    }

    /** Removes temporary files left by a crash. */
    clearTmpSync(): void {
        for (const name of fs.readdirSync(this.tmpDir)) {
            fs.rmSync(path.join(this.tmpDir, name), { force: true });
        }
    }
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
