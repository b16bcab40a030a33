/**
 * The SMTP intake's spool (src/store/queue.ts, src/queue/intake.ts), at the intake's own API on a
 * real store on disk: a small submission's files are written without fsync and its bytes are
 * committed with its rows, so when the submit promise resolves (the daemon answers 250) the
 * bytes are durable in the database even if the file is not yet.
 *
 * A kill -9 keeps the page cache (test/smtp-crash.test.ts covers that over SMTP); an outage may
 * not. That is simulated here: after the commit the store is dropped without its intake's close
 * (no background sync ran: it waits a second), and the message files are cut short, emptied or
 * removed, as a power cut can leave files whose data never reached the disk. The next start
 * must write every one back from the spool, byte for byte, before anything reads it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { tempDir, makeMessage } from './support/gateway';
import { Store, type Submission } from '../src/store';
import { QueueIntake } from '../src/queue';
import { connectionLimits, messageFilePath, orphanFiles, setConnectionLimits, synchronousLevel, tmpFiles, withStoreDb } from './support/store';

/**
 * Spooled messages: larger than what is kept inline in the database (src/store/inline-messages.ts,
 * which needs no spool: its bytes are in its row), smaller than the spool's limit.
 */
const SPOOLED_LINES = 9000;
const SPOOLED_BODY = 'spooled line\r\n'.repeat(6000);

/** Keeps the intake's background sync away while a test counts the spool's rows. */
const HOLD_OFF_MS = 3600 * 1000;

function submission(store: Store, userId: number, raw: Buffer): Submission {
    const analysed = store.messages.analyse(raw);
    return {
        userId,
        mailFrom: 'alice@upstream.test',
        account: 'alice@upstream.test',
        relayRecipients: ['bob@example.net'],
        relay: { raw, analysed },
        sent: { raw, analysed },
        localUserIds: []
    };
}

function spoolRows(dataDir: string): number {
    return withStoreDb(dataDir, db => db.prepare('SELECT COUNT(*) FROM intake_spool').pluck().get() as number);
}

