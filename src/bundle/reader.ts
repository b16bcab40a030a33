/**
 * Reads a bundle from a file (or any stream of its bytes) as it decompresses: the header first,
 * then one record at a time, and at the end the trailer's checksum and signature. Memory holds
 * one record's body at most. Every malformed input ends in a BundleError (format.ts) that says
 * what was wrong and where.
 *
 * The signature is known only at the end: a caller that acts on records must first read the
 * whole bundle once (verifyBundle) and only then read it again to apply it.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import {
    BUNDLE_MAGIC,
    BundleError,
    DIRECTION_RECORDS,
    END_RECORD_CODE,
    FORMAT_VERSION,
    HAS_BODY,
    RECORD_BY_CODE,
    TRAILER_LENGTH,
    TRAILER_MAGIC,
    ZSTD_WINDOW_LOG,
    effectiveLimits,
    headerSchema,
    parseMeta,
    recordSchemas,
    type BundleHeader,
    type BundleLimits,
    type BundleRecord
} from './format';
import { verifyDigest } from './keys';
import { z } from 'zod';

export interface ReadOptions {
    /** The public key of the peer that must have signed the bundle. */
    signer: crypto.KeyObject;
    limits?: Partial<BundleLimits>;
}

/** Reads exact byte counts from an async stream of chunks. */
class ByteSource {
    private chunks: Buffer[] = [];
    private buffered = 0;
    private done = false;
    /** Bytes handed out so far. */
    consumed = 0;

    constructor(private readonly iterator: AsyncIterator<Buffer>) {}

    private async fill(n: number): Promise<void> {
        while (this.buffered < n && !this.done) {
            const next = await this.iterator.next();
            if (next.done) this.done = true;
            else if (next.value.length) {
                this.chunks.push(next.value);
                this.buffered += next.value.length;
            }
        }
    }

    /** Exactly `n` bytes; null at a clean end (nothing left); TRUNCATED when the input ends inside them. */
    async read(n: number, what: string): Promise<Buffer | null> {
        await this.fill(Math.max(n, 1));
        if (this.buffered === 0 && this.done) return null;
        if (this.buffered < n) throw new BundleError('TRUNCATED', `the input ends inside ${what} (byte ${this.consumed + this.buffered} of the stream)`);
        const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
        const out = all.subarray(0, n);
        const rest = all.subarray(n);
        this.chunks = rest.length ? [rest] : [];
        this.buffered = rest.length;
        this.consumed += n;
        return out;
    }

    async readExact(n: number, what: string): Promise<Buffer> {
        const bytes = await this.read(n, what);
        if (!bytes) throw new BundleError('TRUNCATED', `the input ends before ${what}`);
        return bytes;
    }

    /** What was read ahead and not handed out yet (and forgets it): the caller reads on from the iterator. */
    drainBuffered(): Buffer {
        const all = Buffer.concat(this.chunks);
        this.chunks = [];
        this.buffered = 0;
        return all;
    }

    /** Whether anything is left. */
    async atEnd(): Promise<boolean> {
        await this.fill(1);
        return this.buffered === 0 && this.done;
    }
}

/**
 * The compressed part of the raw input, hashed as it passes, with the last TRAILER_LENGTH bytes
 * held back: at the end `trailer.bytes` holds them.
 */
async function* compressedPart(source: AsyncIterator<Buffer>, first: Buffer, hash: crypto.Hash, trailer: { bytes: Buffer | null }): AsyncGenerator<Buffer> {
    let held: Buffer = Buffer.alloc(0);
    for (let chunk: Buffer | null = first; chunk;) {
        held = held.length ? Buffer.concat([held, chunk]) : chunk;
        const next = await source.next();
        chunk = next.done ? null : next.value;
        if (held.length > TRAILER_LENGTH) {
            const out = held.subarray(0, held.length - TRAILER_LENGTH);
            held = held.subarray(held.length - TRAILER_LENGTH);
            hash.update(out);
            yield out;
        }
    }
    trailer.bytes = held;
}

