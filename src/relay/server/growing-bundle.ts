/**
 * A down bundle the relay is still writing, which the Pi fetches as it grows (docs/relay.md,
 * "Transfer"): its compressed bytes cross the slow link while the relay compresses the rest,
 * instead of after (on a first sync, a second or more of level-19 zstd the link would otherwise
 * wait for).
 *
 * The trailer (checksum and signature) goes out only once the relay has committed the bundle
 * (finish(), after its state records the bundle built): until then the Pi holds no bundle it
 * could verify and apply, so a relay that stops before the commit, and builds another bundle of
 * that number later, never has the Pi apply the first one. A Pi holding part of the first
 * resumes into the second, fails its checksum, and fetches it again from byte 0 (client.ts).
 */
import fs from 'node:fs';
import type http from 'node:http';

/** The trailer that gives a growing bundle's whole size once it is known. */
export const BUNDLE_BYTES_TRAILER = 'x-bundle-bytes';

/** Bytes read from the file per write to the response. */
const CHUNK = 64 * 1024;
/** What a write waits for while the bundle grows: one whole TLS record. */
const MIN_WRITE = 16 * 1024;

export class GrowingBundle {
    private written = 0;
    private size: number | null = null;
    private failed = false;
    private waiters: (() => void)[] = [];

    constructor(
        /** Where the writer writes (BundleWriter.partialPath), and where the file is once finished. */
        private readonly partialPath: string,
        private readonly target: string
    ) {}

    /** The writer has written `bytes` (header and compressed records). */
    progress(bytes: number): void {
        this.written = bytes;
        this.wake();
    }

    /** The bundle is whole (`size` bytes, trailer included) and committed: the rest may go. */
    finish(size: number): void {
        this.size = size;
        this.written = size;
        this.wake();
    }

    /** The bundle will not be finished: its readers are cut. */
    fail(): void {
        this.failed = true;
        this.wake();
    }

    private wake(): void {
        const waiters = this.waiters;
        this.waiters = [];
        for (const wake of waiters) wake();
    }

    private changed(): Promise<void> {
        return new Promise(resolve => this.waiters.push(resolve));
    }

    /**
     * Answers a GET for bytes `from` through `end` (inclusive; Infinity: to the end) as they are
     * written: 206 with no length (chunked), and once the whole size is known the trailer
     * BUNDLE_BYTES_TRAILER; 416 when the bundle ends before `from`. A failed bundle cuts the
     * response.
     */
    async send(res: http.ServerResponse, from: number, end: number): Promise<void> {
        let handle: fs.promises.FileHandle | null = null;
        // A Pi that goes (a cut) wakes the wait below, and this reader stops.
        const gone = () => this.wake();
        res.once('close', gone);
        try {
            let position = from;
            for (;;) {
                if (this.failed) throw new Error('the down bundle being written failed');
                if (res.destroyed) return;
                const last = Math.min(end, (this.size ?? Infinity) - 1);
                if (this.size !== null && position > this.size) {
                    res.writeHead(416, { 'content-type': 'application/json' }).end(JSON.stringify({ error: `the bundle has ${this.size} bytes` }));
                    return;
                }
                if (position > last) break;
                // Less than a TLS record's worth is held back until more comes or the end is known (fewer records, fewer bytes).
                if (position >= this.written || (this.size === null && this.written - position < MIN_WRITE && this.written <= last)) {
                    await this.changed();
                    continue;
                }
                if (!res.headersSent) res.writeHead(206, { 'content-type': 'application/octet-stream', 'x-bundle-growing': '1', trailer: BUNDLE_BYTES_TRAILER });
                handle ??= await openEither(this.partialPath, this.target);
                const want = Math.min(CHUNK, this.written - position, last - position + 1);
                const { bytesRead, buffer } = await handle.read(Buffer.alloc(want), 0, want, position);
                if (!bytesRead) throw new Error(`the down bundle being written ends at byte ${position}`);
                position += bytesRead;
                if (!res.write(buffer.subarray(0, bytesRead))) await drained(res);
            }
            if (!res.headersSent) res.writeHead(206, { 'content-type': 'application/octet-stream', 'x-bundle-growing': '1', trailer: BUNDLE_BYTES_TRAILER });
            if (this.size !== null) res.addTrailers({ [BUNDLE_BYTES_TRAILER]: String(this.size) });
            res.end();
        } finally {
            res.off('close', gone);
            await handle?.close();
        }
    }
}

/** Until the response takes more, or is gone. */
function drained(res: http.ServerResponse): Promise<void> {
    return new Promise(resolve => {
        const done = () => {
            res.off('drain', done);
            res.off('close', done);
            resolve();
        };
        res.on('drain', done);
        res.on('close', done);
    });
}

/** The partial file, or, renamed since, the finished one (the same bytes). */
async function openEither(partial: string, target: string): Promise<fs.promises.FileHandle> {
    try {
        return await fs.promises.open(partial, 'r');
    } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        return fs.promises.open(target, 'r');
    }
}
