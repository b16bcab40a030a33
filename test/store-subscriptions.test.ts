/**
 * Subscriptions as the store keeps them since migration 5: names apart from mailboxes. A store
 * from before keeps exactly the subscriptions it had.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Store } from '../src/store';
import { MIGRATIONS } from '../src/store/schema';
import { tempDir } from './support/gateway';

test('migration 5 carries the subscribed flags of an older store over to the subscriptions table', () => {
    const dir = tempDir();
    try {
        const db = new Database(path.join(dir, 'mailmule.sqlite'));
        for (const [index, sql] of MIGRATIONS.slice(0, 4).entries()) {
            db.exec(sql);
            db.pragma(`user_version = ${index + 1}`);
        }
        db.prepare("INSERT INTO users (id, name, created_at) VALUES (1, 'amina', 0)").run();
        const insert = db.prepare('INSERT INTO mailboxes (user_id, path, subscribed, uid_validity, created_at) VALUES (1, ?, ?, 1, 0)');
        insert.run('INBOX', 1);
        insert.run('Projects', 1);
        insert.run('Projects/old', 0);
        db.close();

        const store = new Store({ dataDir: dir });
        try {
            assert.deepEqual(store.mailboxes.subscriptions(1), ['INBOX', 'Projects']);
            // The mailboxes themselves are untouched.
            assert.deepEqual(
                store.mailboxes
                    .list(1)
                    .map(mailbox => mailbox.path)
                    .sort(),
                ['INBOX', 'Projects', 'Projects/old']
            );
            assert.equal(store.integrityCheck(), 'ok');
        } finally {
            store.close();
        }
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
});

test('createMailbox subscribes unless told not to; a deleted mailbox stays subscribed until unsubscribed', () => {
    const dir = tempDir();
    const store = new Store({ dataDir: dir });
    try {
        const user = store.users.ensure('amina');
        assert.ok(store.mailboxes.subscriptions(user.id).includes('Sent'), 'the default folders are subscribed');
        assert.equal(typeof store.mailboxes.create(user.id, 'Uplink/Folder'), 'number');
        assert.equal(typeof store.mailboxes.create(user.id, 'Client/Folder', null, { subscribe: false }), 'number');
        const subscribed = store.mailboxes.subscriptions(user.id);
        assert.ok(subscribed.includes('Uplink') && subscribed.includes('Uplink/Folder'));
        assert.ok(!subscribed.includes('Client') && !subscribed.includes('Client/Folder'));

        assert.throws(() => store.mailboxes.setSubscribed(user.id, 'Nowhere', true), { code: 'NONEXISTENT' }, 'SUBSCRIBE needs the mailbox');
        store.mailboxes.setSubscribed(user.id, 'Client/Folder', true);
        assert.equal(typeof store.mailboxes.delete(user.id, 'Client/Folder'), 'number');
        assert.ok(store.mailboxes.subscriptions(user.id).includes('Client/Folder'));
        store.mailboxes.setSubscribed(user.id, 'Client/Folder', false); // UNSUBSCRIBE of a gone mailbox
        assert.ok(!store.mailboxes.subscriptions(user.id).includes('Client/Folder'));
        assert.throws(() => store.mailboxes.setSubscribed(user.id, 'Client/Folder', false), { code: 'NONEXISTENT' }, 'nothing left to unsubscribe');
    } finally {
        store.close();
        fs.rmSync(dir, { recursive: true, force: true });
    }
});
