/**
 * The mailbox index (mailbox-index.ts) never serves a row the database no longer has: after new
 * mail, flag changes, expunges, a change made through another connection (the CLI beside the
 * daemon), a transaction rolled back, and a mailbox deleted and made again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Store } from '../store';
import type { FetchColumns, FetchedMessage } from '../types';

const FLAGS_ONLY: FetchColumns = { envelope: false, bodystructure: false, mimeTree: false, headerLines: false };
const WITH_HEADERS: FetchColumns = { ...FLAGS_ONLY, headerLines: true };

function message(n: number): Buffer {
    return Buffer.from(`From: a@example.org\r\nSubject: message ${n}\r\nMessage-ID: <m${n}@example.org>\r\n\r\nbody ${n}\r\n`);
}

/** What the index serves and what the database says (read with a column the index does not hold), without the header lines. */
function both(store: Store, userId: number, mailboxId: number, uids: number[]): [FetchedMessage[], FetchedMessage[]] {
    const strip = (list: FetchedMessage[]) => list.map(({ uid, modseq, flags, idate, size, blobHash }) => ({ uid, modseq, flags, idate, size, blobHash }));
    return [strip(store.messages.fetchPage(userId, mailboxId, uids, FLAGS_ONLY)), strip(store.messages.fetchPage(userId, mailboxId, uids, WITH_HEADERS))];
}

function withStore(fn: (dataDir: string, store: Store) => void): void {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailmule-index-'));
    const store = new Store({ dataDir });
    try {
        fn(dataDir, store);
    } finally {
        store.close();
        fs.rmSync(dataDir, { recursive: true, force: true });
    }
}

test('the index follows new mail, flag changes and expunges, and serves what the database holds', () => {
    withStore((_dataDir, store) => {
        const user = store.users.ensure('alice');
        const inbox = store.mailboxes.get(user.id, 'INBOX')!.id;
        const uids = [1, 2, 3, 4, 5, 6].map(n => store.messages.add(user.id, inbox, message(n)).uid);
        const all = [...uids, 100];
        let [indexed, stored] = both(store, user.id, inbox, all);
        assert.equal(indexed.length, 6);
        assert.deepEqual(indexed, stored);

        store.messages.updateFlags(user.id, inbox, [uids[1], uids[3]], 'add', ['\\Seen', 'Work']);
        store.messages.add(user.id, inbox, message(7));
        [indexed, stored] = both(store, user.id, inbox, all);
        assert.deepEqual(indexed, stored);
        assert.deepEqual(indexed[1].flags, ['\\Seen', 'Work']);
        assert.equal(indexed.length, 6, 'UID 7 is outside the asked range of 1..6 and 100');
        assert.equal(store.messages.fetchPage(user.id, inbox, [uids[5] + 1], FLAGS_ONLY).length, 1);

        store.messages.updateFlags(user.id, inbox, [uids[0], uids[2]], 'add', ['\\Deleted']);
        store.messages.expunge(user.id, inbox);
        [indexed, stored] = both(store, user.id, inbox, [...all, uids[5] + 1]);
        assert.deepEqual(indexed, stored);
        assert.deepEqual(
            indexed.map(m => m.uid),
            [uids[1], uids[3], uids[4], uids[5], uids[5] + 1]
        );
        // CHANGEDSINCE and a sparse UID set, from the index, as the database answers them
        for (const changedSince of [0, ...indexed.map(m => m.modseq)]) {
            const sparse = [uids[1], uids[4], uids[5] + 1];
            const expected = stored.filter(m => sparse.includes(m.uid) && m.modseq > changedSince).map(m => m.uid);
            assert.deepEqual(
                store.messages.fetchPage(user.id, inbox, sparse, FLAGS_ONLY, changedSince).map(m => m.uid),
                expected,
                `CHANGEDSINCE ${changedSince}`
            );
        }
    });
});

test('a change through another connection (the CLI beside the daemon) is seen at once', () => {
    withStore((dataDir, store) => {
        const user = store.users.ensure('alice');
        const inbox = store.mailboxes.get(user.id, 'INBOX')!.id;
        [1, 2, 3].forEach(n => store.messages.add(user.id, inbox, message(n)));
        assert.equal(store.messages.fetchPage(user.id, inbox, [1, 2, 3], FLAGS_ONLY).length, 3);
        const other = new Store({ dataDir });
        try {
            other.messages.updateFlags(user.id, inbox, [2], 'add', ['\\Flagged']);
            other.messages.updateFlags(user.id, inbox, [3], 'add', ['\\Deleted']);
            other.messages.expunge(user.id, inbox);
            other.messages.add(user.id, inbox, message(4));
        } finally {
            other.close();
        }
        const [indexed, stored] = both(store, user.id, inbox, [1, 2, 3, 4]);
        assert.deepEqual(indexed, stored);
        assert.deepEqual(
            indexed.map(m => [m.uid, m.flags]),
            [
                [1, []],
                [2, ['\\Flagged']],
                [4, []]
            ]
        );
    });
});

test('rows of a transaction that rolls back are never kept, and a mailbox made again is not served old rows', () => {
    withStore((_dataDir, store) => {
        const user = store.users.ensure('alice');
        let box = store.mailboxes.create(user.id, 'Work');
        [1, 2].forEach(n => store.messages.add(user.id, box, message(n)));
        assert.equal(store.messages.fetchPage(user.id, box, [1, 2], FLAGS_ONLY).length, 2);
        assert.throws(() =>
            store.batch(() => {
                store.messages.updateFlags(user.id, box, [1], 'add', ['\\Answered']);
                assert.deepEqual(store.messages.fetchPage(user.id, box, [1], FLAGS_ONLY)[0].flags, ['\\Answered']);
                throw new Error('roll back');
            })
        );
        // Another change brings the mailbox to the modseq the rolled-back one had.
        store.messages.updateFlags(user.id, box, [2], 'add', ['\\Seen']);
        let [indexed, stored] = both(store, user.id, box, [1, 2]);
        assert.deepEqual(indexed, stored);
        assert.deepEqual(indexed[0].flags, []);

        store.mailboxes.delete(user.id, 'Work');
        box = store.mailboxes.create(user.id, 'Work');
        store.messages.add(user.id, box, message(3));
        [indexed, stored] = both(store, user.id, box, [1, 2]);
        assert.deepEqual(indexed, stored);
        assert.equal(indexed.length, 1);
        // Another user's mailbox: nothing.
        const bob = store.users.ensure('bob');
        assert.deepEqual(store.messages.fetchPage(bob.id, box, [1, 2], FLAGS_ONLY), []);
    });
});
