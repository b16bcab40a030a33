import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import zlib from 'node:zlib';
import { BUNDLE_MAGIC, BundleError, FORMAT_VERSION, TRAILER_LENGTH, TRAILER_MAGIC, jsonDepth, type BundleHeader, type BundleRecord } from './format';
import { generateSigningKey, publicKeyFromText, publicKeyText, signDigest } from './keys';
import { BundleReader, verifyBundle } from './reader';
import { BundleWriter, zstdParameters } from './writer';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailmule-bundle-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const pi = generateSigningKey();
const relay = generateSigningKey();
let counter = 0;
const file = (name = 'b') => path.join(dir, `${name}-${++counter}.bundle`);

const downHeader: BundleHeader = { format: 1, direction: 'down', pi: 'village-1', seq: 3, ack: 2, createdAt: 1_700_000_000_000 };
const upHeader: BundleHeader = { ...downHeader, direction: 'up' };

function message(uid: number, body: string): [Parameters<BundleWriter['add']>[1], Buffer] {
    return [
        { user: 'alice', account: 'alice@example.net', folder: 'INBOX', uidValidity: 7, uid, key: `k${uid}`, flags: ['\\Seen'], idate: 1_700_000_000_000, localPath: 'INBOX', stub: false },
        Buffer.from(body)
    ];
}

async function writeDown(count: number, target = file()): Promise<string> {
    const writer = await BundleWriter.create(target, downHeader, relay.privateKey, { level: 3 });
    for (let uid = 1; uid <= count; uid++) {
        const [meta, body] = message(uid, `Subject: message ${uid}\r\n\r\n${'body line\r\n'.repeat(uid * 10)}`);
        await writer.add('message', meta as never, body);
    }
    await writer.add('delivery', { queueId: 4, attempt: 1, answer: { kind: 'answered', accepted: ['bob@example.org'], refused: [] } });
    await writer.finish();
    return target;
}

async function readAll(input: string | Readable, signer = relay.publicKey): Promise<BundleRecord[]> {
    const reader = await BundleReader.open(input, { signer });
    const records: BundleRecord[] = [];
    for await (const record of reader.records()) records.push(record);
    return records;
}

async function refusal(promise: Promise<unknown>): Promise<BundleError> {
    try {
        await promise;
    } catch (err) {
        assert.ok(err instanceof BundleError, `expected a BundleError, got ${(err as Error).stack}`);
        return err;
    }
    assert.fail('expected the bundle to be refused');
}

/** A bundle built byte by byte, for inputs the writer refuses to make. */
function craft(header: object, records: Buffer, key = relay.privateKey, version = FORMAT_VERSION): Buffer {
    const headerJson = Buffer.from(JSON.stringify(header));
    const length = Buffer.alloc(4);
    length.writeUInt32BE(headerJson.length);
    const body = Buffer.concat([BUNDLE_MAGIC, Buffer.from([version]), length, headerJson, zlib.zstdCompressSync(records)]);
    const digest = crypto.createHash('sha256').update(body).digest();
    const trailerVersion = Buffer.alloc(4);
    trailerVersion.writeUInt32BE(FORMAT_VERSION);
    return Buffer.concat([body, TRAILER_MAGIC, trailerVersion, digest, signDigest(digest, key)]);
}

function rawRecord(code: number, meta: string, body: Buffer = Buffer.alloc(0), declaredBody = body.length): Buffer {
    const metaBytes = Buffer.from(meta);
    const head = Buffer.alloc(5);
    head[0] = code;
    head.writeUInt32BE(metaBytes.length, 1);
    const bodyLength = Buffer.alloc(4);
    bodyLength.writeUInt32BE(declaredBody);
    return Buffer.concat([head, metaBytes, bodyLength, body]);
}

const end = (n: number) => rawRecord(0, JSON.stringify({ records: n }));
const deliveryMeta = JSON.stringify({ queueId: 1, attempt: 1, answer: { kind: 'unanswered', text: 'cut' } });

