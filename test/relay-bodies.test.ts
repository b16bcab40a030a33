/**
 * Relay mode sends each body once per village, and brings a stub home whole on request (issue 14,
 * docs/relay.md "Bodies once per village" and "Fetch full"): a real relay process, the real
 * Dovecot + Postfix upstream, the Pi's users working over local IMAP.
 *
 * - A message whose bytes the Pi holds already (another user's copy, from an earlier bundle)
 *   goes down as a `messageRef`: its hash, not its body. The Pi's copy is byte-identical.
 * - A body the Pi no longer holds (expunged since) is asked for again, and the next run brings
 *   the message whole: nothing lost, nothing twice.
 * - New mail after the Pi expunged its newest message comes down (the relay's cursor is a row id,
 *   which SQLite gives again).
 * - A message over maxMessageSize comes down as a stub; moved into "Fetch full" on the Pi, the
 *   next run brings it whole, byte-identical, into its folder, and "Fetch full" is empty; one
 *   too complex to store whole gives way to the note standing in for it, as in direct mode.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { describe, test } from 'node:test';
import zlib from 'node:zlib';
import type { RecordType } from '../src/bundle';
import type { RunReport } from '../src/uplink';
import type { Gateway } from './support/gateway';
import { ALICE, downApplied, downBundle, withRelaySetup, type Relay } from './support/relay';
import { expungeAll, localSources, withLocal } from './support/local-imap';
import { blobCount } from './support/store';
import { nestedMultipart } from './support/fixtures/malformed-mime';
import { headerBlock, type Upstream } from './support/upstream';

const TEST_TIMEOUT = 180_000;
const BOB = 'bob@upstream.test';

function account(upstream: Upstream, address: string, extra: string[] = []): string {
    return [
        `      - address: ${address}`,
        `        imap: { host: 127.0.0.1, port: ${upstream.imapPort}, tls: none }`,
        `        smtp: { host: 127.0.0.1, port: ${upstream.submissionPort}, tls: none }`,
        `        credentials: { password: ${address.split('@')[0]}-pass }`,
        '        folders: [INBOX]',
        ...extra.map(line => `        ${line}`)
    ].join('\n');
}

const TWO_USERS = {
    upstream: { users: [ALICE, BOB].map(address => ({ address, password: `${address.split('@')[0]}-pass` })) },
    users: (upstream: Upstream) => [
        { name: 'alice', password: 'pw-alice', accountsYaml: account(upstream, ALICE) },
        { name: 'bob', password: 'pw-bob', accountsYaml: account(upstream, BOB) }
    ]
};

/** A mailing-list post: random text, so that only a reference keeps it from crossing again. */
function post(messageId: string): Buffer {
    return Buffer.from(
        [
            'From: list@example.org',
            'To: village@lists.example.org',
            'Subject: the monthly newsletter',
            `Message-ID: ${messageId}`,
            'Date: Mon, 01 Jun 2026 10:00:00 +0000',
            '',
            crypto.randomBytes(45_000).toString('base64').replace(/.{76}/g, '$&\r\n'),
            ''
        ].join('\r\n')
    );
}

/** A message with a small text part and a large attachment (what a stub leaves upstream). */
function withAttachment(messageId: string): Buffer {
    return Buffer.from(
        [
            'From: Carol <carol@example.org>',
            `To: ${ALICE}`,
            'Subject: the survey',
            'Date: Mon, 23 Nov 2026 09:00:00 +0000',
            `Message-ID: ${messageId}`,
            'MIME-Version: 1.0',
            'Content-Type: multipart/mixed; boundary="b1-outer"',
            '',
            '--b1-outer',
            'Content-Type: text/plain; charset=utf-8',
            '',
            'The survey results are attached. Greetings, Carol',
            '--b1-outer',
            'Content-Type: application/pdf; name="survey.pdf"',
            'Content-Disposition: attachment; filename="survey.pdf"',
            'Content-Transfer-Encoding: base64',
            '',
            crypto.randomBytes(150_000).toString('base64').replace(/.{76}/g, '$&\r\n'),
            '--b1-outer--',
            ''
        ].join('\r\n')
    );
}

/** APPENDs `raw` to the address's upstream INBOX as it is (an LMTP delivery would add its own header lines). */
async function append(upstream: Upstream, address: string, raw: Buffer): Promise<void> {
    const client = await upstream.connect(address);
    try {
        await client.append('INBOX', raw);
    } finally {
        await client.logout();
    }
}

async function run(gateway: Gateway, trigger: string): Promise<RunReport> {
    const report = await gateway.daemon.uplink!.run({ trigger });
    assert.equal(report.status, 'ok', JSON.stringify(report));
    return report;
}

