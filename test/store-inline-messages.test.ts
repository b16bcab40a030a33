/**
 * Small messages inline in their `blobs` row (migration 16, src/store/inline-messages.ts): stored
 * without a file, read back byte for byte by every read; a store from before has its small files
 * moved in at start-up, resumably, and every message reads back the same; large messages stay
 * files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import zlib from 'node:zlib';
import { tempDir, makeMessage } from './support/gateway';
import { fillAliceInbox, messageFileExists, messageFiles, undoMigration16, withStoreDb } from './support/store';
import { INLINE_MAX, packRaw, unpackRaw } from '../src/store/inline-messages';
import { Store } from '../src/store';

const LARGE = makeMessage({ subject: 'large', body: 'a line of text long enough to count\r\n'.repeat(2000) });

function messages(): Buffer[] {
    return [
        makeMessage({ subject: 'plain' }),
        Buffer.from('From: carol@example.org\nSubject: LF only\n\nline one\nline two\n', 'latin1'),
        Buffer.from('From: d@example.org\r\nSubject: no body\r\n'),
        LARGE,
        makeMessage({ subject: 'another small one', body: 'x'.repeat(1000) })
    ];
}

/** Every way the store reads a message, for message `hash` of `raw`'s length. */
async function readsOf(store: Store, hash: string): Promise<unknown[]> {
    const chunks: Buffer[] = [];
    for await (const chunk of store.messages.createRangeStream(hash, 5, 20)) chunks.push(chunk as Buffer);
    return [store.messages.readRaw(hash), store.messages.rootHeaderLines(hash), Buffer.concat(chunks)];
}

test('small messages are stored in their row, large ones as files; both read back byte for byte', async () => {
    const dataDir = tempDir('mailmule-inline-');
    try {
        const store = new Store({ dataDir });
        const user = store.users.ensure('alice');
        const inbox = store.mailboxes.get(user.id, 'INBOX')!;
        const originals = messages();
        const hashes = originals.map(raw => store.messages.add(user.id, inbox.id, raw)).map((_added, index) => store.messages.analyse(originals[index]).hash);
        assert.ok(LARGE.length > INLINE_MAX);
        assert.deepEqual(messageFiles(dataDir), [hashes[3]], 'only the large message has a file');
        for (const [index, hash] of hashes.entries()) {
            assert.ok(store.messages.readRaw(hash).equals(originals[index]), `message ${index} byte for byte`);
            const [, , range] = await readsOf(store, hash);
            assert.ok((range as Buffer).equals(originals[index].subarray(5, 25)), `message ${index}: a range`);
        }
        // A copy shares the row; the last reference takes the bytes with it.
        store.messages.copy(user.id, inbox.id, [1], 'Archive');
        store.messages.updateFlags(user.id, inbox.id, [1], 'add', ['\\Deleted']);
        store.messages.expunge(user.id, inbox.id);
        assert.ok(store.messages.readRaw(hashes[0]).equals(originals[0]), 'the copy keeps the message');
        store.close();
    } finally {
        fs.rmSync(dataDir, { recursive: true, force: true });
    }
});

test('a store from before migration 16 has its small files moved into their rows at start-up, resumably; every message reads the same', async () => {
    const dataDir = tempDir('mailmule-inline-migrate-');
    try {
        let store = new Store({ dataDir });
        const originals = messages();
        fillAliceInbox(store, originals);
        const hashes = originals.map(raw => store.messages.analyse(raw).hash);
        const before = await Promise.all(hashes.map(hash => readsOf(store, hash)));
        store.close();

        // As an older mailmule left it: every message a file.
        withStoreDb(dataDir, db => {
            undoMigration16(db);
            db.pragma('user_version = 15');
        });
        assert.equal(messageFiles(dataDir).length, originals.length);
        store = new Store({ dataDir });
        assert.deepEqual(await Promise.all(hashes.map(hash => readsOf(store, hash))), before, 'before start-up: read from the files');
        store.close();

        // A start-up killed after committing one row's bytes, before removing its file.
        withStoreDb(dataDir, db => db.prepare('UPDATE blobs SET raw = ? WHERE hash = ?').run(packRaw(originals[0]), hashes[0]));
        store = new Store({ dataDir });
        store.recover();
        assert.deepEqual(messageFiles(dataDir), [hashes[3]], 'the small files are gone (the interrupted one by the sweep), the large one stays');
        assert.ok(messageFileExists(dataDir, hashes[3]));
        assert.deepEqual(await Promise.all(hashes.map(hash => readsOf(store, hash))), before, 'after: byte for byte');
        assert.equal(
            withStoreDb(dataDir, db => db.prepare("SELECT count(*) FROM meta WHERE key = 'pending_inline_messages'").pluck().get()),
            0
        );
        assert.equal(store.integrityCheck(), 'ok');
        store.close();
    } finally {
        fs.rmSync(dataDir, { recursive: true, force: true });
    }
});

test('rows packed with Brotli (before zstd) read back as they did, beside rows packed now', async () => {
    const dataDir = tempDir('mailmule-inline-brotli-');
    try {
        let store = new Store({ dataDir });
        const originals = messages();
        fillAliceInbox(store, originals);
        const hashes = originals.map(raw => store.messages.analyse(raw).hash);
        const before = await Promise.all(hashes.map(hash => readsOf(store, hash)));
        store.close();

        // As the store packed them until now: Brotli quality 5, its size as the hint.
        const brotli = (raw: Buffer) => zlib.brotliCompressSync(raw, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 5, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: raw.length } });
        withStoreDb(dataDir, db => {
            for (const index of [0, 1]) assert.equal(db.prepare('UPDATE blobs SET raw = ? WHERE hash = ? AND raw IS NOT NULL').run(brotli(originals[index]), hashes[index]).changes, 1);
        });
        store = new Store({ dataDir });
        assert.deepEqual(await Promise.all(hashes.map(hash => readsOf(store, hash))), before, 'Brotli rows and zstd rows, byte for byte');
        store.close();
    } finally {
        fs.rmSync(dataDir, { recursive: true, force: true });
    }
});

test("unpackRaw with the row size reads back the same bytes as without, for zstd and Brotli rows around zlib's 16 KB buffer", () => {
    for (const size of [1, 100, 16383, 16384, 16385, 40000, INLINE_MAX]) {
        const raw = Buffer.from('Subject: sized\r\n\r\n' + 'words of a body line\r\n'.repeat(Math.ceil(size / 22))).subarray(0, size);
        for (const packed of [packRaw(raw), zlib.brotliCompressSync(raw)]) {
            assert.deepEqual(unpackRaw(packed, size), raw, `${size} bytes`);
            assert.deepEqual(unpackRaw(packed), raw, `${size} bytes, no size`);
        }
    }
});