describe('bundle round trip', () => {
    it('reads back what was written, header and records in order', async () => {
        const target = await writeDown(5);
        const reader = await BundleReader.open(target, { signer: relay.publicKey });
        assert.deepEqual(reader.header, downHeader);
        const records: BundleRecord[] = [];
        for await (const record of reader.records()) records.push(record);
        assert.equal(records.length, 6);
        assert.equal(records[0].type, 'message');
        assert.equal(records[2].body.toString(), `Subject: message 3\r\n\r\n${'body line\r\n'.repeat(30)}`);
        assert.deepEqual(records[5], { type: 'delivery', meta: { queueId: 4, attempt: 1, answer: { kind: 'answered', accepted: ['bob@example.org'], refused: [] } }, body: Buffer.alloc(0) });
        assert.equal((await verifyBundle(target, { signer: relay.publicKey })).records, 6);
    });

    it('takes a body as a stream of its declared length, and compresses shared content across records', async () => {
        const target = file();
        const writer = await BundleWriter.create(target, upHeader, pi.privateKey);
        const text = crypto.randomBytes(200_000).toString('base64');
        for (let queueId = 1; queueId <= 3; queueId++) {
            const body = Buffer.from(`Subject: list post\r\n\r\n${text}`);
            await writer.add(
                'outbound',
                { queueId, attempt: 1, user: 'alice', account: 'a@example.net', mailFrom: 'a@example.net', recipients: ['b@example.org'] },
                { stream: Readable.from([body.subarray(0, 1000), body.subarray(1000)]), length: body.length }
            );
        }
        const written = await writer.finish();
        // Three copies of ~270 KB of base64: the long window makes the second and third nearly free.
        assert.ok(written.bytes < 230_000, `three copies took ${written.bytes} bytes`);
        const records = await readAll(target, pi.publicKey);
        assert.deepEqual(
            records.map(record => record.body.length),
            [1, 2, 3].map(() => text.length + 22)
        );
    });

    it('sizes the window and tables to expectedBytes: copies within the window stay nearly free, and the frame asks the reader for that window only', async () => {
        const text = crypto.randomBytes(200_000).toString('base64');
        const meta = { queueId: 1, attempt: 1, user: 'alice', account: 'a@example.net', mailFrom: 'a@example.net', recipients: ['b@example.org'] };
        const sizes: number[] = [];
        for (const expectedBytes of [undefined, 3 * text.length, 4096]) {
            const target = file();
            const writer = await BundleWriter.create(target, upHeader, pi.privateKey, expectedBytes === undefined ? {} : { expectedBytes });
            for (let queueId = 1; queueId <= 3; queueId++) await writer.add('outbound', { ...meta, queueId }, Buffer.from(text));
            sizes.push((await writer.finish()).bytes);
            assert.equal((await readAll(target, pi.publicKey)).length, 3);
        }
        const [unsized, sized, under] = sizes;
        assert.ok(Math.abs(sized - unsized) < unsized / 100, `sized to the records: ${sized} bytes, unsized ${unsized}`);
        // 128 KiB of window (the least): the second copy starts too far back to be found.
        assert.ok(under > 2 * unsized, `an estimate far under the records: ${under} bytes`);
        const params = zstdParameters(19, 300_000);
        assert.equal(params[zlib.constants.ZSTD_c_windowLog], 20);
        assert.equal(params[zlib.constants.ZSTD_c_hashLog], 21);
        assert.equal(params[zlib.constants.ZSTD_c_chainLog], 21);
        assert.equal(zstdParameters(19)[zlib.constants.ZSTD_c_windowLog], 27);
    });

    it('refuses a body stream that does not give its declared length, leaving no file', async () => {
        const target = file();
        const writer = await BundleWriter.create(target, upHeader, pi.privateKey);
        const meta = { queueId: 1, attempt: 1, user: 'alice', account: 'a@example.net', mailFrom: '', recipients: ['b@example.org'] };
        const err = await refusal(writer.add('outbound', meta, { stream: Readable.from([Buffer.from('short')]), length: 10 }));
        assert.equal(err.code, 'MALFORMED');
        await writer.abort();
        assert.deepEqual(
            fs.readdirSync(dir).filter(name => name.includes(path.basename(target))),
            []
        );
    });

    it("carries the Pi's requests up (fetchFull, needBody with the up bundle that first carried it), and only up", async () => {
        const target = file();
        const writer = await BundleWriter.create(target, upHeader, pi.privateKey);
        const ref = { user: 'alice', account: 'a@example.net', folder: 'INBOX', uidValidity: 7, uid: 42 };
        await writer.add('fetchFull', ref);
        await writer.add('needBody', { ...ref, sha256: 'ab'.repeat(32), upSeq: 3 });
        await writer.finish();
        assert.deepEqual(
            (await readAll(target, pi.publicKey)).map(record => [record.type, record.meta]),
            [
                ['fetchFull', ref],
                ['needBody', { ...ref, sha256: 'ab'.repeat(32), upSeq: 3 }]
            ]
        );
        const down = await BundleWriter.create(file(), downHeader, relay.privateKey);
        assert.equal((await refusal(down.add('needBody', { ...ref, sha256: 'ab'.repeat(32) }))).code, 'MALFORMED');
        await down.abort();
    });

    it('refuses records of the other direction when writing', async () => {
        const writer = await BundleWriter.create(file(), upHeader, pi.privateKey);
        const [meta, body] = message(1, 'x');
        assert.equal((await refusal(writer.add('message', meta as never, body))).code, 'MALFORMED');
        await writer.abort();
    });

    it('refuses a record whose meta does not fit its schema with a BundleError naming the record and the field, and the bundle goes on', async () => {
        const writer = await BundleWriter.create(file(), downHeader, relay.privateKey);
        const [meta, body] = message(1, 'x');
        const err = await refusal(writer.add('message', { ...meta, uid: 0 } as never, body));
        assert.equal(err.code, 'MALFORMED');
        assert.match(err.message, /^bundle malformed: a message record: uid: /);
        const shaErr = await refusal(writer.add('messageRef', { ...meta, sha256: 'not a hash' } as never));
        assert.match(shaErr.message, /a messageRef record: sha256: expected a sha256 in hex/);
        await writer.add('message', meta as never, body);
        const written = await writer.finish();
        assert.equal(written.records, 1);
        const badHeader = await refusal(BundleWriter.create(file(), { ...downHeader, pi: 'no spaces allowed' }, relay.privateKey));
        assert.match(badHeader.message, /^bundle malformed: the header: pi: /);
    });

    it('carries flag changes, deletions and re-links: up with the change and the seq that first carried it, down with the UID pairs as the body', async () => {
        const up = file('up');
        const writer = await BundleWriter.create(up, upHeader, pi.privateKey, { level: 3 });
        const ref = { user: 'alice', account: 'alice@example.net', folder: 'INBOX', uidValidity: 7, uid: 12 };
        await writer.add('flags', { ...ref, flags: ['\\Seen'], add: ['\\Seen'], remove: [], upSeq: 2 });
        await writer.add('flags', { ...ref, flags: ['\\Flagged'] });
        await writer.add('delete', { ...ref, uid: 13, upSeq: 3 });
        await writer.finish();
        assert.deepEqual(
            (await readAll(up, pi.publicKey)).map(record => [record.type, record.meta]),
            [
                ['flags', { ...ref, flags: ['\\Seen'], add: ['\\Seen'], remove: [], upSeq: 2 }],
                ['flags', { ...ref, flags: ['\\Flagged'] }],
                ['delete', { ...ref, uid: 13, upSeq: 3 }]
            ]
        );

        const down = file('down');
        const downWriter = await BundleWriter.create(down, downHeader, relay.privateKey, { level: 3 });
        const pairs = Buffer.alloc(16);
        pairs.writeUInt32BE(12, 0);
        pairs.writeUInt32BE(1, 4);
        pairs.writeUInt32BE(13, 8);
        pairs.writeUInt32BE(2, 12);
        await downWriter.add('remap', { user: 'alice', account: 'alice@example.net', folder: 'INBOX', oldUidValidity: 7, uidValidity: 9 }, pairs);
        await downWriter.add('flags', { ...ref, uidValidity: 9, uid: 1, flags: ['\\Answered'] });
        await downWriter.finish();
        const records = await readAll(down);
        assert.deepEqual(
            records.map(record => record.type),
            ['remap', 'flags']
        );
        assert.ok(records[0].body.equals(pairs));
    });

    it('shows public keys as text and reads them back', () => {
        const text = publicKeyText(relay.publicKey);
        assert.equal(text.length, 44);
        assert.ok(publicKeyFromText(text).equals(relay.publicKey));
        assert.throws(() => publicKeyFromText('not a key'), /Ed25519 public key/);
    });
});

