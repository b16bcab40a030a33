/**
 * A store that knows itself (issue 10, item 1): a database that does not belong with the message
 * files beside it is refused at open, untouched, by the daemon and by every CLI command, with
 * its own exit code; the start-up clean-up moves files no row references to lost+found/ instead
 * of deleting them; a store from before identities is given one on its first open.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { makeMessage, tempDir, writeConfig } from './support/gateway';
import { MAIN } from './support/daemon-process';
import { runProcess, describeRun } from './support/run-process';
import { messageFilePath, messageFiles, withStoreDb } from './support/store';
import { Store } from '../src/store';
import { EXIT } from '../src/cli/exit-codes';

const MESSAGES = 12;

const LARGE_BODY = 'a line of text long enough to count\r\n'.repeat(2000);

/** A config and a data directory whose store holds MESSAGES messages for alice, closed. */
function storeWithMail(): { configFile: string; dataDir: string; hashes: string[] } {
    const dir = tempDir('mailmule-identity-');
    const { configFile } = writeConfig(dir, { users: [{ name: 'alice', password: 'pw' }] });
    const dataDir = path.join(dir, 'data');
    const store = new Store({ dataDir });
    try {
        const alice = store.users.ensure('alice');
        for (let i = 0; i < MESSAGES; i++) {
            // Larger than what is kept inline (src/store/inline-messages.ts): these tests are about the message files beside the database.
            store.messages.deliverToInbox(alice.id, makeMessage({ subject: `identity ${i}`, messageId: `<identity-${i}@test>`, body: LARGE_BODY }));
        }
    } finally {
        store.close();
    }
    return { configFile, dataDir, hashes: messageFiles(dataDir).sort() };
}

/** Every message file is still there with the bytes its name promises. */
function assertFilesIntact(dataDir: string, hashes: string[]): void {
    assert.deepEqual(messageFiles(dataDir).sort(), hashes, 'every message file is still there');
    for (const hash of hashes) {
        assert.equal(
            crypto
                .createHash('sha256')
                .update(fs.readFileSync(messageFilePath(dataDir, hash)))
                .digest('hex'),
            hash
        );
    }
}

async function mailmule(args: string[]): Promise<Awaited<ReturnType<typeof runProcess>>> {
    return runProcess(process.execPath, [MAIN, ...args], { timeoutMs: 30000 });
}

/** `start` and two read-only commands on the store are all refused with `code`, saying `pattern`. */
async function assertRefusedEverywhere(configFile: string, code: number, pattern: RegExp): Promise<void> {
    for (const args of [['start'], ['queue', '--json'], ['status', '--json'], ['users']]) {
        const result = await mailmule([...args, '-c', configFile]);
        assert.equal(result.code, code, describeRun(`mailmule ${args.join(' ')}`, result));
        assert.match(result.stderr, pattern, describeRun(`mailmule ${args.join(' ')}`, result));
        assert.match(result.stderr, /Nothing was changed or deleted/);
    }
}

test('a 0-byte database next to message files is refused by start and the CLI; no message file is touched', async () => {
    const { configFile, dataDir, hashes } = storeWithMail();
    assert.equal(hashes.length, MESSAGES);
    fs.truncateSync(path.join(dataDir, 'mailmule.sqlite'), 0);
    for (const suffix of ['-wal', '-shm']) fs.rmSync(path.join(dataDir, `mailmule.sqlite${suffix}`), { force: true });
    await assertRefusedEverywhere(configFile, EXIT.STORE_MISMATCH, /the database is empty \(0 bytes\), but the message files of a store \(id [0-9a-f-]{36}\) are beside it/);
    assertFilesIntact(dataDir, hashes);
    assert.equal(fs.statSync(path.join(dataDir, 'mailmule.sqlite')).size, 0, 'the empty database is left as it was');
    assert.ok(!fs.existsSync(path.join(dataDir, 'lost+found')), 'nothing was moved either');
});

test('a missing database next to message files is refused the same way', async () => {
    const { configFile, dataDir, hashes } = storeWithMail();
    for (const suffix of ['', '-wal', '-shm']) fs.rmSync(path.join(dataDir, `mailmule.sqlite${suffix}`), { force: true });
    await assertRefusedEverywhere(configFile, EXIT.STORE_MISMATCH, /the database is missing/);
    assertFilesIntact(dataDir, hashes);
    assert.ok(!fs.existsSync(path.join(dataDir, 'mailmule.sqlite')), 'no new database was created');
});

test("another store's database next to the message files is refused; no message file is touched", async () => {
    const mine = storeWithMail();
    const other = storeWithMail();
    for (const suffix of ['-wal', '-shm']) fs.rmSync(path.join(mine.dataDir, `mailmule.sqlite${suffix}`), { force: true });
    fs.copyFileSync(path.join(other.dataDir, 'mailmule.sqlite'), path.join(mine.dataDir, 'mailmule.sqlite'));
    await assertRefusedEverywhere(mine.configFile, EXIT.STORE_MISMATCH, /the database belongs to store [0-9a-f-]{36}, the message files to store [0-9a-f-]{36}/);
    assertFilesIntact(mine.dataDir, mine.hashes);
});

test('a damaged database is refused with STORE_DAMAGED by every command (queue --json included)', async () => {
    const { configFile, dataDir, hashes } = storeWithMail();
    const file = path.join(dataDir, 'mailmule.sqlite');
    // Overwrite the pages after the first with garbage: the header still says "SQLite format 3".
    const size = fs.statSync(file).size;
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, crypto.randomBytes(size - 4096), 0, size - 4096, 4096);
    fs.closeSync(fd);
    for (const args of [['start'], ['queue', '--json']]) {
        const result = await mailmule([...args, '-c', configFile]);
        assert.equal(result.code, EXIT.STORE_DAMAGED, describeRun(`mailmule ${args.join(' ')}`, result));
    }
    assertFilesIntact(dataDir, hashes);
});

test('start-up clean-up moves a message file no row references to lost+found/, not away', () => {
    const { dataDir, hashes } = storeWithMail();
    const orphan = Buffer.from('From: nobody@test\r\nSubject: left by a crash\r\n\r\nbody\r\n');
    const hash = crypto.createHash('sha256').update(orphan).digest('hex');
    fs.mkdirSync(path.dirname(messageFilePath(dataDir, hash)), { recursive: true });
    fs.writeFileSync(messageFilePath(dataDir, hash), orphan);
    const store = new Store({ dataDir });
    try {
        assert.equal(store.recover().removedBlobs, 1);
    } finally {
        store.close();
    }
    assert.deepEqual(fs.readFileSync(path.join(dataDir, 'lost+found', hash)), orphan);
    assertFilesIntact(dataDir, hashes);
});

test('a store from before identities is given one on its first open, and then is recognised', () => {
    const { dataDir, hashes } = storeWithMail();
    withStoreDb(dataDir, db => db.prepare("DELETE FROM meta WHERE key IN ('store_id', 'store_format')").run());
    fs.rmSync(path.join(dataDir, 'blobs', '.store-id'));
    new Store({ dataDir }).close();
    const id = fs.readFileSync(path.join(dataDir, 'blobs', '.store-id'), 'utf8').trim();
    assert.match(id, /^[0-9a-f-]{36}$/);
    assert.equal(
        withStoreDb(dataDir, db => db.prepare("SELECT value FROM meta WHERE key = 'store_id'").pluck().get()),
        id
    );
    new Store({ dataDir }).close();
    assertFilesIntact(dataDir, hashes);
});
