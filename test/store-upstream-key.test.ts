/**
 * The store's side of "never the same bytes twice" (schema migration 8, src/store/sync.ts): an
 * upstream message whose identity (messages.upstream_key) is home already is filed from that
 * copy, sharing its message file, both in the header pass and for a pending download; only the
 * same user's copies count; and rows from before migration 8 get their Message-ID key.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { tempDir, makeMessage } from './support/gateway';
import { undoMigration8, withStoreDb } from './support/store';
import { Store, type SyncFolderState } from '../src/store';

const ACCOUNT = 'alice@upstream.test';
const IDATE = Date.UTC(2026, 10, 23, 9);

function folderState(folder: string): SyncFolderState {
    return { account: ACCOUNT, folder, uidValidity: 7, lastUid: 0, highestModseq: 0, lastFlagScan: 0 };
}

function rows(dataDir: string): { mailbox: string; user: string; blob: string; key: string | null; upstreamUid: number | null }[] {
    return withStoreDb(
        dataDir,
        db =>
            db
                .prepare(
                    `SELECT mb.path AS mailbox, u.name AS user, m.blob_hash AS blob, m.upstream_key AS key, m.upstream_uid AS upstreamUid
                 FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id JOIN users u ON u.id = mb.user_id ORDER BY m.id`
                )
                .all() as { mailbox: string; user: string; blob: string; key: string | null; upstreamUid: number | null }[]
    );
}

test('a message home under its key is filed from that copy: in the header pass and for a pending download, never across users', () => {
    const dataDir = tempDir('mailmule-upstream-key-');
    const store = new Store({ dataDir });
    try {
        const alice = store.users.ensure('alice');
        const bob = store.users.ensure('bob');
        const inbox = store.mailboxes.get(alice.id, 'INBOX')!;
        const archive = store.mailboxes.get(alice.id, 'Archive')!;
        const bobInbox = store.mailboxes.get(bob.id, 'INBOX')!;
        const raw = makeMessage({ subject: 'twice', messageId: '<twice@example.org>' });
        const key = `mid <twice@example.org> ${raw.length} ${IDATE}`;
        const header = (uid: number) => ({ uid, size: raw.length, messageId: '<twice@example.org>', idate: IDATE, flags: ['\\Seen'], key });

        // Listed in INBOX and in All Mail (filed in Archive) in one header pass: both wait.
        assert.deepEqual(store.sync.recordHeaders(alice.id, inbox.id, folderState('INBOX'), [header(1)]), { linked: 0, pending: 1 });
        assert.deepEqual(store.sync.recordHeaders(alice.id, archive.id, folderState('All Mail'), [header(5)]), { linked: 0, pending: 1 });
        const pending = store.sync.pendingDownloads(ACCOUNT);
        assert.deepEqual(
            pending.map(p => [p.folder, p.uid, p.key]),
            [
                ['INBOX', 1, key],
                ['All Mail', 5, key]
            ]
        );

        // Nothing home yet: nothing to link.
        assert.deepEqual(
            store.sync.linkPendingToHome(alice.id, pending, () => archive.id),
            []
        );
        // INBOX's copy comes down; All Mail's is then filed from it, without a download.
        const [fromInbox, fromAllMail] = pending;
        assert.notEqual(store.sync.importUpstream(alice.id, inbox.id, raw, store.messages.analyse(raw), fromInbox, { flags: fromInbox.flags, idate: IDATE, key }), null);
        assert.deepEqual(
            store.sync.linkPendingToHome(alice.id, [fromAllMail], () => archive.id),
            [fromAllMail]
        );
        assert.deepEqual(store.sync.pendingDownloads(ACCOUNT), [], 'both left sync_pending');

        // A third label met in a later header pass is linked at once.
        const sent = store.mailboxes.get(alice.id, 'Sent')!;
        assert.deepEqual(store.sync.recordHeaders(alice.id, sent.id, folderState('Important'), [header(9)]), { linked: 1, pending: 0 });

        // Bob's account of the same name is another user's: his copy is downloaded, not linked.
        assert.deepEqual(store.sync.recordHeaders(bob.id, bobInbox.id, folderState('INBOX'), [header(2)]), { linked: 0, pending: 1 });

        const all = rows(dataDir);
        assert.deepEqual(
            all.map(r => [r.user, r.mailbox, r.upstreamUid, r.key]),
            [
                ['alice', 'INBOX', 1, key],
                ['alice', 'Archive', 5, key],
                ['alice', 'Sent', 9, key]
            ]
        );
        assert.equal(new Set(all.map(r => r.blob)).size, 1, 'one message file for the three copies');
        assert.equal(
            withStoreDb(dataDir, db => db.prepare('SELECT refs FROM blobs').pluck().get()),
            3
        );
        assert.equal(store.integrityCheck(), 'ok');
    } finally {
        store.close();
        fs.rmSync(dataDir, { recursive: true, force: true });
    }
});

test('migration 8 gives rows from before it their Message-ID key (a local row none)', () => {
    const dataDir = tempDir('mailmule-upstream-key-');
    try {
        let store = new Store({ dataDir });
        const alice = store.users.ensure('alice');
        const inbox = store.mailboxes.get(alice.id, 'INBOX')!;
        const raw = makeMessage({ subject: 'old', messageId: '<old@example.org>' });
        const ref = { account: ACCOUNT, folder: 'INBOX', uidValidity: 7, uid: 3 };
        store.sync.importUpstream(alice.id, inbox.id, raw, store.messages.analyse(raw), ref, { flags: [], idate: IDATE });
        store.messages.add(alice.id, inbox.id, makeMessage({ subject: 'local', messageId: '<local@example.org>' }));
        store.sync.recordHeaders(alice.id, inbox.id, { ...folderState('INBOX'), lastUid: 3 }, [{ uid: 4, size: 100, messageId: '<p@example.org>', idate: IDATE, flags: [], key: null }]);
        store.close();

        // Back to the schema before migration 8, as an older mailmule left it.
        withStoreDb(dataDir, db => {
            undoMigration8(db);
            db.pragma('user_version = 7');
        });

        store = new Store({ dataDir });
        assert.equal(store.integrityCheck(), 'ok');
        assert.deepEqual(
            rows(dataDir).map(r => r.key),
            [`mid <old@example.org> ${raw.length} ${IDATE}`, null]
        );
        assert.deepEqual(
            store.sync.pendingDownloads(ACCOUNT).map(p => p.key),
            [`mid <p@example.org> 100 ${IDATE}`]
        );
        store.close();
    } finally {
        fs.rmSync(dataDir, { recursive: true, force: true });
    }
});