function sha256(file: string): string {
    return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

test('an outage after the 250 loses nothing: spooled files are written back from the database at the next start', async () => {
    const dataDir = tempDir('mailmule-queue-spool-');
    try {
        let store = new Store({ dataDir });
        const alice = store.users.ensure('alice');
        const intake = new QueueIntake(store, { spoolSyncMs: HOLD_OFF_MS });
        const raws = [0, 1, 2, 3].map(i => makeMessage({ subject: `spooled ${i}`, messageId: `<spool-${i}@example.org>`, body: `body ${i}\r\n`.repeat(SPOOLED_LINES + i) }));
        const results = await Promise.all(raws.map(raw => intake.submit(submission(store, alice.id, raw))));
        assert.ok(results.every(result => result.queueId !== null && result.sentUid !== null));
        const hashes = raws.map(raw => store.messages.analyse(raw).hash);
        assert.equal(spoolRows(dataDir), 4, 'each file is in the spool once its submission resolved');

        // The outage: no close, no sync; the files' data never reached the disk.
        store.close();
        fs.truncateSync(messageFilePath(dataDir, hashes[0]), 100);
        fs.truncateSync(messageFilePath(dataDir, hashes[1]), 0);
        fs.rmSync(messageFilePath(dataDir, hashes[2]));

        store = new Store({ dataDir });
        try {
            store.recover();
            for (const [index, hash] of hashes.entries()) {
                assert.equal(sha256(messageFilePath(dataDir, hash)), hash, `file ${index} written back byte for byte`);
            }
            assert.equal(spoolRows(dataDir), 0, 'the spool is empty after the start');
            const entries = store.queue.list();
            assert.deepEqual(entries.map(entry => entry.blobHash).sort(), [...hashes].sort(), 'every submission is queued exactly once');
            for (const entry of entries) assert.ok(store.queue.readHeaderBlock(entry).toString().includes('Subject: spooled'), 'its message reads back');
            assert.deepEqual(orphanFiles(dataDir), [], 'no file without a row');
            assert.deepEqual(tmpFiles(dataDir), []);
            assert.equal(store.integrityCheck(), 'ok');
        } finally {
            store.close();
        }
    } finally {
        fs.rmSync(dataDir, { recursive: true, force: true });
    }
});

test('the spool is synced in the background; a sync keeps the rows committed while it ran; close syncs what is left', async () => {
    const dataDir = tempDir('mailmule-queue-spool-');
    const store = new Store({ dataDir });
    try {
        const alice = store.users.ensure('alice');
        const errors: Error[] = [];
        const intake = new QueueIntake(store, { onSpoolError: err => errors.push(err), spoolSyncMs: HOLD_OFF_MS });
        await intake.submit(submission(store, alice.id, makeMessage({ subject: 'first', messageId: '<first@example.org>', body: SPOOLED_BODY })));
        assert.equal(store.queue.spoolSize(), 1);
        // A submission committed while a sync runs is not covered by it: its row stays.
        const [synced] = await Promise.all([
            store.queue.syncSpool(),
            intake.submit(submission(store, alice.id, makeMessage({ subject: 'second', messageId: '<second@example.org>', body: SPOOLED_BODY })))
        ]);
        assert.ok(synced <= 1, 'the sync let go of at most the row that was there when it began');
        assert.equal(store.queue.spoolSize(), 2 - synced);
        // A large submission is not spooled: its files are fsynced before the commit, as before.
        const large = makeMessage({ subject: 'large', messageId: '<large@example.org>', body: 'x'.repeat(76).concat('\r\n').repeat(4000) });
        await intake.submit(submission(store, alice.id, large));
        assert.equal(store.queue.spoolSize(), 2 - synced, 'nothing spooled for the large one');
        await intake.close();
        assert.equal(store.queue.spoolSize(), 0, 'close synced the rest');
        assert.deepEqual(errors, []);
        assert.equal(store.queue.list().length, 3);
        for (const entry of store.queue.list()) assert.equal(sha256(messageFilePath(dataDir, entry.blobHash)), entry.blobHash);
    } finally {
        store.close();
        fs.rmSync(dataDir, { recursive: true, force: true });
    }
});

test('without `sync -f` the spool is synced file by file', async () => {
    const dataDir = tempDir('mailmule-queue-spool-');
    const store = new Store({ dataDir });
    const path = process.env.PATH;
    const emptyDir = tempDir('mailmule-empty-path-');
    try {
        const alice = store.users.ensure('alice');
        const intake = new QueueIntake(store, { spoolSyncMs: HOLD_OFF_MS });
        await intake.submit(submission(store, alice.id, makeMessage({ subject: 'no sync', messageId: '<no-sync@example.org>', body: SPOOLED_BODY })));
        assert.equal(store.queue.spoolSize(), 1);
        // No program is found: execFile fails with ENOENT, the fallback fsyncs each spooled file.
        process.env.PATH = emptyDir;
        assert.equal(await store.queue.syncSpool(), 1);
        assert.equal(store.queue.spoolSize(), 0);
        process.env.PATH = path;
        await intake.close();
    } finally {
        process.env.PATH = path;
        store.close();
        fs.rmSync(dataDir, { recursive: true, force: true });
        fs.rmSync(emptyDir, { recursive: true, force: true });
    }
});

test('a group commit runs with synchronous=NORMAL and syncs the WAL itself; every other writer finds FULL again, after a failed commit too', async () => {
    const dataDir = tempDir('mailmule-queue-spool-');
    const store = new Store({ dataDir });
    try {
        const alice = store.users.ensure('alice');
        const intake = new QueueIntake(store, { spoolSyncMs: HOLD_OFF_MS });
        assert.equal(synchronousLevel(store), 2);
        await intake.submit(submission(store, alice.id, makeMessage({ subject: 'ok', messageId: '<sync-ok@example.org>', body: SPOOLED_BODY })));
        assert.equal(synchronousLevel(store), 2, 'FULL after a commit');
        // A full disk: the database cannot grow, the whole batch fails and nothing stays behind.
        const limits = connectionLimits(store);
        setConnectionLimits(store, { maxPageCount: limits.pageCount });
        const big = makeMessage({ subject: 'no room', messageId: '<no-room@example.org>', body: crypto.randomBytes(60_000).toString('base64').replace(/.{76}/g, '$&\r\n') });
        await assert.rejects(intake.submit(submission(store, alice.id, big)));
        setConnectionLimits(store, { maxPageCount: 1 << 30 });
        assert.equal(synchronousLevel(store), 2, 'FULL after a failed commit');
        assert.equal(store.queue.list().length, 1);
        assert.deepEqual(orphanFiles(dataDir), [], 'the failed submission left no file');
        await intake.close();
    } finally {
        store.close();
        fs.rmSync(dataDir, { recursive: true, force: true });
    }
});
