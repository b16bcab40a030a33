/**
 * The store's side of \Recent: migration 5 opens a database written before it (its mail is not
 * recent), and a message is taken as recent once only.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { tempDir, makeMessage } from './support/gateway';
import { Store } from '../src/store';
import { undoMigration7 } from './support/store';

test('a database from before \\Recent opens; its messages are not recent, new ones are', () => {
    const dataDir = tempDir('mailmule-recent-');
    try {
        let store = new Store({ dataDir });
        const user = store.users.ensure('alice');
        const inbox = store.mailboxes.get(user.id, 'INBOX')!;
        store.messages.add(user.id, inbox.id, makeMessage({ subject: 'old' }));
        store.close();

        // Back to the schema before migration 6, as an older mailmule left it (migration 7 undone first).
        const db = new Database(path.join(dataDir, 'mailmule.sqlite'));
        undoMigration7(db);
        db.exec('ALTER TABLE mailboxes DROP COLUMN first_recent_uid');
        db.pragma('user_version = 5');
        db.close();

        store = new Store({ dataDir });
        assert.equal(store.integrityCheck(), 'ok');
        assert.equal(store.mailboxes.status(user.id, 'INBOX')!.recent, 0);
        store.messages.add(user.id, inbox.id, makeMessage({ subject: 'new' }));
        assert.equal(store.mailboxes.status(user.id, 'INBOX')!.recent, 1);
        // EXAMINE looks, SELECT takes, the next SELECT finds none.
        assert.deepEqual(store.mailboxes.open(user.id, 'INBOX', { readOnly: true })!.recent, [2]);
        assert.deepEqual(store.mailboxes.open(user.id, 'INBOX')!.recent, [2]);
        assert.deepEqual(store.mailboxes.open(user.id, 'INBOX')!.recent, []);
        // A session told of new messages takes them once.
        store.messages.add(user.id, inbox.id, makeMessage({ subject: 'third' }));
        assert.deepEqual(store.mailboxes.takeRecent(inbox.id, [3], { readOnly: true }), [3]);
        assert.deepEqual(store.mailboxes.takeRecent(inbox.id, [3]), [3]);
        assert.deepEqual(store.mailboxes.takeRecent(inbox.id, [3]), []);
        store.close();
    } finally {
        fs.rmSync(dataDir, { recursive: true, force: true });
    }
});
