/**
 * Unit tests for ResponseBatch (src/imap/response-batch.ts) through imap-core's own IMAPComposer,
 * the stream it writes to in a session: what reaches the socket must be, byte for byte and in
 * order, what the composer writes when each response goes to it on its own. Responses holding
 * Buffers go to it as pieces (`compiled` an array), which imap-core's composer takes with patch 132.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { PassThrough } from 'node:stream';
import './engine';
import { FIRST_CHUNK_BYTES, ResponseBatch, type CompiledResponse } from './response-batch';

// Loaded after ./engine, which sets up imap-core's environment.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { IMAPComposer } = require('@zone-eu/wildduck/imap-core/lib/imap-composer.js') as {
    IMAPComposer: new (options: { connection: unknown; skipFetchLog?: boolean }) => PassThrough;
};

/** A composer as a connection makes one (skipFetchLog as src/imap/server.ts sets it), and a function that ends it and gives all it wrote. */
function composer(): { stream: PassThrough; written: () => Promise<Buffer> } {
    const stream = new IMAPComposer({ connection: { id: 'unit', logger: { debug() {} } }, skipFetchLog: true });
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    const ended = once(stream, 'end');
    return {
        stream,
        written: async () => {
            stream.end();
            await ended;
            return Buffer.concat(chunks);
        }
    };
}

/** The bytes of the responses written one by one, as `{ compiled }` binary strings (imap-core's own way). */
async function oneByOne(responses: CompiledResponse[]): Promise<Buffer> {
    const { stream, written } = composer();
    for (const response of responses) {
        const text = typeof response === 'string' ? response : response.map(piece => (typeof piece === 'string' ? piece : piece.toString('binary'))).join('');
        stream.write({ compiled: text });
    }
    return written();
}

/** A ResponseBatch writing into imap-core's composer, recording what each write handed over (`compiled`). */
function recordingBatch(): { batch: ResponseBatch; writes: unknown[]; written: () => Promise<Buffer> } {
    const { stream, written } = composer();
    const writes: unknown[] = [];
    const batch = new ResponseBatch({
        write(chunk: unknown) {
            writes.push((chunk as { compiled: unknown }).compiled);
            return stream.write(chunk);
        }
    });
    return { batch, writes, written };
}

async function batched(responses: CompiledResponse[], flushAfter: number[] = []): Promise<{ bytes: Buffer; writes: unknown[] }> {
    const { batch, writes, written } = recordingBatch();
    responses.forEach((response, index) => {
        batch.add(response);
        if (flushAfter.includes(index)) batch.flush();
    });
    batch.flush();
    return { bytes: await written(), writes };
}

const BODY = Buffer.from(Array.from({ length: 300 }, (_, index) => (index * 37) & 0xff));

test('ResponseBatch: strings alone are written as one joined string, as before', async () => {
    const responses = ['* 1 FETCH (FLAGS (\\Seen) UID 3)', '* 2 FETCH (FLAGS () UID 7)', '* 3 FETCH (UID 9 BODY[HEADER] {9}\r\nS: \xe4\xf6\r\n\r\n)'];
    const { bytes, writes } = await batched(responses);
    assert.deepEqual(bytes, await oneByOne(responses));
    assert.deepEqual(writes, [responses.join('\r\n')]);
});