/** The user moves the message with `uid` from INBOX into "Fetch full", over local IMAP. */
function askFull(gateway: Gateway, user: string, uid: number): Promise<void> {
    return withLocal(gateway, user, async client => {
        await client.mailboxCreate('Fetch full').catch(() => undefined);
        const lock = await client.getMailboxLock('INBOX');
        try {
            assert.ok(await client.messageMove(String(uid), 'Fetch full', { uid: true }));
        } finally {
            lock.release();
        }
    });
}

/** The types of the records in the relay's down bundle `seq`. */
async function downRecordTypes(relay: Relay, seq: number): Promise<RecordType[]> {
    return (await downBundle(relay, seq)).records.map(record => record.type);
}

describe('relay mode: each body once per village, and "Fetch full"', () => {
    test("a post another user of the Pi received in an earlier run goes down as a reference, and bob's copy is byte-identical", { timeout: TEST_TIMEOUT }, async t => {
        await withRelaySetup(async ({ upstream, relay, gateway, link }) => {
            const raw = post('<newsletter-1@lists.example.org>');
            await append(upstream, ALICE, raw);
            link.reset();
            await run(gateway, 'alice first');
            const first = link.stats().bytesDown;
            assert.ok((await localSources(gateway, 'alice')).some(message => message.source.equals(raw)));

            await append(upstream, BOB, raw);
            link.reset();
            await run(gateway, 'bob later');
            const second = link.stats().bytesDown;
            assert.deepEqual(await downRecordTypes(relay, downApplied(gateway)), ['messageRef']);
            const compressed = zlib.zstdCompressSync(raw).length;
            t.diagnostic(`a ${raw.length}-byte post (${compressed} compressed): ${first} bytes down the first time, ${second} the second (a reference)`);
            assert.ok(second < compressed / 4, `${second} bytes down for a post of ${compressed} compressed bytes the Pi holds`);

            const bobs = await localSources(gateway, 'bob');
            assert.equal(bobs.length, 1);
            assert.ok(bobs[0].source.equals(raw), "bob's copy is byte-identical");
            assert.equal(blobCount(gateway.daemon.store), 1, 'one message file for both users');

            await run(gateway, 'quiet');
            assert.equal((await localSources(gateway, 'bob')).length, 1);
            assert.equal((await localSources(gateway, 'alice')).length, 1);
        }, TWO_USERS);
    });

    test('a reference to a body the Pi no longer holds is asked for again: the next run brings the message whole, once', { timeout: TEST_TIMEOUT }, async () => {
        await withRelaySetup(async ({ upstream, relay, gateway }) => {
            const raw = post('<newsletter-2@lists.example.org>');
            await append(upstream, ALICE, raw);
            await run(gateway, 'alice first');
            // Alice reads it and expunges it on the Pi: its file is gone there.
            await expungeAll(gateway, 'alice');
            assert.equal(blobCount(gateway.daemon.store), 0);

            await append(upstream, BOB, raw);
            await run(gateway, 'bob: a reference to a body gone');
            assert.deepEqual(await downRecordTypes(relay, downApplied(gateway)), ['messageRef']);
            assert.deepEqual(await localSources(gateway, 'bob'), [], 'not stored: its body is not here');

            await run(gateway, 'bob: asked for whole');
            assert.deepEqual(await downRecordTypes(relay, downApplied(gateway)), ['message']);
            const bobs = await localSources(gateway, 'bob');
            assert.equal(bobs.length, 1);
            assert.ok(bobs[0].source.equals(raw), "bob's copy is byte-identical");

            await run(gateway, 'quiet');
            await run(gateway, 'quiet again');
            assert.equal((await localSources(gateway, 'bob')).length, 1, 'once');
            assert.deepEqual(await localSources(gateway, 'alice'), [], "alice's expunge stays");
        }, TWO_USERS);
    });

    test('new mail after the Pi expunged the newest message comes down (its row on the relay has the id of the one expunged)', { timeout: TEST_TIMEOUT }, async () => {
        await withRelaySetup(async ({ upstream, gateway }) => {
            await append(upstream, ALICE, post('<first@lists.example.org>'));
            await run(gateway, 'first');
            await expungeAll(gateway, 'alice');
            const second = post('<second@lists.example.org>');
            await append(upstream, ALICE, second);
            await run(gateway, 'after the expunge');
            const inbox = await localSources(gateway, 'alice');
            assert.equal(inbox.length, 1);
            assert.ok(inbox[0].source.equals(second));
            await run(gateway, 'quiet');
            assert.equal((await localSources(gateway, 'alice')).length, 1, 'once');
        });
    });

    test('over maxMessageSize a message comes through the relay as a stub; moved into "Fetch full" the next run brings it whole into its folder', { timeout: TEST_TIMEOUT }, async t => {
        await withRelaySetup(
            async ({ upstream, gateway, link }) => {
                const raw = withAttachment('<survey@example.org>');
                await append(upstream, ALICE, raw);
                link.reset();
                await run(gateway, 'stub');
                const stubRun = link.stats().bytesDown;
                const [stub] = await localSources(gateway, 'alice');
                assert.match(headerBlock(stub.source), /^X-Mailmule-Stub: /im);
                assert.ok(stub.source.length < 20_000, `the stub is ${stub.source.length} bytes`);

                await askFull(gateway, 'alice', stub.uid);
                link.reset();
                await run(gateway, 'fetch full');
                const fullRun = link.stats().bytesDown;
                t.diagnostic(`a ${raw.length}-byte message: the stub cost ${stubRun} bytes down, the whole message ${fullRun}`);
                const inbox = await localSources(gateway, 'alice');
                assert.equal(inbox.length, 1, 'one message in INBOX: the whole one, no stub');
                assert.ok(inbox[0].source.equals(raw), "byte-identical to the provider's copy");
                assert.deepEqual(await localSources(gateway, 'alice', 'Fetch full'), [], '"Fetch full" is empty');

                await run(gateway, 'quiet');
                await run(gateway, 'quiet again');
                const after = await localSources(gateway, 'alice');
                assert.equal(after.length, 1);
                assert.ok(after[0].source.equals(raw));
                assert.deepEqual(await localSources(gateway, 'alice', 'Fetch full'), []);
            },
            { users: upstream => [{ name: 'alice', password: 'pw-alice', accountsYaml: account(upstream, ALICE, ['maxMessageSize: 50KB']) }] }
        );
    });

    test('a stub asked for whole by bob after alice fetched the same message in full comes down as a reference and replaces his stub', { timeout: TEST_TIMEOUT }, async () => {
        await withRelaySetup(
            async ({ upstream, relay, gateway }) => {
                const raw = withAttachment('<shared-survey@example.org>');
                await append(upstream, ALICE, raw);
                await append(upstream, BOB, raw);
                await run(gateway, 'stubs');
                await askFull(gateway, 'alice', (await localSources(gateway, 'alice'))[0].uid);
                await run(gateway, 'alice fetches full');
                assert.ok((await localSources(gateway, 'alice'))[0].source.equals(raw));

                await askFull(gateway, 'bob', (await localSources(gateway, 'bob'))[0].uid);
                await run(gateway, 'bob fetches full');
                const types = await downRecordTypes(relay, downApplied(gateway));
                assert.ok(types.includes('messageRef') && !types.includes('message'), types.join(' '));
                const bobs = await localSources(gateway, 'bob');
                assert.equal(bobs.length, 1);
                assert.ok(bobs[0].source.equals(raw), "bob's copy is byte-identical");
                assert.deepEqual(await localSources(gateway, 'bob', 'Fetch full'), []);
            },
            {
                ...TWO_USERS,
                users: upstream => [
                    { name: 'alice', password: 'pw-alice', accountsYaml: account(upstream, ALICE, ['maxMessageSize: 50KB']) },
                    { name: 'bob', password: 'pw-bob', accountsYaml: account(upstream, BOB, ['maxMessageSize: 50KB']) }
                ]
            }
        );
    });

    test('a stub of a message too complex to store, asked for in "Fetch full", gives way to the note standing in for it, and is not asked for again', { timeout: TEST_TIMEOUT }, async () => {
        await withRelaySetup(
            async ({ upstream, gateway }) => {
                await upstream.deliver(ALICE, nestedMultipart(150));
                await run(gateway, 'stub');
                const [stub] = await localSources(gateway, 'alice');
                assert.match(headerBlock(stub.source), /^X-Mailmule-Stub: /im);
                await askFull(gateway, 'alice', stub.uid);
                await run(gateway, 'fetch full');
                assert.deepEqual(await localSources(gateway, 'alice', 'Fetch full'), [], '"Fetch full" is empty');
                const inbox = await localSources(gateway, 'alice');
                assert.equal(inbox.length, 1, 'the note, in the folder the stub came from');
                assert.match(headerBlock(inbox[0].source), /^X-Mailmule-Left-Upstream: too complex/im);
                assert.deepEqual(gateway.daemon.store.sync.leftUpstream(), [{ account: ALICE, messages: 1 }], 'a note, not a stub to fetch');
                await run(gateway, 'quiet');
                assert.equal((await localSources(gateway, 'alice')).length, 1);
            },
            { users: upstream => [{ name: 'alice', password: 'pw-alice', accountsYaml: account(upstream, ALICE, ['maxMessageSize: 4KB']) }] }
        );
    });
});
