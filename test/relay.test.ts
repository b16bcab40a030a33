/**
 * Relay mode end to end (issue 14, docs/relay.md): a real `mailmule relay` process, paired with
 * `mailmule relay pair`, between an in-process gateway (the Pi, uplink.mode relay) and the real
 * Dovecot + Postfix upstream on loopback. Mail goes out and comes home through the relay, once;
 * a link that dies at many byte offsets (a cutting proxy between Pi and relay) loses and
 * duplicates nothing.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import nodemailer from 'nodemailer';
import { generateSigningKey, publicKeyText } from '../src/bundle';
import type { RunReport } from '../src/uplink';
import { startGateway, tempDir, type Gateway } from './support/gateway';
import { runMailmule } from './support/daemon-process';
import { ALICE, aliceYaml, installPiKey, PI, pairRelay, relayYaml, withRelaySetup } from './support/relay';
import { describeRun } from './support/run-process';
import { messageRows } from './support/store';
import { headerValue, startUpstream } from './support/upstream';

const TEST_TIMEOUT = 120_000;

function submit(gateway: Gateway, mail: { to: string; subject: string; messageId: string; text: string }): Promise<unknown> {
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: gateway.smtpPort, secure: false, auth: { user: 'alice', pass: 'pw-alice' }, tls: { rejectUnauthorized: false } });
    return transport.sendMail({ from: ALICE, ...mail });
}

function message(subject: string, messageId: string, body: string): Buffer {
    return Buffer.from([`From: someone@example.org`, `To: ${ALICE}`, `Subject: ${subject}`, `Message-ID: ${messageId}`, 'Date: Mon, 01 Jun 2026 10:00:00 +0000', '', body, ''].join('\r\n'));
}

/** Incoming and outgoing messages of the cut test, and the random bytes in each (base64 in the body). */
const CUT_MESSAGES_DOWN = 14;
const CUT_MESSAGES_UP = 12;
const CUT_MESSAGE_BYTES = 40_000;

/**
 * The bytes after which connection `index` is cut in one direction: 20 to 36 KB, spread by
 * `step`. Past a resumed handshake and the request heads (about 3 KB) that leaves at least one
 * whole TLS record (16 KB) of the bundle: every cut moves its transfer on.
 */
function cutOffset(index: number, step: number): number {
    return 20_000 + ((index * step) % 16_000);
}

/** The most a TLS 1.3 record carries on the wire: 16 KB of payload, its head, type and tag. */
const TLS_RECORD = 16_384 + 22;
/**
 * What a connection costs beyond the bundle: a handshake (3.5 KB the first, 1.5 to 2.2 KB each
 * one after a cut, which resumes the TLS session) and the request heads (about 0.5 KB).
 */
const RECONNECTION = 4096;

interface ExchangeLog {
    upBytes: number;
    downBytes: number;
    retries: number;
    resumedFrom: { up: number[]; down: number[] };
}

/** The Pi's 'relay exchange done' log line of its last run. */
function exchangeLog(gateway: Gateway): ExchangeLog {
    const lines = gateway.logLines.map(line => JSON.parse(line) as { msg?: string } & ExchangeLog).filter(line => line.msg === 'relay exchange done');
    return lines.at(-1) ?? assert.fail('no "relay exchange done" in the log');
}

function run(gateway: Gateway, trigger: string): Promise<RunReport> {
    return gateway.daemon.uplink!.run({ trigger });
}

/** Message-IDs in alice's local INBOX, in UID order. */
function inboxIds(gateway: Gateway): (string | null)[] {
    const store = gateway.daemon.store;
    const inbox = store.mailboxes.get(store.users.ensure('alice').id, 'INBOX')!;
    return messageRows(store, inbox.id).map(row => row.messageId);
}