test('ResponseBatch: responses holding Buffers (8-bit, empty, several) keep their bytes and their order among strings', async () => {
    const responses: CompiledResponse[] = [
        '* 1 FETCH (FLAGS (\\Seen) UID 3)',
        ['* 2 FETCH (BODY[] {300}\r\n', BODY, ' UID 7)'],
        '* 3 FETCH (UID 9 BODY[] {0}\r\n)',
        ['* 4 FETCH (BODY[] {300}\r\n', BODY, ' BODY[HEADER] {4}\r\n\xe4\r\n\r BODY[TEXT] {100}\r\n', BODY.subarray(200), ' UID 11)'],
        '* 5 FETCH (FLAGS () UID 12)'
    ];
    const expected = await oneByOne(responses);
    const { bytes, writes } = await batched(responses);
    assert.deepEqual(bytes, expected);
    // One write, of pieces (patch 132): the bodies are the Buffers themselves, not copies, and the text between them is joined.
    assert.equal(writes.length, 1);
    const pieces = writes[0] as (string | Buffer)[];
    assert.deepEqual(
        pieces.map(piece => (Buffer.isBuffer(piece) ? piece === BODY || piece.buffer === BODY.buffer : typeof piece)),
        ['string', true, 'string', true, 'string', true, 'string']
    );
    // Flushed in between (as onFetch does before a stream and at page ends): the same bytes.
    for (const flushAfter of [[0], [1], [0, 1, 2, 3]]) {
        assert.deepEqual((await batched(responses, flushAfter)).bytes, expected, `flushed after ${flushAfter.join(', ')}`);
    }
});

test('ResponseBatch: a batch is written once it holds 256 KB, counting the bytes of Buffers', async () => {
    const large = Buffer.alloc(100 * 1024, 0xe9);
    const responses: CompiledResponse[] = [0, 1, 2, 3].map(index => [`* ${index + 1} FETCH (BODY[] {${large.length}}\r\n`, large, ')']);
    const { stream, written } = composer();
    let writes = 0;
    const batch = new ResponseBatch({
        write(chunk: unknown) {
            writes++;
            return stream.write(chunk);
        }
    });
    responses.slice(0, 2).forEach(response => batch.add(response));
    assert.equal(writes, 0);
    batch.add(responses[2]);
    assert.equal(writes, 1);
    batch.add(responses[3]);
    batch.flush();
    assert.equal(writes, 2);
    assert.deepEqual(await written(), await oneByOne(responses));
});

test('ResponseBatch: lines added with addLine (many, 8-bit, among other responses) keep their bytes and their order', async () => {
    // Enough lines to fill several of addLine's growing chunks and pass 256 KB; a few other responses in between.
    const responses: { line: CompiledResponse; encoded: boolean }[] = [];
    for (let index = 1; index <= 8000; index++) {
        responses.push({ line: `* ${index} FETCH (FLAGS (\\Seen $Label\xe9) UID ${index * 3})`, encoded: true });
        if (index % 2500 === 0) responses.push({ line: ['* 0 FETCH (BODY[] {300}\r\n', BODY, ')'], encoded: false });
        if (index % 3001 === 0) responses.push({ line: `* ${index} FETCH (UID 1 BODY[HEADER] {4}\r\n\xe4\r\n\r)`, encoded: false });
    }
    const expected = await oneByOne(responses.map(response => response.line));
    for (const flushAfter of [[], [0], [4999, 5000, 7000]]) {
        const { stream, written } = composer();
        const batch = new ResponseBatch(stream);
        responses.forEach((response, index) => {
            if (response.encoded) batch.addLine(response.line as string);
            else batch.add(response.line);
            if (flushAfter.includes(index)) batch.flush();
        });
        batch.flush();
        assert.deepEqual(await written(), expected, `flushed after ${flushAfter.join(', ')}`);
    }
});

test('ResponseBatch: one line from addLine is a slice of the shared Buffer pool, not a chunk of its own', async () => {
    const { batch, writes, written } = recordingBatch();
    batch.addLine('* 1 FETCH (FLAGS (\\Seen) UID 3)');
    batch.flush();
    const pieces = writes[0] as Buffer[];
    assert.equal(pieces.length, 1);
    // Node's pool is shared by small Buffers (64 KB in Node 24): a slice of it costs no allocation of its own.
    assert.ok(pieces[0].buffer.byteLength <= Buffer.poolSize && pieces[0].byteOffset + FIRST_CHUNK_BYTES <= Buffer.poolSize, `backing store of ${pieces[0].buffer.byteLength} bytes`);
    assert.deepEqual(await written(), await oneByOne(['* 1 FETCH (FLAGS (\\Seen) UID 3)']));
});
