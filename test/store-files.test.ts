/**
 * The store's rules for message files and failures, at the store's own API: a file outlives no
 * row and no row outlives its file; a refused operation throws a StoreError, changes nothing,
 * announces nothing and leaves no file; operations inside `batch` compose into one commit,
 * announced once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { tempDir, makeMessage } from './support/gateway';
import { Store, type UpstreamRef } from '../src/store';
import { blobRefs, messageFileExists, messageStored, orphanFiles } from './support/store';

function withStore(fn: (store: Store, changes: number[]) => void): void {
    const dataDir = tempDir('mailmule-store-files-');
    const store = new Store({ dataDir });
    const changes: number[] = [];
    store.on('change', (userId: number) => changes.push(userId));
    try {
        fn(store, changes);
        assert.equal(store.integrityCheck(), 'ok');
        assert.deepEqual(orphanFiles(store), [], 'no message file without a row');
    } finally {
        store.close();
        fs.rmSync(dataDir, { recursive: true, force: true });
    }
}

const REF: UpstreamRef = { account: 'alice@upstream.test', folder: 'INBOX', uidValidity: 7, uid: 42 };

test('a refused write throws its code, changes nothing, announces nothing and keeps no file', () =>
    withStore((store, changes) => {
        const alice = store.users.ensure('alice');
        const bob = store.users.ensure('bob');
        const aliceInbox = store.mailboxes.get(alice.id, 'INBOX')!;
        const bobInbox = store.mailboxes.get(bob.id, 'INBOX')!;
        const gone = store.mailboxes.create(alice.id, 'Gone');
        store.mailboxes.delete(alice.id, 'Gone');
        changes.length = 0;

        const raw = makeMessage({ subject: 'refused', messageId: '<refused@example.org>' });
        const analysed = store.messages.analyse(raw);
        assert.throws(() => store.messages.add(alice.id, bobInbox.id, raw), { name: 'StoreError', code: 'TRYCREATE' }, "into another user's mailbox");
        assert.throws(() => store.sync.importUpstream(alice.id, gone, raw, analysed, REF, { flags: [], idate: Date.now() }), { code: 'TRYCREATE' }, 'importUpstream');
        const stub = store.messages.add(alice.id, aliceInbox.id, makeMessage({ subject: 'a stub' }));
        changes.length = 0;
        // The drift this store fixed: replaceStub announced a change and kept its file when it refused.
        assert.throws(() => store.sync.replaceStub(alice.id, aliceInbox.id, stub.uid, gone, raw, analysed, REF, [], Date.now()), { code: 'TRYCREATE' }, 'replaceStub into a mailbox deleted meanwhile');
        assert.deepEqual(changes, [], 'no change announced');
        assert.equal(messageFileExists(store, analysed.hash), false, 'the file written for the refused message is gone');
        assert.deepEqual(store.mailboxes.open(alice.id, 'INBOX')!.uidList, [stub.uid], 'the stub is still there');

        assert.throws(() => store.mailboxes.create(alice.id, 'INBOX'), { code: 'ALREADYEXISTS' });
        assert.throws(() => store.mailboxes.create(alice.id, 'a//b'), { code: 'CANNOT' });
        assert.throws(() => store.mailboxes.delete(alice.id, 'INBOX'), { code: 'CANNOT' });
        assert.throws(() => store.mailboxes.delete(alice.id, 'Sent'), { code: 'CANNOT' });
        assert.throws(() => store.mailboxes.rename(alice.id, 'Nowhere', 'Elsewhere'), { code: 'NONEXISTENT' });
        assert.throws(() => store.queue.drop(999), { code: 'NONEXISTENT' });
    }));

test('a message file goes with the last row that points at it, whichever mailbox that is in', () =>
    withStore(store => {
        const alice = store.users.ensure('alice');
        const inbox = store.mailboxes.get(alice.id, 'INBOX')!;
        const raw = makeMessage({ subject: 'shared', messageId: '<shared@example.org>' });
        const { hash } = store.messages.analyse(raw);
        const first = store.messages.add(alice.id, inbox.id, raw);
        const copy = store.messages.copy(alice.id, inbox.id, [first.uid], 'Archive');
        assert.equal(blobRefs(store, hash), 2, 'the copy shares the row and the file');

        store.messages.updateFlags(alice.id, inbox.id, [first.uid], 'add', ['\\Deleted']);
        store.messages.expunge(alice.id, inbox.id);
        assert.equal(blobRefs(store, hash), 1);
        assert.ok(messageStored(store, hash), 'the Archive copy keeps the message');
        assert.ok(store.messages.readRaw(hash).equals(raw));

        const archive = store.mailboxes.get(alice.id, 'Archive')!;
        const drafts = store.messages.move(alice.id, archive.id, copy.destinationUid, 'Drafts');
        assert.equal(blobRefs(store, hash), 1, 'a move carries its reference');
        assert.ok(messageStored(store, hash));

        store.mailboxes.create(alice.id, 'Scratch');
        store.messages.move(alice.id, store.mailboxes.get(alice.id, 'Drafts')!.id, drafts.destinationUid, 'Scratch');
        store.mailboxes.delete(alice.id, 'Scratch');
        assert.equal(blobRefs(store, hash), undefined, 'the row went with the last message');
        assert.equal(messageStored(store, hash), false, 'and so did the message');
    }));

test('operations inside batch are one commit, announced once after it', () =>
    withStore((store, changes) => {
        const alice = store.users.ensure('alice');
        const inbox = store.mailboxes.get(alice.id, 'INBOX')!;
        changes.length = 0;
        store.batch(() => {
            store.messages.add(alice.id, inbox.id, makeMessage({ subject: 'one' }));
            store.messages.add(alice.id, inbox.id, makeMessage({ subject: 'two' }));
            assert.deepEqual(changes, [], 'nothing announced before the commit');
        });
        assert.deepEqual(changes, [alice.id], 'one announcement for the batch');

        // A refusal inside a batch rolls back only its own part when the caller catches it.
        const before = store.mailboxes.status(alice.id, 'INBOX')!.messages;
        store.batch(() => {
            store.messages.add(alice.id, inbox.id, makeMessage({ subject: 'kept' }));
            assert.throws(() => store.messages.copy(alice.id, inbox.id, [1], 'Nowhere'), { code: 'TRYCREATE' });
        });
        assert.equal(store.mailboxes.status(alice.id, 'INBOX')!.messages, before + 1);
    }));