function zstdError(err: Error): BundleError {
    if (err instanceof BundleError) return err;
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (/unexpected end/i.test(err.message) || code === 'Z_BUF_ERROR') return new BundleError('TRUNCATED', `the compressed records end early (${err.message})`);
    return new BundleError('CORRUPT', `the compressed records do not decode (${err.message})`);
}

/**
 * A bundle being read: `header` once open() resolved, then `records()` once, to the end (the
 * trailer is checked when it ends; a loop that stops early has checked nothing).
 */
export class BundleReader {
    private constructor(
        readonly header: BundleHeader,
        /** Bytes of the file before the compressed records (magic, version, header). */
        private readonly prefixLength: number,
        private readonly raw: AsyncIterator<Buffer>,
        private readonly rest: Buffer,
        private readonly hash: crypto.Hash,
        private readonly options: ReadOptions,
        private readonly limits: BundleLimits,
        private readonly close: () => void
    ) {}

    /** Opens a bundle file, or a stream of its bytes, and reads its header. */
    static async open(input: string | Readable, options: ReadOptions): Promise<BundleReader> {
        const stream = typeof input === 'string' ? fs.createReadStream(input, { highWaterMark: 256 * 1024 }) : input;
        const limits = effectiveLimits(options.limits);
        const iterator = (stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
        const close = () => stream.destroy();
        try {
            const source = new ByteSource(iterator);
            const magic = await source.read(BUNDLE_MAGIC.length, 'the magic');
            if (!magic) throw new BundleError('TRUNCATED', 'the input is empty');
            if (!magic.equals(BUNDLE_MAGIC)) throw new BundleError('MALFORMED', 'not a mailmule bundle (bad magic)');
            const version = (await source.readExact(1, 'the format version'))[0];
            if (version !== FORMAT_VERSION) throw new BundleError('VERSION', `format version ${version}; this mailmule reads version ${FORMAT_VERSION}`);
            const headerLength = (await source.readExact(4, 'the header length')).readUInt32BE();
            if (headerLength > limits.maxMetaBytes) throw new BundleError('TOO_LARGE', `a header of ${headerLength} bytes, at most ${limits.maxMetaBytes}`);
            const headerBytes = await source.readExact(headerLength, 'the header');
            const header = parseMeta(headerBytes, headerSchema, limits, 'header');
            const hash = crypto.createHash('sha256');
            const prefix = Buffer.concat([magic, Buffer.from([version]), Buffer.alloc(4), headerBytes]);
            prefix.writeUInt32BE(headerLength, magic.length + 1);
            hash.update(prefix);
            // What the ByteSource read ahead belongs to the compressed part.
            const rest = source.drainBuffered();
            return new BundleReader(header, prefix.length, iterator, rest, hash, options, limits, close);
        } catch (err) {
            close();
            throw err;
        }
    }

    /**
     * The records, in order, each checked against its schema and the bundle's direction. When
     * the loop reaches the end, the end record's count, the checksum and the signature have been
     * checked; any failure throws.
     */
    async *records(): AsyncGenerator<BundleRecord> {
        const trailer: { bytes: Buffer | null } = { bytes: null };
        const decompressor = zlib.createZstdDecompress({ params: { [zlib.constants.ZSTD_d_windowLogMax]: ZSTD_WINDOW_LOG } });
        const compressed = Readable.from(compressedPart(this.raw, this.rest, this.hash, trailer));
        let failure: BundleError | null = null;
        compressed.on('error', err => {
            failure ??= err instanceof BundleError ? err : new BundleError('TRUNCATED', `reading the bundle failed (${err.message})`);
            decompressor.destroy(failure);
        });
        compressed.pipe(decompressor);
        const source = new ByteSource((decompressor as AsyncIterable<Buffer>)[Symbol.asyncIterator]());
        const allowed = DIRECTION_RECORDS[this.header.direction];
        let index = 0;
        try {
            for (; ; index++) {
                const where = `record ${index + 1}`;
                const head = await source.read(5, where).catch(err => {
                    throw failure ?? zstdError(err as Error);
                });
                if (!head) throw new BundleError('TRUNCATED', `the records end without an end record (after ${index})`);
                const code = head[0];
                const metaLength = head.readUInt32BE(1);
                if (metaLength > this.limits.maxMetaBytes) throw new BundleError('TOO_LARGE', `${where}: meta of ${metaLength} bytes, at most ${this.limits.maxMetaBytes}`);
                const metaBytes = await this.pull(source, metaLength, `${where}'s meta`, () => failure);
                const bodyLength = (await this.pull(source, 4, `${where}'s body length`, () => failure)).readUInt32BE();
                if (code === END_RECORD_CODE) {
                    const end = parseMeta(metaBytes, z.object({ records: z.number().int().min(0) }).strict(), this.limits, 'end record');
                    if (end.records !== index) throw new BundleError('MALFORMED', `the end record counts ${end.records} records, the bundle has ${index}`);
                    if (bodyLength) throw new BundleError('MALFORMED', 'the end record has a body');
                    if (!(await source.atEnd().catch(err => Promise.reject(failure ?? zstdError(err as Error))))) {
                        throw new BundleError('MALFORMED', 'data after the end record');
                    }
                    break;
                }
                if (index >= this.limits.maxRecords) throw new BundleError('TOO_LARGE', `more than ${this.limits.maxRecords} records`);
                const type = RECORD_BY_CODE.get(code);
                if (!type) throw new BundleError('MALFORMED', `${where}: unknown record type ${code}`);
                if (!allowed.has(type)) throw new BundleError('MALFORMED', `${where}: a ${this.header.direction} bundle cannot carry ${type} records`);
                if (bodyLength && !HAS_BODY.has(type)) throw new BundleError('MALFORMED', `${where}: ${type} records have no body`);
                if (bodyLength > this.limits.maxBodyBytes) throw new BundleError('TOO_LARGE', `${where}: a body of ${bodyLength} bytes, at most ${this.limits.maxBodyBytes}`);
                if (source.consumed + bodyLength > this.limits.maxTotalBytes) throw new BundleError('TOO_LARGE', `more than ${this.limits.maxTotalBytes} bytes of records`);
                const meta = parseMeta(metaBytes, recordSchemas[type], this.limits, `${where} (${type})`);
                const body = bodyLength ? await this.pull(source, bodyLength, `${where}'s body`, () => failure) : Buffer.alloc(0);
                yield { type, meta, body } as BundleRecord;
            }
            this.checkTrailer(trailer.bytes);
        } finally {
            compressed.destroy();
            decompressor.destroy();
            this.close();
        }
    }

    private async pull(source: ByteSource, n: number, what: string, failure: () => BundleError | null): Promise<Buffer> {
        try {
            return await source.readExact(n, what);
        } catch (err) {
            throw failure() ?? zstdError(err as Error);
        }
    }

    private checkTrailer(bytes: Buffer | null): void {
        if (!bytes || bytes.length < TRAILER_LENGTH || !bytes.subarray(0, TRAILER_MAGIC.length).equals(TRAILER_MAGIC)) {
            throw new BundleError('TRUNCATED', 'the trailer (checksum and signature) is missing');
        }
        const version = bytes.readUInt32BE(TRAILER_MAGIC.length);
        if (version !== FORMAT_VERSION) throw new BundleError('VERSION', `trailer version ${version}`);
        const digest = bytes.subarray(TRAILER_MAGIC.length + 4, TRAILER_MAGIC.length + 36);
        const signature = bytes.subarray(TRAILER_MAGIC.length + 36);
        if (!this.hash.digest().equals(digest)) throw new BundleError('CHECKSUM', 'the sha256 does not match: the bundle was damaged');
        if (!verifyDigest(digest, signature, this.options.signer)) throw new BundleError('SIGNATURE', 'not signed by the expected peer');
    }

    /** Bytes before the compressed records (for tests that damage a chosen part). */
    get headerBytes(): number {
        return this.prefixLength;
    }
}

/** Reads the whole bundle once, checking everything; the header and record count when it is sound. */
export async function verifyBundle(input: string | Readable, options: ReadOptions): Promise<{ header: BundleHeader; records: number }> {
    const reader = await BundleReader.open(input, options);
    let records = 0;
    for await (const record of reader.records()) {
        void record;
        records++;
    }
    return { header: reader.header, records };
}