describe('relay mode, end to end', () => {
    test('sends and receives through a real relay process, once, and a second run changes nothing', { timeout: TEST_TIMEOUT }, async () => {
        await withRelaySetup(async ({ upstream, gateway, link }) => {
            await upstream.deliver(ALICE, message('hello through the relay', '<in-1@example.org>', 'Welcome home.'));
            await submit(gateway, { to: 'carol@example.org', subject: 'out through the relay', messageId: '<out-1@upstream.test>', text: 'Sent by way of the relay.' });
            assert.equal(gateway.daemon.store.queue.due().length, 1);

            const report = await run(gateway, 'relay test');
            assert.equal(report.status, 'ok', JSON.stringify(report));
            const sent = await upstream.waitForMessages(upstream.catchall.address, 'INBOX', 1);
            assert.equal(sent.length, 1);
            assert.deepEqual(
                gateway.daemon.store.queue.list().map(entry => entry.state),
                ['sent']
            );
            assert.ok(inboxIds(gateway).includes('<in-1@example.org>'), `INBOX: ${inboxIds(gateway).join(' ')}`);

            link.reset();
            const again = await run(gateway, 'relay test, again');
            assert.equal(again.status, 'ok', JSON.stringify(again));
            // The run's requests share one kept-alive connection: one handshake per exchange.
            assert.equal(link.connectionStats().length, 1, JSON.stringify(link.connectionStats()));
            assert.equal((await upstream.sentCopies()).length, 1);
            assert.equal(inboxIds(gateway).filter(id => id === '<in-1@example.org>').length, 1);
        });
    });

    test(
        'a link cut at 20 byte offsets of the upload and 20 of the download: each transfer goes on from its offset, a cut costs at most the bytes in flight, nothing is lost or twice',
        { timeout: TEST_TIMEOUT },
        async () => {
            await withRelaySetup(async ({ upstream, gateway, link }) => {
                // Random text does not compress much (base64: about 0.75 in zstd): each bundle is
                // large enough for more than 20 cuts of a few TLS records' progress each.
                const ids: string[] = [];
                for (let i = 0; i < CUT_MESSAGES_DOWN; i++) {
                    ids.push(`<cut-${i}@example.org>`);
                    await upstream.deliver(ALICE, message(`cut test ${i}`, ids[i], crypto.randomBytes(CUT_MESSAGE_BYTES).toString('base64')));
                }
                const outIds: string[] = [];
                for (let i = 0; i < CUT_MESSAGES_UP; i++) {
                    outIds.push(`<cut-out-${i}@upstream.test>`);
                    await submit(gateway, { to: `carol${i}@example.org`, subject: `out ${i}`, messageId: outIds[i], text: crypto.randomBytes(CUT_MESSAGE_BYTES).toString('base64') });
                }
                link.reset();
                // Connection i is cut once it has carried cutOffset(i, …) bytes Pi → relay or relay
                // → Pi, whichever comes first (TLS handshake and HTTP heads included). An upload's
                // connection carries under 2 KB down (handshake, answers) and a download's about
                // 2.2 KB up (handshake, GET), below the other direction's limit: the upload is cut
                // by its `up` limit, the download by its `down` limit, at offsets chosen here, the
                // same at every run.
                link.setCutAfter(index => ({ up: cutOffset(index, 9_973), down: cutOffset(index, 13_331) }));
                const report = await run(gateway, 'relay cut test');
                assert.equal(report.status, 'ok', JSON.stringify(report));
                const exchange = exchangeLog(gateway);
                const connections = link.connectionStats();
                for (const direction of ['up', 'down'] as const) {
                    // Each cut transfer went on from the byte its receiver held: at least 20 offsets each
                    // way, every one further than the one before (a restart from 0 is not listed).
                    const offsets = exchange.resumedFrom[direction];
                    assert.ok(offsets.length >= 20, `${direction}: resumed at ${offsets.length} offsets: ${offsets.join(' ')}`);
                    assert.ok(
                        offsets.every((offset, i) => i === 0 || offset > offsets[i - 1]),
                        `${direction}: ${offsets.join(' ')}`
                    );
                    // A cut costs at most the bytes in flight: connection k, cut in this direction, carried
                    // its transfer from its start to the next one's, and beyond that only a reconnection (a
                    // handshake, request heads) and the TLS record the cut split, which the receiver cannot
                    // decrypt (measured: 14 to 20 KB).
                    const cut = connections.filter(connection => connection.cutIn === direction);
                    assert.equal(cut.length, offsets.length, `${direction}: ${cut.length} cuts for ${offsets.length} resumptions`);
                    const starts = [0, ...offsets];
                    cut.forEach((connection, k) => {
                        const carried = direction === 'up' ? connection.bytesUp : connection.bytesDown;
                        const moved = starts[k + 1] - starts[k];
                        assert.ok(carried - moved <= TLS_RECORD + RECONNECTION, `${direction} cut ${k}: ${carried} bytes on the wire for ${moved} bytes of the bundle`);
                    });
                }
                assert.ok(exchange.upBytes > 20 * TLS_RECORD && exchange.downBytes > 20 * TLS_RECORD, JSON.stringify(exchange));

                const inbox = inboxIds(gateway);
                for (const id of ids) assert.equal(inbox.filter(candidate => candidate === id).length, 1, `${id} in INBOX: ${inbox.join(' ')}`);
                await upstream.waitForMessages(upstream.catchall.address, 'INBOX', CUT_MESSAGES_UP);
                const copies = await upstream.sentCopies();
                assert.deepEqual(copies.map(copy => headerValue(copy.headers, 'Message-ID')).sort(), [...outIds].sort());
                assert.deepEqual(
                    gateway.daemon.store.queue.list().map(entry => entry.state),
                    outIds.map(() => 'sent')
                );

                link.setCutAfter(null);
                const again = await run(gateway, 'relay cut test, again');
                assert.equal(again.status, 'ok', JSON.stringify(again));
                assert.equal((await upstream.sentCopies()).length, CUT_MESSAGES_UP);
                assert.equal(inboxIds(gateway).length, inbox.length);
            });
        }
    );

    test('the run stops at the byte budget on the wire, and the next runs go on from the byte where it stopped', { timeout: TEST_TIMEOUT }, async () => {
        const budget = 48 * 1024;
        await withRelaySetup(
            async ({ upstream, gateway, link }) => {
                const ids: string[] = [];
                for (let i = 0; i < 10; i++) {
                    ids.push(`<budget-${i}@example.org>`);
                    await upstream.deliver(ALICE, message(`budget test ${i}`, ids[i], crypto.randomBytes(12_000).toString('base64')));
                }
                await submit(gateway, { to: 'carol@example.org', subject: 'out under a budget', messageId: '<budget-out@upstream.test>', text: crypto.randomBytes(20_000).toString('base64') });
                let runs = 0;
                for (; runs < 15; runs++) {
                    link.reset();
                    const report = await run(gateway, `relay budget test ${runs}`);
                    assert.equal(report.status, 'ok', JSON.stringify(report));
                    const spent = link.stats().bytesUp + link.stats().bytesDown;
                    assert.ok(spent <= budget, `run ${runs} spent ${spent} bytes, the budget is ${budget}`);
                    assert.ok(report.bytesTotal <= budget);
                    if (!report.waiting.length) break;
                }
                assert.ok(runs >= 2, `the budget stopped no run (${runs})`);
                assert.ok(runs < 15, 'the transfer never finished');
                const inbox = inboxIds(gateway);
                for (const id of ids) assert.equal(inbox.filter(candidate => candidate === id).length, 1, `${id} in INBOX: ${inbox.join(' ')}`);
                assert.equal((await upstream.sentCopies()).length, 1);
                assert.deepEqual(
                    gateway.daemon.store.queue.list().map(entry => entry.state),
                    ['sent']
                );
            },
            { uplinkLines: [`budget: { perRun: ${budget} }`] }
        );
    });

    test(
        "headers first: a budget that carries the header stubs but not the bodies lists every new message on the Pi; the next runs put each whole message in its stub's place, once, and not one whose stub was deleted",
        { timeout: TEST_TIMEOUT },
        async () => {
            const budget = 64 * 1024;
            await withRelaySetup(
                async ({ upstream, gateway }) => {
                    const ids: string[] = [];
                    for (let i = 0; i < 6; i++) {
                        ids.push(`<first-${i}@example.org>`);
                        await upstream.deliver(ALICE, message(`headers first ${i}`, ids[i], crypto.randomBytes(25_000).toString('base64')));
                    }
                    const upstreamSize = new Map((await upstream.listMessages(ALICE, 'INBOX')).map(stored => [headerValue(stored.headers, 'Message-ID'), stored.size]));
                    const store = gateway.daemon.store;
                    const user = store.users.ensure('alice');
                    const rows = () => messageRows(store, store.mailboxes.get(user.id, 'INBOX')!.id);

                    // About 200 KB of new mail, 150 KB compressed, for a 64 KB budget: the run lists
                    // every message (its header stub: its own header fields and a note, under 1 KB)
                    // and its bodies wait.
                    const first = await run(gateway, 'headers first');
                    assert.equal(first.status, 'ok', JSON.stringify(first));
                    assert.ok(first.waiting.length, 'the budget stopped nothing');
                    assert.deepEqual(
                        rows()
                            .map(row => row.messageId)
                            .sort(),
                        [...ids].sort()
                    );
                    for (const row of rows()) assert.ok(row.size < 1024, `${row.messageId}: ${row.size} bytes, not a header stub`);

                    // Read on the Pi before its body came: the whole message keeps the flag, and upstream
                    // gets it. Deleted before its body came: the body is not stored.
                    const inboxId = store.mailboxes.get(user.id, 'INBOX')!.id;
                    const uidOf = (id: string) => rows().find(row => row.messageId === id)!.uid;
                    store.messages.updateFlags(user.id, inboxId, [uidOf(ids[0])], 'add', ['\\Seen']);
                    const deleted = uidOf(ids[1]);
                    store.messages.updateFlags(user.id, inboxId, [deleted], 'add', ['\\Deleted']);
                    store.messages.expunge(user.id, inboxId, { uids: [deleted] });
                    const kept = ids.filter(id => id !== ids[1]);

                    let runs = 1;
                    for (; runs < 10; runs++) {
                        const report = await run(gateway, `headers first ${runs}`);
                        assert.equal(report.status, 'ok', JSON.stringify(report));
                        if (!report.waiting.length) break;
                    }
                    assert.ok(runs < 10, 'the bodies never came');
                    // Each message once, whole (its size upstream), in its stub's place.
                    assert.deepEqual(
                        rows()
                            .map(row => row.messageId)
                            .sort(),
                        [...kept].sort()
                    );
                    for (const row of rows()) assert.equal(row.size, upstreamSize.get(row.messageId!), `${row.messageId}: ${row.size} bytes`);
                    const seen = (await upstream.listMessages(ALICE, 'INBOX')).filter(stored => stored.flags.includes('\\Seen')).map(stored => headerValue(stored.headers, 'Message-ID'));
                    assert.deepEqual(seen, [ids[0]]);
                },
                { uplinkLines: [`budget: { perRun: ${budget} }`] }
            );
        }
    );

    test('export to a file, relay exchange, import on the Pi: the same result as online, and importing again changes nothing', { timeout: TEST_TIMEOUT }, async () => {
        const upstream = await startUpstream();
        const piKey = generateSigningKey();
        const { dir: relayDir, pairing } = await pairRelay(publicKeyText(piKey.publicKey));
        const stick = tempDir('mailmule-usb-stick-');
        let gateway: Gateway | undefined;
        try {
            // The relay is never reached over the network here: the url goes nowhere.
            gateway = await startGateway({ users: [{ name: 'alice', password: 'pw-alice', accountsYaml: aliceYaml(upstream) }], extraYaml: relayYaml(1, pairing) });
            installPiKey(gateway, piKey);
            await upstream.deliver(ALICE, message('hello by stick', '<in-stick@example.org>', 'Carried on a USB stick.'));
            await submit(gateway, { to: 'carol@example.org', subject: 'out by stick', messageId: '<out-stick@upstream.test>', text: 'Sent by way of a USB stick.' });

            const upFile = path.join(stick, 'up.bundle');
            const exported = await runMailmule(['bundle', 'export', '-c', gateway.configFile, upFile]);
            assert.equal(exported.code, 0, describeRun('bundle export', exported));
            assert.match(exported.stdout, /up bundle 1 \(acknowledges down 0\): 1 message/);
            // Writing the bundle changed nothing in the queue: the entry waits for its answer.
            assert.deepEqual(
                gateway.daemon.store.queue.list().map(entry => entry.state),
                ['queued']
            );

            const exchanged = await runMailmule(['relay', 'exchange', '--dir', relayDir, '--pi', PI, '--up', upFile, '--out', stick], { timeoutMs: 60_000 });
            assert.equal(exchanged.code, 0, describeRun('relay exchange', exchanged));
            const downFile = path.join(stick, `${PI}-down-1.bundle`);
            assert.ok(fs.existsSync(downFile), exchanged.stdout);

            const imported = await runMailmule(['bundle', 'import', '-c', gateway.configFile, downFile]);
            assert.equal(imported.code, 0, describeRun('bundle import', imported));
            assert.match(imported.stdout, /down bundle 1 applied: 1 new message .* 1 delivery result/);

            assert.equal((await upstream.waitForMessages(upstream.catchall.address, 'INBOX', 1)).length, 1);
            assert.deepEqual(
                gateway.daemon.store.queue.list().map(entry => entry.state),
                ['sent']
            );
            assert.deepEqual(
                inboxIds(gateway).filter(id => id === '<in-stick@example.org>'),
                ['<in-stick@example.org>']
            );

            const again = await runMailmule(['bundle', 'import', '-c', gateway.configFile, downFile]);
            assert.equal(again.code, 0, describeRun('bundle import, again', again));
            assert.match(again.stdout, /applied before; nothing to do/);
            // A crash after the last record's commit and before the bundle was recorded as
            // applied: the bundle is applied again, and every record of it is passed over.
            const stateFile = path.join(gateway.daemon.store.dataDir, 'relay', 'state.json');
            const state = JSON.parse(fs.readFileSync(stateFile, 'utf8')) as { downApplied: number };
            fs.writeFileSync(stateFile, JSON.stringify({ ...state, downApplied: 0 }));
            const replayed = await runMailmule(['bundle', 'import', '-c', gateway.configFile, downFile]);
            assert.equal(replayed.code, 0, describeRun('bundle import after a crash', replayed));
            assert.match(replayed.stdout, /applied: 0 new messages \(1 here already\), 0 delivery results \(1 settled already\)/);
            // The same up bundle carried twice sends nothing twice.
            const twice = await runMailmule(['relay', 'exchange', '--dir', relayDir, '--pi', PI, '--up', upFile, '--out', stick], { timeoutMs: 60_000 });
            assert.equal(twice.code, 0, describeRun('relay exchange, again', twice));
            assert.equal((await upstream.sentCopies()).length, 1);
            assert.equal(inboxIds(gateway).length, 1);

            // A bundle damaged on the stick is refused whole, and nothing of it is applied.
            const damaged = path.join(stick, 'damaged.bundle');
            const bytes = fs.readFileSync(downFile);
            bytes[bytes.length - 80] ^= 0xff;
            fs.writeFileSync(damaged, bytes);
            const refused = await runMailmule(['bundle', 'import', '-c', gateway.configFile, damaged]);
            assert.notEqual(refused.code, 0);
            assert.match(refused.stderr, /bundle checksum/);
        } finally {
            await gateway?.stop().catch(() => undefined);
            fs.rmSync(stick, { recursive: true, force: true });
            fs.rmSync(relayDir, { recursive: true, force: true });
            await upstream.stop();
        }
    });
});
