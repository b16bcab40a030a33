/**
 * Migrations 7, 11 and 12: the root header lines moved from blobs to blob_headers (7), then out
 * of the database (12: read from the message file), with a header summary per message row (11). A
 * database written before them opens with every message's header lines intact, and the summary
 * rows follow the message rows as messages are added, copied and expunged.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { tempDir, makeMessage } from './support/gateway';
import { undoMigration7, withStoreDb } from './support/store';
import { Store } from '../src/store';

const HEADERS = { envelope: false, bodystructure: false, mimeTree: false, headerLines: true };

function headerLinesOf(store: Store, userId: number, mailboxId: number): string[][] {
    return store.messages.fetchPage(userId, mailboxId, [1, 2, 3, 4, 5, 6], HEADERS).map(message => message.headerLines ?? []);
}

function counts(dataDir: string): { blobs: number; headers: number; orphans: number } {
    return withStoreDb(dataDir, db => ({
        blobs: db.prepare('SELECT count(*) FROM blobs').pluck().get() as number,
        headers: db.prepare('SELECT count(*) FROM messages m WHERE EXISTS (SELECT 1 FROM message_headers h WHERE h.id = m.id)').pluck().get() as number,
        orphans: db.prepare('SELECT count(*) FROM message_headers h WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = h.id)').pluck().get() as number
    }));
}

test('a database from before migration 7 keeps every header line; header summaries follow message rows', () => {
    const dataDir = tempDir('mailmule-blob-headers-');
    try {
        let store = new Store({ dataDir });
        const user = store.users.ensure('alice');
        const inbox = store.mailboxes.get(user.id, 'INBOX')!;
        const folded = makeMessage({ subject: 'a subject long enough to be folded onto a second line, as mail clients do with long subjects' });
        store.messages.add(user.id, inbox.id, folded);
        store.messages.add(user.id, inbox.id, makeMessage({ subject: 'Grüße aus dem Dorf' }));
        const before = headerLinesOf(store, user.id, inbox.id);
        assert.equal(before.length, 2);
        assert.ok(
            before.every(lines => lines.some(line => /^subject:/i.test(line))),
            'each message has its Subject line'
        );
        store.close();

        // Back to the schema before migration 7, as an older mailmule left it.
        withStoreDb(dataDir, db => {
            undoMigration7(db);
            db.pragma('user_version = 6');
        });

        store = new Store({ dataDir });
        assert.equal(store.integrityCheck(), 'ok');
        assert.deepEqual(headerLinesOf(store, user.id, inbox.id), before, 'header lines unchanged by the migration');
        assert.deepEqual(counts(dataDir), { blobs: 2, headers: 0, orphans: 0 });
        store.recover();
        assert.deepEqual(counts(dataDir), { blobs: 2, headers: 2, orphans: 0 }, 'summaries filled at start-up');

        // A new message, a copy (same message, no new row) and a duplicate delivery (same bytes).
        store.messages.add(user.id, inbox.id, makeMessage({ subject: 'third' }));
        store.messages.copy(user.id, inbox.id, [1], 'Archive');
        store.messages.add(user.id, inbox.id, folded);
        assert.deepEqual(counts(dataDir), { blobs: 3, headers: 5, orphans: 0 });
        assert.deepEqual(headerLinesOf(store, user.id, inbox.id)[3], before[0], "the duplicate shares the first message's header lines");

        // Expunging a message removes its summary with it.
        store.messages.updateFlags(user.id, inbox.id, [2, 3], 'add', ['\\Deleted']);
        store.messages.expunge(user.id, inbox.id);
        assert.deepEqual(counts(dataDir), { blobs: 1, headers: 3, orphans: 0 });
        store.close();
    } finally {
        fs.rmSync(dataDir, { recursive: true, force: true });
    }
});
