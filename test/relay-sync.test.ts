/**
 * Relay mode keeps mail in step both ways as direct mode does (issue 14; docs/relay.md): a real
 * relay process, the real Dovecot + Postfix upstream, and the Pi's users working over local
 * IMAP. Two users with two upstream accounts each send and receive; flags changed on the Pi go
 * upstream and flags changed upstream come down (uplink/flags.ts semantics: the change only, so
 * different flags changed on each side are both kept); a local expunge is deleted upstream only
 * with deleteUpstream; a UIDVALIDITY reset upstream re-links the Pi's copies without a
 * duplicate; a message in two folders (a Gmail label) crosses the link once.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import zlib from 'node:zlib';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import type { RunReport } from '../src/uplink';
import { generateSigningKey, publicKeyText } from '../src/bundle';
import { startGateway, tempDir, type Gateway, type TestUser } from './support/gateway';
import { runMailmule } from './support/daemon-process';
import { ALICE, installPiKey, PI, pairRelay, relayYaml, withRelaySetup } from './support/relay';
import { describeRun } from './support/run-process';
import { blobCount } from './support/store';
import { withLocal } from './support/local-imap';
import { headerBlock, headerValue, startUpstream, type Upstream } from './support/upstream';

const TEST_TIMEOUT = 180_000;
const ALICE_WORK = 'alicework@upstream.test';
const BOB = 'bob@upstream.test';
const BOB_WORK = 'bobwork@upstream.test';

function account(upstream: Upstream, address: string, extra: string[] = []): string {
    return [
        `      - address: ${address}`,
        `        imap: { host: 127.0.0.1, port: ${upstream.imapPort}, tls: none }`,
        `        smtp: { host: 127.0.0.1, port: ${upstream.submissionPort}, tls: none }`,
        `        credentials: { password: ${address.split('@')[0]}-pass }`,
        ...extra.map(line => `        ${line}`)
    ].join('\n');
}

/** alice and bob, each with a home account (the top level) and a work account (under work/). */
function twoUsersTwoAccounts(upstream: Upstream): TestUser[] {
    return [
        { name: 'alice', password: 'pw-alice', accountsYaml: [account(upstream, ALICE, ['name: home', 'deleteUpstream: true']), account(upstream, ALICE_WORK, ['name: work'])].join('\n') },
        { name: 'bob', password: 'pw-bob', accountsYaml: [account(upstream, BOB, ['name: home']), account(upstream, BOB_WORK, ['name: work'])].join('\n') }
    ];
}

const FOUR_ACCOUNTS = { users: [ALICE, ALICE_WORK, BOB, BOB_WORK].map(address => ({ address, password: `${address.split('@')[0]}-pass` })) };

function inbound(subject: string, messageId: string, to: string, body = 'Hello.'): Buffer {
    return Buffer.from([`From: someone@example.org`, `To: ${to}`, `Subject: ${subject}`, `Message-ID: ${messageId}`, 'Date: Mon, 01 Jun 2026 10:00:00 +0000', '', body, ''].join('\r\n'));
}

async function run(gateway: Gateway, trigger: string): Promise<RunReport> {
    const report = await gateway.daemon.uplink!.run({ trigger });
    assert.equal(report.status, 'ok', JSON.stringify(report));
    return report;
}

function messageIdOf(source: Buffer): string {
    return headerValue(headerBlock(source), 'Message-ID') ?? '';
}

/** Message-ID → sorted flags of a local folder, over local IMAP. */
function localFlags(gateway: Gateway, user: string, folder: string): Promise<Record<string, string[]>> {
    return withLocal(gateway, user, async client => {
        const lock = await client.getMailboxLock(folder);
        try {
            const out: Record<string, string[]> = {};
            if (!client.mailbox || !client.mailbox.exists) return out;
            for await (const message of client.fetch('1:*', { flags: true, source: true })) {
                out[messageIdOf(message.source!)] = [...(message.flags ?? [])].filter(flag => flag !== '\\Recent').sort();
            }
            return out;
        } finally {
            lock.release();
        }
    });
}

/** Message-ID → sorted flags of an upstream folder. */
async function upstreamFlags(upstream: Upstream, address: string, folder = 'INBOX'): Promise<Record<string, string[]>> {
    return Object.fromEntries((await upstream.listMessages(address, folder)).map(message => [messageIdOf(message.source), [...message.flags].sort()]));
}

