/**
 * The store's side of relay mode's messageRef (src/store/sync.ts importUpstreamHeld): a message
 * whose bytes are here under their SHA-256 is filed from that file, for any user; applied again it
 * is here already; a hash with no file here is 'missing' and changes nothing. And stubLinkedTo,
 * what a whole message from the relay replaces.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { tempDir, makeMessage } from './support/gateway';
import { blobCount, blobRefs } from './support/store';
import { Store } from '../src/store';

const IDATE = Date.UTC(2026, 10, 23, 9);

test('a message whose bytes are here is filed from that file, once; a hash not here is missing and changes nothing', () => {
    const dataDir = tempDir('mailmule-upstream-held-');
    const store = new Store({ dataDir });
    try {
        const alice = store.users.ensure('alice');
        const bob = store.users.ensure('bob');
        const aliceInbox = store.mailboxes.get(alice.id, 'INBOX')!;
        const bobInbox = store.mailboxes.get(bob.id, 'INBOX')!;
        const raw = makeMessage({ subject: 'the newsletter', messageId: '<news@example.org>', body: 'x'.repeat(20_000) });
        const analysed = store.messages.analyse(raw);
        const aliceRef = { account: 'alice@upstream.test', folder: 'INBOX', uidValidity: 7, uid: 1 };
        const bobRef = { account: 'bob@upstream.test', folder: 'INBOX', uidValidity: 9, uid: 4 };
        assert.equal(store.sync.importUpstream(alice.id, aliceInbox.id, raw, analysed, aliceRef, { flags: [], idate: IDATE }), 1);

        const options = { flags: ['\\Seen'], idate: IDATE, key: 'k' };
        assert.equal(store.sync.importUpstreamHeld(bob.id, bobInbox.id, analysed.hash, bobRef, options), 1);
        assert.equal(blobCount(dataDir), 1);
        assert.equal(blobRefs(dataDir, analysed.hash), 2, "bob's row shares alice's file");
        assert.ok(store.messages.readRaw(analysed.hash).equals(raw));
        assert.deepEqual(store.sync.linkedMessage(bobRef)?.flags, ['\\Seen']);
        assert.equal(store.sync.importUpstreamHeld(bob.id, bobInbox.id, analysed.hash, bobRef, options), null, 'applied again: here already');
        assert.equal(blobRefs(dataDir, analysed.hash), 2);

        const other = { ...bobRef, uid: 5 };
        assert.equal(store.sync.importUpstreamHeld(bob.id, bobInbox.id, 'cd'.repeat(32), other, options), 'missing');
        assert.equal(store.sync.linkedMessage(other), null);
        // Both copies expunged: the file is gone, and the hash with it.
        for (const [user, mailbox] of [
            [alice.id, aliceInbox.id],
            [bob.id, bobInbox.id]
        ]) {
            store.messages.updateFlags(user, mailbox, [1], 'add', ['\\Deleted']);
            store.messages.expunge(user, mailbox);
        }
        assert.equal(store.sync.importUpstreamHeld(bob.id, bobInbox.id, analysed.hash, other, options), 'missing');
        assert.equal(blobCount(dataDir), 0);
    } finally {
        store.close();
        fs.rmSync(dataDir, { recursive: true, force: true });
    }
});

test('stubLinkedTo finds the stub of an upstream message wherever it is, and nothing for a whole message', () => {
    const dataDir = tempDir('mailmule-upstream-held-');
    const store = new Store({ dataDir });
    try {
        const alice = store.users.ensure('alice');
        const inbox = store.mailboxes.get(alice.id, 'INBOX')!;
        const stubRef = { account: 'alice@upstream.test', folder: 'INBOX', uidValidity: 7, uid: 1 };
        const wholeRef = { ...stubRef, uid: 2 };
        const stub = makeMessage({ subject: 'large', messageId: '<large@example.org>' });
        const whole = makeMessage({ subject: 'small', messageId: '<small@example.org>' });
        store.sync.importUpstream(alice.id, inbox.id, stub, store.messages.analyse(stub), stubRef, { flags: ['\\Flagged'], idate: IDATE, stub: true });
        store.sync.importUpstream(alice.id, inbox.id, whole, store.messages.analyse(whole), wholeRef, { flags: [], idate: IDATE });
        store.mailboxes.create(alice.id, 'Fetch full');
        store.messages.move(alice.id, inbox.id, [1], 'Fetch full');
        const found = store.sync.stubLinkedTo(stubRef);
        assert.deepEqual(found && { ...found, mailboxId: undefined }, { userId: alice.id, mailboxId: undefined, uid: 1, ref: stubRef, flags: ['\\Flagged'], idate: IDATE });
        assert.equal(found?.mailboxId, store.mailboxes.get(alice.id, 'Fetch full')!.id);
        assert.equal(store.sync.stubLinkedTo(wholeRef), null);
    } finally {
        store.close();
        fs.rmSync(dataDir, { recursive: true, force: true });
    }
});
