/**
 * A message the store refuses for good (MIME nested past MAX_MIME_DEPTH, src/store/mime.ts),
 * coming from the REAL provider (Dovecot on loopback, test/support/upstream.ts) into a real
 * in-process gateway: it is a problem of that one message, not of the run (src/uplink/too-complex.ts).
 *
 * - Among normal mail: the run is `ok` with no error, the normal messages come home, a note
 *   with the message's headers stands in for it where it would have been, the run report says
 *   it (leftUpstream), nothing stays pending, the provider keeps the message, and the next run
 *   downloads nothing.
 * - Over maxMessageSize it first arrives as an ordinary stub (headers only: imapflow turns a
 *   BODYSTRUCTURE that deep into NIL); asked for in "Fetch full", the stub gives way to the note
 *   (in the folder it came from) and is not offered or asked for again.
 * - `mailmule status` counts the notes per account for as long as they are there; deleting a
 *   note dismisses it and never deletes the original upstream, even with deleteUpstream.
 *
 * Nothing sleeps to synchronise: runs are awaited.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { makeMessage, type Gateway } from './support/gateway';
import { ALICE, receiveRun, withAliceUplink } from './support/uplink-account';
import { headerBlock, headerValue, type Upstream } from './support/upstream';
import { messageRows, pendingRows } from './support/store';
import { nestedMultipart } from './support/fixtures/malformed-mime';
import { runMailmule } from './support/daemon-process';
import { describeRun } from './support/run-process';
import type { RunReport } from '../src/uplink';

const TEST_TIMEOUT = 60_000;
const DEPTH = 150;

function withEnv(accountExtra: string[], fn: (upstream: Upstream, gateway: Gateway) => Promise<void>): Promise<void> {
    return withAliceUplink({ folders: ['INBOX'], account: accountExtra }, fn);
}

function alice(report: RunReport): RunReport['accounts'][number] {
    const account = report.accounts.find(a => a.account === ALICE);
    assert.ok(account, JSON.stringify(report));
    return account;
}

/** The raw messages of alice's local `folder`, in UID order, with their upstream UID. */
function local(gateway: Gateway, folder: string): { raw: Buffer; upstreamUid: number | null }[] {
    const store = gateway.daemon.store;
    const mailbox = store.mailboxes.get(store.users.ensure('alice').id, folder);
    if (!mailbox) return [];
    return messageRows(store, mailbox.id).map(row => ({ raw: store.messages.readRaw(row.blobHash), upstreamUid: row.upstreamUid }));
}

/** The note standing in for the deep message: its headers, and what it says. */
function assertNote(note: { raw: Buffer; upstreamUid: number | null }, upstreamUid: number): void {
    const headers = headerBlock(note.raw);
    assert.equal(headerValue(headers, 'Subject'), `nested ${DEPTH}`, 'the original Subject');
    assert.match(headers, /^X-Mailmule-Left-Upstream: too complex/im);
    const text = note.raw.toString('utf8').replace(/=\r\n/g, '');
    assert.match(text, new RegExp(`nested ${DEPTH + 1} levels deep; the limit is 100`));
    assert.match(text, /left on the server, untouched, in the folder "INBOX"/);
    assert.equal(note.upstreamUid, upstreamUid, 'linked to its upstream original');
}