/** Runs `fn` on the local message with `messageId` in `folder` (its UID). */
function onLocal(gateway: Gateway, user: string, folder: string, messageId: string, fn: (client: ImapFlow, uid: number) => Promise<unknown>): Promise<void> {
    return withLocal(gateway, user, async client => {
        const lock = await client.getMailboxLock(folder);
        try {
            const uids = (await client.search({ header: { 'message-id': messageId } }, { uid: true })) || [];
            assert.equal(uids.length, 1, `${messageId} in ${user}'s ${folder}`);
            await fn(client, uids[0]);
        } finally {
            lock.release();
        }
    });
}

describe('relay mode keeps mail in step both ways', () => {
    test(
        'two users with two accounts each: mail out and home, flags both ways, a local expunge deleted upstream only with deleteUpstream, and nothing echoes back',
        { timeout: TEST_TIMEOUT },
        async () => {
            await withRelaySetup(
                async ({ upstream, gateway }) => {
                    const addresses = [ALICE, ALICE_WORK, BOB, BOB_WORK];
                    for (const address of addresses) {
                        for (const n of [1, 2]) await upstream.deliver(address, inbound(`to ${address} ${n}`, `<${n}-${address}>`, address));
                    }
                    for (const [user, from] of [
                        ['alice', ALICE],
                        ['alice', ALICE_WORK],
                        ['bob', BOB],
                        ['bob', BOB_WORK]
                    ]) {
                        const transport = nodemailer.createTransport({
                            host: '127.0.0.1',
                            port: gateway.smtpPort,
                            secure: false,
                            auth: { user, pass: `pw-${user}` },
                            tls: { rejectUnauthorized: false }
                        });
                        await transport.sendMail({ from, to: 'carol@example.org', subject: `from ${from}`, messageId: `<out-${from}>`, text: `Sent by ${from} through the relay.` });
                        transport.close();
                    }

                    await run(gateway, 'first');
                    // Out: each message once, through its own sender's account.
                    await upstream.waitForMessages(upstream.catchall.address, 'INBOX', 4);
                    assert.deepEqual((await upstream.sentCopies()).map(copy => copy.envelopeFrom).sort(), [...addresses].sort());
                    // Home: each account's mail in its user's folder for it, once.
                    const where: Record<string, [string, string]> = { [ALICE]: ['alice', 'INBOX'], [ALICE_WORK]: ['alice', 'work/INBOX'], [BOB]: ['bob', 'INBOX'], [BOB_WORK]: ['bob', 'work/INBOX'] };
                    for (const address of addresses) {
                        const [user, folder] = where[address];
                        assert.deepEqual(Object.keys(await localFlags(gateway, user, folder)).sort(), [`<1-${address}>`, `<2-${address}>`], `${user}'s ${folder}`);
                    }

                    // Flags up (over local IMAP), flags down (the user's phone), and on one message a
                    // flag changed on each side: both are kept, as in direct mode.
                    await onLocal(gateway, 'alice', 'INBOX', `<1-${ALICE}>`, (client, uid) => client.messageFlagsAdd(String(uid), ['\\Seen'], { uid: true }));
                    await onLocal(gateway, 'alice', 'work/INBOX', `<1-${ALICE_WORK}>`, (client, uid) => client.messageFlagsAdd(String(uid), ['\\Flagged', '\\Answered'], { uid: true }));
                    await onLocal(gateway, 'bob', 'work/INBOX', `<2-${BOB_WORK}>`, (client, uid) => client.messageFlagsAdd(String(uid), ['\\Seen'], { uid: true }));
                    const bobs = await upstream.listMessages(BOB);
                    await upstream.setFlags(BOB, 'INBOX', bobs.find(m => messageIdOf(m.source) === `<1-${BOB}>`)!.uid, ['\\Flagged', '\\Answered']);
                    const bobWork = await upstream.listMessages(BOB_WORK);
                    await upstream.setFlags(BOB_WORK, 'INBOX', bobWork.find(m => messageIdOf(m.source) === `<2-${BOB_WORK}>`)!.uid, ['\\Flagged']);

                    await run(gateway, 'flags');
                    assert.deepEqual(await upstreamFlags(upstream, ALICE), { [`<1-${ALICE}>`]: ['\\Seen'], [`<2-${ALICE}>`]: [] });
                    assert.deepEqual(await upstreamFlags(upstream, ALICE_WORK), { [`<1-${ALICE_WORK}>`]: ['\\Answered', '\\Flagged'], [`<2-${ALICE_WORK}>`]: [] });
                    assert.deepEqual(await localFlags(gateway, 'bob', 'INBOX'), { [`<1-${BOB}>`]: ['\\Answered', '\\Flagged'], [`<2-${BOB}>`]: [] });
                    assert.deepEqual(await upstreamFlags(upstream, BOB_WORK), { [`<1-${BOB_WORK}>`]: [], [`<2-${BOB_WORK}>`]: ['\\Flagged', '\\Seen'] });
                    // Both halves on the Pi too: the relay's pass pushed \Seen and pulled \Flagged before it built the down bundle.
                    assert.deepEqual((await localFlags(gateway, 'bob', 'work/INBOX'))[`<2-${BOB_WORK}>`], ['\\Flagged', '\\Seen']);

                    // Expunged locally: alice's home account deletes upstream (deleteUpstream: true), bob's keeps it.
                    await onLocal(gateway, 'alice', 'INBOX', `<2-${ALICE}>`, (client, uid) => client.messageDelete(String(uid), { uid: true }));
                    await onLocal(gateway, 'bob', 'INBOX', `<2-${BOB}>`, (client, uid) => client.messageDelete(String(uid), { uid: true }));
                    await run(gateway, 'deletions');
                    assert.deepEqual(Object.keys(await upstreamFlags(upstream, ALICE)), [`<1-${ALICE}>`]);
                    assert.deepEqual(Object.keys(await upstreamFlags(upstream, BOB)).sort(), [`<1-${BOB}>`, `<2-${BOB}>`]);

                    // Nothing comes back or bounces to and fro: quiet runs change nothing on either side.
                    const before = { alice: await localFlags(gateway, 'alice', 'INBOX'), bob: await localFlags(gateway, 'bob', 'INBOX'), aliceWork: await upstreamFlags(upstream, ALICE_WORK) };
                    await run(gateway, 'quiet');
                    await run(gateway, 'quiet again');
                    assert.deepEqual(await localFlags(gateway, 'alice', 'INBOX'), before.alice);
                    assert.deepEqual(await localFlags(gateway, 'bob', 'INBOX'), before.bob);
                    assert.deepEqual(before.bob, { [`<1-${BOB}>`]: ['\\Answered', '\\Flagged'] });
                    assert.deepEqual(await upstreamFlags(upstream, ALICE_WORK), before.aliceWork);
                    assert.equal((await upstream.sentCopies()).length, 4);
                },
                { upstream: FOUR_ACCOUNTS, users: twoUsersTwoAccounts, uplinkLines: ['flagScanInterval: 30d'] }
            );
        }
    );

    test(
        "a UIDVALIDITY reset upstream re-links the Pi's copies as direct mode does: same messages, same UIDs, no duplicate; flags go on both ways in the new generation",
        { timeout: TEST_TIMEOUT },
        async () => {
            await withRelaySetup(
                async ({ upstream, gateway }) => {
                    for (let i = 0; i < 12; i++) await upstream.deliver(ALICE, inbound(`archive ${i}`, `<arch-${i}@example.org>`, ALICE, crypto.randomBytes(3000).toString('base64')));
                    await run(gateway, 'first');
                    const uidsOf = () =>
                        withLocal(gateway, 'alice', async client => {
                            const lock = await client.getMailboxLock('INBOX');
                            try {
                                const out: [number, string][] = [];
                                for await (const message of client.fetch('1:*', { uid: true, source: true })) out.push([message.uid, messageIdOf(message.source!)]);
                                return out;
                            } finally {
                                lock.release();
                            }
                        });
                    const before = await uidsOf();
                    assert.equal(before.length, 12);

                    const flagged = (await upstream.listMessages(ALICE)).find(m => messageIdOf(m.source) === '<arch-3@example.org>')!;
                    await upstream.setFlags(ALICE, 'INBOX', flagged.uid, ['\\Flagged']);
                    const { before: oldStatus, after: newStatus } = await upstream.recreateFolder(ALICE, 'INBOX');
                    assert.notEqual(newStatus.uidValidity, oldStatus.uidValidity);

                    await run(gateway, 'after the reset');
                    assert.deepEqual(await uidsOf(), before, 'same local messages, same UIDs, no duplicates');
                    const store = gateway.daemon.store;
                    assert.equal(store.sync.linkedMessages(ALICE, 'INBOX', newStatus.uidValidity).length, 12, 'every copy on the Pi points at the new generation');
                    assert.equal(store.sync.linkedMessages(ALICE, 'INBOX', oldStatus.uidValidity).length, 0);
                    assert.deepEqual((await localFlags(gateway, 'alice', 'INBOX'))['<arch-3@example.org>'], ['\\Flagged'], 'the flag set upstream came down with the re-link');

                    // The new generation both ways: a flag from the phone comes down, one set on the Pi goes up, new mail arrives once.
                    const renumbered = (await upstream.listMessages(ALICE)).find(m => messageIdOf(m.source) === '<arch-5@example.org>')!;
                    await upstream.setFlags(ALICE, 'INBOX', renumbered.uid, ['\\Seen', '\\Answered']);
                    await onLocal(gateway, 'alice', 'INBOX', '<arch-7@example.org>', (client, uid) => client.messageFlagsAdd(String(uid), ['\\Flagged'], { uid: true }));
                    await upstream.deliver(ALICE, inbound('after the reset', '<new-after-reset@example.org>', ALICE));
                    await run(gateway, 'new generation');
                    const local = await localFlags(gateway, 'alice', 'INBOX');
                    assert.equal(Object.keys(local).length, 13);
                    assert.deepEqual(local['<arch-5@example.org>'], ['\\Answered', '\\Seen']);
                    assert.deepEqual((await upstreamFlags(upstream, ALICE))['<arch-7@example.org>'], ['\\Flagged']);
                    assert.ok('<new-after-reset@example.org>' in local);
                },
                { uplinkLines: ['flagScanInterval: 30d'] }
            );
        }
    );

    test('a message in INBOX and in "All Mail" (a Gmail label) crosses the link once and is stored once on the Pi', { timeout: TEST_TIMEOUT }, async t => {
        const accountYaml = (upstream: Upstream) => account(upstream, ALICE, ['folders: [INBOX, All Mail]']);
        await withRelaySetup(
            async ({ upstream, gateway, link }) => {
                const raws: Buffer[] = [];
                for (let i = 0; i < 6; i++) {
                    raws.push(inbound(`labelled ${i}`, `<label-${i}@example.org>`, ALICE, crypto.randomBytes(30_000).toString('base64')));
                    await upstream.deliver(ALICE, raws[i]);
                }
                const client = await upstream.connect(ALICE);
                try {
                    await client.mailboxCreate('All Mail');
                    const lock = await client.getMailboxLock('INBOX');
                    try {
                        await client.messageCopy('1:*', 'All Mail');
                    } finally {
                        lock.release();
                    }
                } finally {
                    await client.logout();
                }
                link.reset();
                await run(gateway, 'first');
                const down = link.stats().bytesDown;
                // What the bodies cost once: each message alone through zstd (the bundle's compressor).
                const once = raws.reduce((sum, raw) => sum + zlib.zstdCompressSync(raw).length, 0);
                t.diagnostic(`6 messages in two folders: ${down} bytes down the link; the six bodies once, compressed: ${once} bytes`);
                assert.ok(down < once * 1.25 + 20_000, `${down} bytes down for ${once} bytes of bodies: the label copies crossed again`);
                const inbox = await localFlags(gateway, 'alice', 'INBOX');
                const allMail = await localFlags(gateway, 'alice', 'All Mail');
                assert.equal(Object.keys(inbox).length, 6);
                assert.deepEqual(Object.keys(allMail).sort(), Object.keys(inbox).sort());
                assert.equal(blobCount(gateway.daemon.store), 6, 'one message file for both copies');
            },
            { users: upstream => [{ name: 'alice', password: 'pw-alice', accountsYaml: accountYaml(upstream) }] }
        );
    });

    test(
        'by USB stick: flags, an expunge and a re-link carried as files; every bundle applied or exchanged twice changes nothing; acknowledged bundles are pruned on the relay',
        { timeout: TEST_TIMEOUT },
        async () => {
            const upstream = await startUpstream();
            const piKey = generateSigningKey();
            const { dir: relayDir, pairing } = await pairRelay(publicKeyText(piKey.publicKey));
            const stick = tempDir('mailmule-usb-stick-');
            let gateway: Gateway | undefined;
            try {
                gateway = await startGateway({
                    users: [{ name: 'alice', password: 'pw-alice', accountsYaml: account(upstream, ALICE, ['deleteUpstream: true']) }],
                    extraYaml: relayYaml(1, pairing, ['flagScanInterval: 30d'])
                });
                installPiKey(gateway, piKey);
                const config = gateway.configFile;
                const stateFile = path.join(gateway.daemon.store.dataDir, 'relay', 'state.json');
                /** Export up bundle `seq`, exchange it on the relay, import what comes back: one run by stick. */
                const carry = async (seq: number): Promise<{ downFile: string; imported: string; exported: string }> => {
                    const upFile = path.join(stick, `up-${seq}.bundle`);
                    const exported = await runMailmule(['bundle', 'export', '-c', config, upFile]);
                    assert.equal(exported.code, 0, describeRun('bundle export', exported));
                    const exchanged = await runMailmule(['relay', 'exchange', '--dir', relayDir, '--pi', PI, '--up', upFile, '--out', stick], { timeoutMs: 60_000 });
                    assert.equal(exchanged.code, 0, describeRun('relay exchange', exchanged));
                    // The one down bundle this exchange wrote (the relay prints each).
                    const written = [...exchanged.stdout.matchAll(/^(\S+\.bundle) \(/gm)].map(match => match[1]);
                    assert.equal(written.length, 1, exchanged.stdout);
                    const downFile = written[0];
                    const imported = await runMailmule(['bundle', 'import', '-c', config, downFile]);
                    assert.equal(imported.code, 0, describeRun('bundle import', imported));
                    return { downFile, imported: imported.stdout, exported: exported.stdout };
                };
                /** The last bundle applied again, as after a crash before it was recorded as applied. */
                const importAgain = async (downFile: string): Promise<string> => {
                    const state = JSON.parse(fs.readFileSync(stateFile, 'utf8')) as { downApplied: number };
                    fs.writeFileSync(stateFile, JSON.stringify({ ...state, downApplied: state.downApplied - 1 }));
                    const again = await runMailmule(['bundle', 'import', '-c', config, downFile]);
                    assert.equal(again.code, 0, describeRun('bundle import, again', again));
                    return again.stdout;
                };

                for (let i = 1; i <= 3; i++) await upstream.deliver(ALICE, inbound(`stick ${i}`, `<stick-${i}@example.org>`, ALICE));
                await carry(1);
                assert.deepEqual(Object.keys(await localFlags(gateway, 'alice', 'INBOX')).sort(), ['<stick-1@example.org>', '<stick-2@example.org>', '<stick-3@example.org>']);

                // Both sides change things while the link is down.
                await onLocal(gateway, 'alice', 'INBOX', '<stick-1@example.org>', (client, uid) => client.messageFlagsAdd(String(uid), ['\\Seen'], { uid: true }));
                await onLocal(gateway, 'alice', 'INBOX', '<stick-2@example.org>', (client, uid) => client.messageDelete(String(uid), { uid: true }));
                const third = (await upstream.listMessages(ALICE)).find(m => messageIdOf(m.source) === '<stick-3@example.org>')!;
                await upstream.setFlags(ALICE, 'INBOX', third.uid, ['\\Flagged']);
                const second = await carry(2);
                assert.match(second.exported, /up bundle 2 \(acknowledges down 1\): 0 messages, 1 flag change, 1 deletion/);
                assert.match(second.imported, /down bundle 2 applied: .*, 1 flag change, 0 re-linked folders/);
                const expectedUpstream = { '<stick-1@example.org>': ['\\Seen'], '<stick-3@example.org>': ['\\Flagged'] };
                const expectedLocal = { '<stick-1@example.org>': ['\\Seen'], '<stick-3@example.org>': ['\\Flagged'] };
                assert.deepEqual(await upstreamFlags(upstream, ALICE), expectedUpstream);
                assert.deepEqual(await localFlags(gateway, 'alice', 'INBOX'), expectedLocal);

                // Applied twice: nothing changes. Exchanged twice: the relay sends and deletes nothing again.
                assert.match(await importAgain(second.downFile), /applied: 0 new messages .*, 0 flag changes, 0 re-linked folders/);
                assert.deepEqual(await localFlags(gateway, 'alice', 'INBOX'), expectedLocal);
                const twice = await runMailmule(['relay', 'exchange', '--dir', relayDir, '--pi', PI, '--up', path.join(stick, 'up-2.bundle'), '--out', stick], { timeoutMs: 60_000 });
                assert.equal(twice.code, 0, describeRun('relay exchange, again', twice));
                assert.deepEqual(await upstreamFlags(upstream, ALICE), expectedUpstream);

                // A UIDVALIDITY reset upstream: the re-link comes by stick too, and applied twice it is the same.
                const { after: newStatus } = await upstream.recreateFolder(ALICE, 'INBOX');
                const third2 = await carry(3);
                assert.match(third2.imported, /down bundle 3 applied: 0 new messages .*, 1 re-linked folder/);
                const store = gateway.daemon.store;
                assert.equal(store.sync.linkedMessages(ALICE, 'INBOX', newStatus.uidValidity).length, 2);
                assert.match(await importAgain(third2.downFile), /applied: 0 new messages \(0 here already\).*, 0 flag changes, 1 re-linked folder/);
                assert.equal(store.sync.linkedMessages(ALICE, 'INBOX', newStatus.uidValidity).length, 2);
                assert.deepEqual(await localFlags(gateway, 'alice', 'INBOX'), expectedLocal);

                // A stick lost on the way: its changes come with the next one, and are made once.
                await onLocal(gateway, 'alice', 'INBOX', '<stick-3@example.org>', (client, uid) => client.messageFlagsAdd(String(uid), ['\\Seen'], { uid: true }));
                const lost = await runMailmule(['bundle', 'export', '-c', config, path.join(stick, 'up-lost.bundle')]);
                assert.match(lost.stdout, /up bundle 4 .*1 flag change/);
                await onLocal(gateway, 'alice', 'INBOX', '<stick-1@example.org>', (client, uid) => client.messageFlagsRemove(String(uid), ['\\Seen'], { uid: true }));
                const afterLoss = await carry(5);
                assert.match(afterLoss.exported, /up bundle 5 .*1 flag change/);
                const expectedAfterLoss = { '<stick-1@example.org>': [], '<stick-3@example.org>': ['\\Flagged', '\\Seen'] };
                assert.deepEqual(await upstreamFlags(upstream, ALICE), expectedAfterLoss);
                assert.deepEqual(await localFlags(gateway, 'alice', 'INBOX'), expectedAfterLoss);

                // The relay keeps a down bundle until the Pi acknowledges it, and no longer.
                const downDir = path.join(relayDir, 'pis', PI, 'down');
                assert.deepEqual(fs.readdirSync(downDir).sort(), [path.basename(afterLoss.downFile).replace(`${PI}-down-`, '')]);
                const upFile = path.join(stick, 'up-6.bundle');
                assert.equal((await runMailmule(['bundle', 'export', '-c', config, upFile])).code, 0);
                const acked = await runMailmule(['relay', 'exchange', '--dir', relayDir, '--pi', PI, '--up', upFile, '--out', stick], { timeoutMs: 60_000 });
                assert.equal(acked.code, 0, describeRun('relay exchange', acked));
                assert.match(acked.stdout, /nothing for the Pi/);
                assert.deepEqual(await upstreamFlags(upstream, ALICE), expectedAfterLoss, 'the changes carried again were made once');
                assert.deepEqual(fs.readdirSync(downDir), []);
                assert.deepEqual(fs.readdirSync(path.join(relayDir, 'pis', PI, 'up')), []);
            } finally {
                await gateway?.stop().catch(() => undefined);
                fs.rmSync(stick, { recursive: true, force: true });
                fs.rmSync(relayDir, { recursive: true, force: true });
                await upstream.stop();
            }
        }
    );

    test('a damaged relay state stops `relay start` and `relay exchange` with what to do, before any Pi is served', { timeout: TEST_TIMEOUT }, async () => {
        const { dir } = await pairRelay(publicKeyText(generateSigningKey().publicKey));
        try {
            fs.writeFileSync(path.join(dir, 'pis', PI, 'relay.sqlite'), 'not a database at all, '.repeat(400));
            const started = await runMailmule(['relay', 'start', '--dir', dir, '--host', '127.0.0.1', '--port', '0']);
            assert.notEqual(started.code, 0, describeRun('relay start', started));
            assert.match(started.stderr, /relay\.sqlite: the relay's state of this Pi is damaged \(file is not a database\); stop the relay and restore .* from a backup/);
            assert.doesNotMatch(started.stdout, /listening/);
            const exchanged = await runMailmule(['relay', 'exchange', '--dir', dir, '--pi', PI, '--up', path.join(dir, 'none.bundle'), '--out', dir]);
            assert.notEqual(exchanged.code, 0);
            assert.match(exchanged.stderr, /the relay's state of this Pi is damaged/);
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });
});
