/**
 * Schema migration 10 (src/store/schema.ts): an installation from before keeps the local folders
 * the mapping before it named after the upstream path (Courier's flat "INBOX.Work.Projects"), and
 * a message the user moved elsewhere (into Archive, into Trash) never takes the folder there.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { tempDir, makeMessage } from './support/gateway';
import { undoMigration10, withStoreDb } from './support/store';
import { Store } from '../src/store';

const ACCOUNT = 'alice@upstream.test';
const SECOND = 'alice@work.example';

test('migration 10 keeps the local folders of an installation from before; moved messages do not count', () => {
    const dataDir = tempDir('mailmule-local-path-');
    try {
        let store = new Store({ dataDir });
        const alice = store.users.ensure('alice');
        const id = (path: string) => (store.mailboxes.get(alice.id, path) ?? store.mailboxes.getById(alice.id, store.mailboxes.create(alice.id, path)))!.id;
        let uid = 0;
        /** One upstream message of `folder`, home in local `path`. */
        const home = (account: string, folder: string, path: string) => {
            uid++;
            const raw = makeMessage({ subject: `${folder} ${uid}`, messageId: `<m${uid}@example.org>` });
            store.sync.importUpstream(alice.id, id(path), raw, store.messages.analyse(raw), { account, folder, uidValidity: 1, uid }, { flags: [], idate: 0 });
            store.sync.saveFolder({ account, folder, uidValidity: 1, lastUid: uid, highestModseq: 0, lastFlagScan: 0 });
        };
        home(ACCOUNT, 'INBOX', 'Archive'); // every INBOX message archived locally
        home(ACCOUNT, 'INBOX.Work.Projects', 'INBOX.Work.Projects'); // Courier, flat
        home(ACCOUNT, 'INBOX.Gesendet', 'Sent'); // recognised by name: mailmule's Sent (mapped so again at its next run)
        home(ACCOUNT, 'INBOX.Lists', 'INBOX.Lists');
        home(ACCOUNT, 'INBOX.Lists', 'Trash'); // one deleted locally: Thunderbird moves it to Trash
        home(ACCOUNT, 'INBOX.Old', 'Trash'); // all of them deleted, and the local folder too
        home(ACCOUNT, 'Work/Projects', 'Work/Projects'); // a "/" server: mapped as before, at its next run
        home(SECOND, 'INBOX', 'work/INBOX');
        home(SECOND, 'INBOX.Work', 'work/INBOX.Work');
        home(SECOND, 'INBOX.Lists', 'work/INBOX.Lists'); // the first account has an INBOX.Lists too
        store.close();

        withStoreDb(dataDir, db => {
            undoMigration10(db);
            db.pragma('user_version = 9');
        });

        store = new Store({ dataDir });
        assert.equal(store.integrityCheck(), 'ok');
        // INBOX, INBOX.Gesendet, INBOX.Old and Work/Projects get theirs at the next run (INBOX, Sent, Old,
        // Work/Projects): never Archive or Trash, where their messages are.
        assert.deepEqual(Object.fromEntries(store.sync.localPaths(ACCOUNT)), {
            'INBOX.Work.Projects': 'INBOX.Work.Projects',
            'INBOX.Lists': 'INBOX.Lists'
        });
        // A second account's folders are its own, though the first account has folders of those names.
        assert.deepEqual(Object.fromEntries(store.sync.localPaths(SECOND)), { 'INBOX.Work': 'work/INBOX.Work', 'INBOX.Lists': 'work/INBOX.Lists' });

        store.sync.setLocalPath(ACCOUNT, 'INBOX.Old', 'Old');
        assert.equal(store.sync.localPaths(ACCOUNT).get('INBOX.Old'), 'Old');
        store.close();
    } finally {
        fs.rmSync(dataDir, { recursive: true, force: true });
    }
});
