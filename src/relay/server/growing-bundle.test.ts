import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { BUNDLE_BYTES_TRAILER, GrowingBundle } from './growing-bundle';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailmule-growing-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A loopback server that answers every GET from `bundle`, with the request's Range. */
async function serve(bundle: GrowingBundle): Promise<{ port: number; close: () => Promise<void> }> {
    const server = http.createServer((req, res) => {
        const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
        bundle.send(res, range ? Number(range[1]) : 0, range?.[2] ? Number(range[2]) : Infinity).catch(() => res.destroy());
    });
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
    return { port: (server.address() as AddressInfo).port, close: () => new Promise(resolve => server.close(() => resolve())) };
}

function get(port: number, range: string): Promise<http.IncomingMessage> {
    return new Promise((resolve, reject) => http.get({ host: '127.0.0.1', port, headers: { range } }, resolve).on('error', reject));
}

/** What a response delivered, and a wait until it has delivered at least some number of bytes. */
function collect(res: http.IncomingMessage): { chunks: Buffer[]; until: (bytes: number) => Promise<void> } {
    const chunks: Buffer[] = [];
    let waiting: { bytes: number; resolve: () => void } | null = null;
    const size = () => chunks.reduce((sum, chunk) => sum + chunk.length, 0);
    res.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        if (waiting && size() >= waiting.bytes) waiting.resolve();
    });
    return {
        chunks,
        until: bytes =>
            size() >= bytes
                ? Promise.resolve()
                : new Promise(resolve => {
                      waiting = { bytes, resolve };
                  })
    };
}

test('a growing bundle goes out as it is written, and its last bytes and whole size only once finished', async () => {
    const partial = path.join(dir, '.1.bundle.partial');
    const target = path.join(dir, '1.bundle');
    const records = crypto.randomBytes(100_000);
    const trailer = crypto.randomBytes(108);
    fs.writeFileSync(partial, records.subarray(0, 40_000));
    const bundle = new GrowingBundle(partial, target);
    bundle.progress(40_000);
    const server = await serve(bundle);
    try {
        const res = await get(server.port, 'bytes=1000-');
        assert.equal(res.statusCode, 206);
        assert.equal(res.headers['x-bundle-growing'], '1');
        const body = collect(res);
        await body.until(39_000);
        // More written; then the trailer, told only when finished (the file renamed meanwhile, as the writer does).
        fs.appendFileSync(partial, records.subarray(40_000));
        bundle.progress(records.length);
        await body.until(records.length - 1000);
        fs.appendFileSync(partial, trailer);
        fs.renameSync(partial, target);
        const ended = new Promise(resolve => res.once('end', resolve));
        bundle.finish(records.length + trailer.length);
        await ended;
        assert.ok(Buffer.concat(body.chunks).equals(Buffer.concat([records, trailer]).subarray(1000)));
        assert.equal(res.trailers[BUNDLE_BYTES_TRAILER], String(records.length + trailer.length));

        // A Pi holding more than the bundle has (part of another one of that number): 416.
        const beyond = await get(server.port, `bytes=${records.length + trailer.length + 1}-`);
        beyond.resume();
        assert.equal(beyond.statusCode, 416);
    } finally {
        await server.close();
    }
});

test('a growing bundle that fails cuts its readers', async () => {
    const partial = path.join(dir, '.2.bundle.partial');
    fs.writeFileSync(partial, crypto.randomBytes(20_000));
    const bundle = new GrowingBundle(partial, path.join(dir, '2.bundle'));
    bundle.progress(20_000);
    const server = await serve(bundle);
    try {
        const res = await get(server.port, 'bytes=0-');
        await collect(res).until(20_000);
        const cut = new Promise<boolean>(resolve => {
            res.once('close', () => resolve(!res.complete));
        });
        bundle.fail();
        assert.equal(await cut, true, 'the response was cut, not ended');
    } finally {
        await server.close();
    }
});