describe('bundle refusals', () => {
    it('refuses a bundle cut at any offset with TRUNCATED (or CORRUPT inside the zstd stream), never yielding a partial body', async () => {
        const whole = fs.readFileSync(await writeDown(20));
        const offsets = new Set([0, 3, 8, 9, 12, 40, whole.length - TRAILER_LENGTH - 1, whole.length - TRAILER_LENGTH, whole.length - 50, whole.length - 1]);
        for (let i = 0; i < 12; i++) offsets.add(Math.floor((whole.length * (i + 0.5)) / 12));
        for (const offset of offsets) {
            const err = await refusal(readAll(Readable.from([whole.subarray(0, offset)])));
            assert.ok(['TRUNCATED', 'CORRUPT'].includes(err.code), `cut at ${offset}: ${err.message}`);
        }
    });

    it('refuses a damaged byte anywhere after the header: CORRUPT, CHECKSUM or TRUNCATED, never accepted', async () => {
        const whole = fs.readFileSync(await writeDown(10));
        const reader = await BundleReader.open(Readable.from([whole]), { signer: relay.publicKey });
        const start = reader.headerBytes;
        for await (const record of reader.records()) void record;
        for (let i = 0; i < 25; i++) {
            const damaged = Buffer.from(whole);
            const at = start + Math.floor(((damaged.length - start) * i) / 25);
            damaged[at] ^= 0x5a;
            const err = await refusal(readAll(Readable.from([damaged])));
            assert.ok(['CORRUPT', 'CHECKSUM', 'TRUNCATED', 'SIGNATURE', 'MALFORMED'].includes(err.code), `byte ${at}: ${err.message}`);
        }
        // The digest itself damaged: the checksum says so.
        const digestDamaged = Buffer.from(whole);
        digestDamaged[whole.length - 64 - 1] ^= 1;
        assert.equal((await refusal(readAll(Readable.from([digestDamaged])))).code, 'CHECKSUM');
    });

    it('refuses a bundle signed by another key, and a damaged signature, with SIGNATURE', async () => {
        const target = await writeDown(2);
        assert.equal((await refusal(readAll(target, pi.publicKey))).code, 'SIGNATURE');
        const whole = fs.readFileSync(target);
        whole[whole.length - 1] ^= 1;
        assert.equal((await refusal(readAll(Readable.from([whole])))).code, 'SIGNATURE');
        // A forger who rewrites the header must re-sign; with another key it is still refused.
        const forged = craft({ ...downHeader, pi: 'other' }, Buffer.concat([rawRecord(7, deliveryMeta), end(1)]), generateSigningKey().privateKey);
        assert.equal((await refusal(readAll(Readable.from([forged])))).code, 'SIGNATURE');
    });

    it('accepts a crafted bundle that follows the format (the test helper is sound)', async () => {
        const records = await readAll(Readable.from([craft(downHeader, Buffer.concat([rawRecord(7, deliveryMeta), end(1)]))]));
        assert.equal(records.length, 1);
    });

    const cases: [string, () => Buffer, BundleError['code'], RegExp][] = [
        ['bad magic', () => Buffer.concat([Buffer.from('NOTABNDL'), Buffer.alloc(200)]), 'MALFORMED', /bad magic/],
        ['another format version', () => craft(downHeader, end(0), relay.privateKey, 9), 'VERSION', /format version 9/],
        ['a header that is not JSON', () => Buffer.concat([BUNDLE_MAGIC, Buffer.from([1, 0, 0, 0, 3]), Buffer.from('{x}')]), 'MALFORMED', /header: not JSON/],
        ['a header too large', () => Buffer.concat([BUNDLE_MAGIC, Buffer.from([1, 0x7f, 0, 0, 0])]), 'TOO_LARGE', /header of/],
        ['a header with an unknown key', () => craft({ ...downHeader, extra: 1 }, end(0)), 'MALFORMED', /header/],
        ['a header with a bad Pi id', () => craft({ ...downHeader, pi: '../etc' }, end(0)), 'MALFORMED', /pi/],
        ['an unknown record type', () => craft(downHeader, Buffer.concat([rawRecord(99, '{}'), end(1)])), 'MALFORMED', /unknown record type 99/],
        ['a record of the other direction', () => craft(upHeader, Buffer.concat([rawRecord(7, deliveryMeta), end(1)])), 'MALFORMED', /cannot carry delivery/],
        ['a meta that breaks its schema', () => craft(downHeader, Buffer.concat([rawRecord(7, '{"queueId":-1}'), end(1)])), 'MALFORMED', /record 1 \(delivery\)/],
        ['deeply nested JSON', () => craft(downHeader, Buffer.concat([rawRecord(7, '['.repeat(5000) + ']'.repeat(5000)), end(1)])), 'TOO_LARGE', /nested deeper/],
        ['a body on a record without one', () => craft(downHeader, Buffer.concat([rawRecord(7, deliveryMeta, Buffer.from('x')), end(1)])), 'MALFORMED', /have no body/],
        ['a body longer than the bound', () => craft(downHeader, Buffer.concat([rawRecord(5, JSON.stringify(message(1, '')[0]), Buffer.alloc(0), 0xffffffff)])), 'TOO_LARGE', /a body of/],
        ['a body that ends early', () => craft(downHeader, rawRecord(5, JSON.stringify(message(1, '')[0]), Buffer.from('abc'), 10)), 'TRUNCATED', /body/],
        ['no end record', () => craft(downHeader, rawRecord(7, deliveryMeta)), 'TRUNCATED', /without an end record/],
        ['an end record with the wrong count', () => craft(downHeader, Buffer.concat([rawRecord(7, deliveryMeta), end(5)])), 'MALFORMED', /counts 5 records/],
        ['data after the end record', () => craft(downHeader, Buffer.concat([end(0), Buffer.from('x')])), 'MALFORMED', /after the end record/],
        ['a trailer missing', () => craft(downHeader, end(0)).subarray(0, -TRAILER_LENGTH), 'TRUNCATED', /./]
    ];
    for (const [name, build, code, message] of cases) {
        it(`refuses ${name} with ${code}`, async () => {
            const err = await refusal(readAll(Readable.from([build()])));
            assert.equal(err.code, code, err.message);
            assert.match(err.message, message);
        });
    }

    it('refuses a body over a lowered bound', async () => {
        const target = await writeDown(3);
        const err = await refusal(
            (async () => {
                const reader = await BundleReader.open(target, { signer: relay.publicKey, limits: { maxBodyBytes: 100 } });
                for await (const record of reader.records()) void record;
            })()
        );
        assert.equal(err.code, 'TOO_LARGE');
    });

    it('counts JSON depth without counting brackets inside strings', () => {
        assert.equal(jsonDepth('{"a":[1,{"b":"[[[["}]}'), 3);
        assert.equal(jsonDepth('"\\"[["'), 0);
    });
});
