/**
 * Writes a bundle to a file, one record at a time, through one zstd stream: memory holds one
 * record's body at most (a body given as a stream, not even that). The file appears under its
 * name only when it is complete and fsync'd (written beside it, then renamed), so a crash never
 * leaves half a bundle where a whole one is expected.
 */
import crypto from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import zlib from 'node:zlib';
import type { z } from 'zod';
import {
    BUNDLE_MAGIC,
    BundleError,
    END_RECORD_CODE,
    FORMAT_LIMITS,
    FORMAT_VERSION,
    HAS_BODY,
    DIRECTION_RECORDS,
    RECORD_CODES,
    TRAILER_MAGIC,
    ZSTD_WINDOW_LOG,
    headerSchema,
    recordSchemas,
    type BundleHeader,
    type RecordMeta,
    type RecordType
} from './format';
import { signDigest } from './keys';

export interface WriterOptions {
    /** zstd level, 1 to 22 (default 19: the relay link is slow, the CPU is not the limit). */
    level?: number;
    /**
     * About how many bytes the records will take before compression (an upper bound is best).
     * zstd's window and, at level 19, its match tables are then sized to it (zstdParameters)
     * instead of to the 128 MiB window: the same output when the records fit, and far less
     * memory to set up and clear (1.3 s for a 4 KB bundle at level 19 on a busy 2-core VM).
     */
    expectedBytes?: number;
    /**
     * Told the bytes in the file (partialPath) after each write of the header and the compressed
     * records, so a reader may follow it as it grows; the trailer is not told of (finish()
     * returns the whole size).
     */
    onProgress?: (bytes: number) => void;
}

/** zstd's own table sizes at level 19 for a large input (hashLog, chainLog): never raised here. */
const LEVEL_19_TABLES = { hashLog: 22, chainLog: 24 };

/**
 * The compressor's parameters. With `expectedBytes`, the window holds twice that (at least
 * 128 KiB, at most ZSTD_WINDOW_LOG), and at level 19 the hash and chain tables are capped at
 * what zstd itself uses for an input of that window (windowLog + 1), as it does when it knows
 * the input's size: the same matches are found within the window, with tables a fraction of
 * the size. Records beyond the window still compress, against the last window's bytes only.
 */
export function zstdParameters(level: number, expectedBytes?: number): Record<number, number> {
    const params: Record<number, number> = {
        [zlib.constants.ZSTD_c_compressionLevel]: level,
        [zlib.constants.ZSTD_c_windowLog]: ZSTD_WINDOW_LOG,
        [zlib.constants.ZSTD_c_enableLongDistanceMatching]: 1,
        [zlib.constants.ZSTD_c_checksumFlag]: 1
    };
    if (expectedBytes === undefined) return params;
    const windowLog = Math.min(ZSTD_WINDOW_LOG, Math.max(17, Math.ceil(Math.log2(Math.max(1, expectedBytes) * 2))));
    params[zlib.constants.ZSTD_c_windowLog] = windowLog;
    if (level === 19) {
        params[zlib.constants.ZSTD_c_hashLog] = Math.min(LEVEL_19_TABLES.hashLog, windowLog + 1);
        params[zlib.constants.ZSTD_c_chainLog] = Math.min(LEVEL_19_TABLES.chainLog, windowLog + 1);
    }
    return params;
}

export interface WrittenBundle {
    path: string;
    bytes: number;
    records: number;
    /** sha256 of the bundle before its trailer, hex. */
    sha256: string;
}

function u32(value: number): Buffer {
    const buffer = Buffer.alloc(4);
    buffer.writeUInt32BE(value);
    return buffer;
}

/**
 * `value` checked against `schema`; a value that does not fit is the caller's mistake, told as
 * the module's own BundleError (naming `where` and the field) rather than a raw ZodError.
 */
function checkedValue<S extends z.ZodType>(schema: S, value: unknown, where: string): z.infer<S> {
    const parsed = schema.safeParse(value);
    if (parsed.success) return parsed.data;
    const issue = parsed.error.issues[0];
    throw new BundleError('MALFORMED', `${where}: ${issue.path.join('.') || 'value'}: ${issue.message}`);
}

export class BundleWriter {
    private position = 0;
    private records = 0;
    private failed: Error | null = null;
    private finished = false;
    private readonly hash = crypto.createHash('sha256');
    private readonly compressor: zlib.ZstdCompress;
    private readonly drained: Promise<void>;

    private constructor(
        private readonly file: fs.promises.FileHandle,
        private readonly target: string,
        private readonly partial: string,
        private readonly header: BundleHeader,
        private readonly key: crypto.KeyObject,
        params: Record<number, number>,
        private readonly onProgress: ((bytes: number) => void) | undefined
    ) {
        const compressor = zlib.createZstdCompress({ params });
        this.compressor = compressor;
        this.drained = (async () => {
            for await (const chunk of compressor as AsyncIterable<Buffer>) await this.writeRaw(chunk);
        })().catch((err: Error) => {
            this.failed ??= err;
            compressor.destroy(err);
        });
    }

