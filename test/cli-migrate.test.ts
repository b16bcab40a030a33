/**
 * `mailmule migrate` (issue 17): a store written before migrations 12 to 16 is brought up to date
 * offline, every message byte for byte as before and every search answered the same; run again
 * (or after an interruption), it goes on where it stopped and changes nothing more.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { makeMessage, tempDir, writeConfig } from './support/gateway';
import { MAIN } from './support/daemon-process';
import { runProcess, describeRun } from './support/run-process';
import { messageFiles, undoMigration12, withStoreDb } from './support/store';
import { Store } from '../src/store';

async function migrate(configFile: string, ...extra: string[]): Promise<Record<string, unknown>> {
    const result = await runProcess(process.execPath, [MAIN, 'migrate', '--json', ...extra, '-c', configFile], { timeoutMs: 60000 });
    assert.equal(result.code, 0, describeRun('mailmule migrate', result));
    return JSON.parse(result.stdout) as Record<string, unknown>;
}

test('mailmule migrate brings an old store up to date: every message byte for byte, the same search answers; a second run does nothing', { timeout: 180000 }, async () => {
    const dir = tempDir('mailmule-cli-migrate-');
    try {
        const { configFile } = writeConfig(dir, { users: [{ name: 'alice', password: 'pw' }] });
        const dataDir = path.join(dir, 'data');
        const originals = [
            makeMessage({ subject: 'Village hall', body: 'The pump needs a new seal.' }),
            Buffer.from('From: carol@example.org\nSubject: caf\xe9\n\nmarmalade\n', 'latin1'),
            makeMessage({ subject: 'large', body: 'a line of text long enough to count\r\n'.repeat(2000) })
        ];
        let store = new Store({ dataDir });
        const alice = store.users.ensure('alice');
        const inbox = store.mailboxes.get(alice.id, 'INBOX')!;
        for (const raw of originals) store.messages.add(alice.id, inbox.id, raw);
        const hashes = originals.map(raw => store.messages.analyse(raw).hash);
        const search = () => ['pump', 'marmalade', 'count'].map(word => store.messages.search(alice.id, inbox.id, [{ key: 'text', value: word }]).uids);
        const found = search();
        assert.deepEqual(found, [[1], [2], [3]]);
        store.close();

        // As a mailmule from before migration 12 left it: every message a file, plain trees and search text.
        withStoreDb(dataDir, db => {
            undoMigration12(db);
            db.pragma('user_version = 11');
        });
        assert.equal(messageFiles(dataDir).length, 3);

        const first = await migrate(configFile);
        assert.deepEqual(first, { headerSummaries: 3, trees: 3, searchTexts: 3, inlined: 2, vacuumed: false });
        assert.deepEqual(messageFiles(dataDir), [hashes[2]], 'the small messages are in the database now');
        const second = await migrate(configFile, '--vacuum');
        assert.deepEqual(second, { headerSummaries: 0, trees: 0, searchTexts: 0, inlined: 0, vacuumed: true });

        store = new Store({ dataDir });
        assert.equal(store.integrityCheck(), 'ok');
        hashes.forEach((hash, index) => assert.ok(store.messages.readRaw(hash).equals(originals[index]), `message ${index + 1} byte for byte`));
        assert.deepEqual(search(), found);
        store.close();
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
});