describe('a message too complex to store', () => {
    test(`MIME nested ${DEPTH} levels among normal mail: the run goes on, a note stands in, the provider keeps it, the next run downloads nothing`, { timeout: TEST_TIMEOUT }, async t => {
        await withEnv(['deleteUpstream: true'], async (upstream, gateway) => {
            await upstream.deliver(ALICE, makeMessage({ to: ALICE, subject: 'before', messageId: '<before@example.org>' }));
            await upstream.deliver(ALICE, nestedMultipart(DEPTH));
            await upstream.deliver(ALICE, makeMessage({ to: ALICE, subject: 'after', messageId: '<after@example.org>' }));
            const upstreamBefore = await upstream.listMessages(ALICE);
            assert.equal(upstreamBefore.length, 3);
            const deep = upstreamBefore.find(m => headerValue(headerBlock(m.source), 'Subject') === `nested ${DEPTH}`);
            assert.ok(deep);

            const first = await receiveRun(gateway, 'deep 1');
            assert.equal(first.status, 'ok', JSON.stringify(first));
            assert.deepEqual(alice(first).errors, []);
            assert.equal(alice(first).messagesReceived, 3, 'two messages and the note');
            assert.equal(alice(first).leftUpstream.length, 1, JSON.stringify(first));
            assert.match(alice(first).leftUpstream[0], new RegExp(`^INBOX UID ${deep.uid} \\(\\d+ bytes\\): MIME parts nested ${DEPTH + 1} levels deep`));
            const inbox = local(gateway, 'INBOX');
            const subjects = inbox.map(m => headerValue(headerBlock(m.raw), 'Subject')).sort();
            assert.deepEqual(subjects, ['after', 'before', `nested ${DEPTH}`]);
            assertNote(
                inbox.find(m => headerValue(headerBlock(m.raw), 'Subject') === `nested ${DEPTH}`)!,
                deep.uid
            );
            assert.deepEqual(pendingRows(gateway.daemon.store, ALICE), [], 'nothing waits to be downloaded');
            assert.ok(
                gateway.logLines.some(line => line.includes('message too complex to store')),
                'the log says it'
            );

            const second = await receiveRun(gateway, 'deep 2');
            assert.equal(second.status, 'ok', JSON.stringify(second));
            assert.deepEqual(alice(second).errors, []);
            assert.equal(alice(second).messagesReceived, 0);
            assert.deepEqual(alice(second).leftUpstream, [], 'told once, not at every run');
            assert.ok(alice(second).bytesReceived < deep.size, `run 2 received ${alice(second).bytesReceived} bytes; the deep message is ${deep.size}`);
            assert.equal(local(gateway, 'INBOX').length, 3);

            const upstreamAfter = await upstream.listMessages(ALICE);
            assert.deepEqual(
                upstreamAfter.map(m => m.uid),
                upstreamBefore.map(m => m.uid),
                'every message is still on the provider'
            );
            assert.ok(upstreamAfter.find(m => m.uid === deep.uid)!.source.equals(deep.source), 'the deep one untouched');

            // `mailmule status` keeps saying it while the note is there, though the last run had nothing to tell.
            const json = await runMailmule(['status', '--json', '-c', gateway.configFile]);
            assert.equal(json.code, 0, describeRun('mailmule', json));
            assert.deepEqual(JSON.parse(json.stdout).leftUpstream, [{ account: ALICE, messages: 1 }]);
            const plain = await runMailmule(['status', '-c', gateway.configFile]);
            assert.equal(plain.code, 0, describeRun('mailmule', plain));
            assert.match(plain.stdout, new RegExp(`^${ALICE}: 1 message\\(s\\) left on the provider, too complex to store here`, 'm'));

            // Deleting the note dismisses it; even with deleteUpstream the original stays, and does not come back.
            const store = gateway.daemon.store;
            const userId = store.users.ensure('alice').id;
            const inboxId = store.mailboxes.get(userId, 'INBOX')!.id;
            const noteUid = messageRows(store, inboxId).find(row => row.upstreamUid === deep.uid)!.uid;
            store.messages.updateFlags(userId, inboxId, [noteUid], 'add', ['\\Deleted']);
            assert.deepEqual(
                store.messages.expunge(userId, inboxId).map(e => e.uid),
                [noteUid]
            );
            const third = await receiveRun(gateway, 'deep 3');
            assert.equal(third.status, 'ok', JSON.stringify(third));
            assert.equal(alice(third).messagesReceived, 0);
            assert.deepEqual(
                (await upstream.listMessages(ALICE)).map(m => m.uid),
                upstreamBefore.map(m => m.uid),
                'the deep message is still on the provider'
            );
            assert.equal(local(gateway, 'INBOX').length, 2);
            assert.deepEqual(store.sync.leftUpstream(), [], 'status has nothing more to say');
            t.diagnostic(`deep message ${deep.size} bytes; run 1 received ${alice(first).bytesReceived} bytes, run 2 ${alice(second).bytesReceived}`);
        });
    });

    test('over maxMessageSize it arrives as a stub; asked for in "Fetch full", a note replaces the stub and it is not asked for again', { timeout: TEST_TIMEOUT }, async () => {
        await withEnv(['maxMessageSize: 4KB'], async (upstream, gateway) => {
            await upstream.deliver(ALICE, nestedMultipart(DEPTH));
            const [deep] = await upstream.listMessages(ALICE);
            assert.ok(deep.size > 4096, `the deep message is ${deep.size} bytes`);

            const first = await receiveRun(gateway, 'stub');
            assert.equal(first.status, 'ok', JSON.stringify(first));
            assert.deepEqual(alice(first).leftUpstream, []);
            const [stub] = local(gateway, 'INBOX');
            assert.match(headerBlock(stub.raw), /^X-Mailmule-Stub: /im, 'an ordinary stub first');
            assert.match(stub.raw.toString('utf8').replace(/=\r\n/g, ''), /Some of it was left on the server/, 'headers and the note: imapflow gives no BODYSTRUCTURE this deep');

            // Asked for in full, as the web page's "Fetch at the next uplink" does.
            const store = gateway.daemon.store;
            const userId = store.users.ensure('alice').id;
            if (!store.mailboxes.get(userId, 'Fetch full')) store.mailboxes.create(userId, 'Fetch full');
            const inboxId = store.mailboxes.get(userId, 'INBOX')!.id;
            store.messages.move(userId, inboxId, [messageRows(store, inboxId)[0].uid], 'Fetch full');

            const second = await receiveRun(gateway, 'fetch full');
            assert.equal(second.status, 'ok', JSON.stringify(second));
            assert.deepEqual(alice(second).errors, []);
            assert.equal(alice(second).leftUpstream.length, 1, JSON.stringify(second));
            assert.deepEqual(local(gateway, 'Fetch full'), [], '"Fetch full" is empty');
            const inbox = local(gateway, 'INBOX');
            assert.equal(inbox.length, 1, 'the note, in the folder the stub came from');
            assertNote(inbox[0], deep.uid);

            const third = await receiveRun(gateway, 'quiet');
            assert.equal(third.status, 'ok', JSON.stringify(third));
            assert.equal(alice(third).messagesReceived, 0);
            assert.ok(alice(third).bytesReceived < deep.size, `run 3 received ${alice(third).bytesReceived} bytes`);
            assert.equal(local(gateway, 'INBOX').length, 1);
            assert.equal((await upstream.listMessages(ALICE)).length, 1, 'the provider keeps it');
            assert.deepEqual(store.sync.leftUpstream(), [{ account: ALICE, messages: 1 }]);
            assert.deepEqual(store.sync.heldUpstream(userId, 'Fetch full'), [], 'not offered for "Fetch full" again');
        });
    });
});