    /**
     * Starts a bundle at `target` (written as `target.partial` until finish()). The caller must
     * call finish() or abort(); `key` is the sender's private signing key.
     */
    static async create(target: string, header: BundleHeader, key: crypto.KeyObject, options: WriterOptions = {}): Promise<BundleWriter> {
        const checked = checkedValue(headerSchema, header, 'the header');
        const partial = path.join(path.dirname(target), `.${path.basename(target)}.partial`);
        const file = await fs.promises.open(partial, 'w', 0o600);
        const writer = new BundleWriter(file, target, partial, checked, key, zstdParameters(options.level ?? 19, options.expectedBytes), options.onProgress);
        const headerJson = Buffer.from(JSON.stringify(checked));
        await writer.writeRaw(Buffer.concat([BUNDLE_MAGIC, Buffer.from([FORMAT_VERSION]), u32(headerJson.length), headerJson]));
        return writer;
    }

    private async writeRaw(chunk: Buffer): Promise<void> {
        this.hash.update(chunk);
        let done = 0;
        while (done < chunk.length) {
            const { bytesWritten } = await this.file.write(chunk, done, chunk.length - done, this.position + done);
            done += bytesWritten;
        }
        this.position += chunk.length;
        this.onProgress?.(this.position);
    }

    /** Where the bundle is written until finish() renames it to its target. */
    get partialPath(): string {
        return this.partial;
    }

    private async compress(chunk: Buffer): Promise<void> {
        this.throwIfFailed();
        if (!this.compressor.write(chunk)) await once(this.compressor, 'drain');
        this.throwIfFailed();
    }

    /** A write of the compressed output failed (disk full): the bundle cannot be finished. */
    private throwIfFailed(): void {
        const failed = this.failed;
        if (failed) throw failed;
    }

    /**
     * Adds one record. `body` (only for types that carry one) is a Buffer or a stream of exactly
     * `bodyLength` bytes; a stream that gives more or fewer fails the bundle.
     */
    async add<T extends RecordType>(type: T, meta: RecordMeta<T>, body?: Buffer | { stream: Readable; length: number }): Promise<void> {
        if (this.finished) throw new Error('the bundle is finished');
        if (!DIRECTION_RECORDS[this.header.direction].has(type)) throw new BundleError('MALFORMED', `a ${this.header.direction} bundle cannot carry ${type} records`);
        const checked = checkedValue(recordSchemas[type], meta, `a ${type} record`);
        const length = body === undefined ? 0 : Buffer.isBuffer(body) ? body.length : body.length;
        if (length && !HAS_BODY.has(type)) throw new BundleError('MALFORMED', `${type} records have no body`);
        if (length > FORMAT_LIMITS.maxBodyBytes) throw new BundleError('TOO_LARGE', `a body of ${length} bytes, at most ${FORMAT_LIMITS.maxBodyBytes}`);
        if (this.records >= FORMAT_LIMITS.maxRecords) throw new BundleError('TOO_LARGE', `more than ${FORMAT_LIMITS.maxRecords} records`);
        const metaJson = Buffer.from(JSON.stringify(checked));
        if (metaJson.length > FORMAT_LIMITS.maxMetaBytes) throw new BundleError('TOO_LARGE', `a ${type} meta of ${metaJson.length} bytes`);
        await this.compress(Buffer.concat([Buffer.from([RECORD_CODES[type]]), u32(metaJson.length), metaJson, u32(length)]));
        if (Buffer.isBuffer(body)) {
            if (body.length) await this.compress(body);
        } else if (body) {
            let seen = 0;
            for await (const chunk of body.stream as AsyncIterable<Buffer>) {
                seen += chunk.length;
                if (seen > length) break;
                await this.compress(chunk);
            }
            if (seen !== length) {
                body.stream.destroy();
                throw new BundleError('MALFORMED', `a ${type} body stream gave ${seen > length ? 'more' : seen} bytes, ${length} were declared`);
            }
        }
        this.records++;
    }

    /** Ends the records, signs, fsyncs and renames the file into place. */
    async finish(): Promise<WrittenBundle> {
        if (this.finished) throw new Error('the bundle is finished');
        this.finished = true;
        try {
            const end = Buffer.from(JSON.stringify({ records: this.records }));
            await this.compress(Buffer.concat([Buffer.from([END_RECORD_CODE]), u32(end.length), end, u32(0)]));
            this.compressor.end();
            await this.drained;
            this.throwIfFailed();
            const digest = this.hash.digest();
            const trailer = Buffer.concat([TRAILER_MAGIC, u32(FORMAT_VERSION), digest, signDigest(digest, this.key)]);
            await this.file.write(trailer, 0, trailer.length, this.position);
            const bytes = this.position + trailer.length;
            await this.file.sync();
            await this.file.close();
            await fs.promises.rename(this.partial, this.target);
            await syncDirectory(path.dirname(this.target));
            return { path: this.target, bytes, records: this.records, sha256: digest.toString('hex') };
        } catch (err) {
            await this.abort();
            throw err;
        }
    }

    /** Gives up: the partial file is removed. */
    async abort(): Promise<void> {
        this.finished = true;
        this.compressor.destroy();
        await this.drained.catch(() => undefined);
        await this.file.close().catch(() => undefined);
        await fs.promises.rm(this.partial, { force: true });
    }
}

/** fsyncs a directory so a rename in it survives a power cut. */
export async function syncDirectory(dir: string): Promise<void> {
    const handle = await fs.promises.open(dir, 'r');
    try {
        await handle.sync();
    } finally {
        await handle.close();
    }
}
