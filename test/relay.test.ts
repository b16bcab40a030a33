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
import { startUpstream } from './support/upstream';

const TEST_TIMEOUT = 120_000;

function submit(gateway: Gateway, mail: { to: string; subject: string; messageId: string; text: string }): Promise<unknown> {
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: gateway.smtpPort, secure: false, auth: { user: 'alice', pass: 'pw-alice' }, tls: { rejectUnauthorized: false } });
    return transport.sendMail({ from: ALICE, ...mail });
}

function message(subject: string, messageId: string, body: string): Buffer {
    return Buffer.from([`From: someone@example.org`, `To: ${ALICE}`, `Subject: ${subject}`, `Message-ID: ${messageId}`, 'Date: Mon, 01 Jun 2026 10:00:00 +0000', '', body, ''].join('\r\n'));
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

    test('a link cut at many byte offsets both ways loses nothing and duplicates nothing', { timeout: TEST_TIMEOUT }, async () => {
        await withRelaySetup(async ({ upstream, gateway, link }) => {
            const ids: string[] = [];
            for (let i = 0; i < 12; i++) {
                const id = `<cut-${i}@example.org>`;
                ids.push(id);
                // Random text does not compress much: the down bundle is large enough to be cut often.
                await upstream.deliver(ALICE, message(`cut test ${i}`, id, crypto.randomBytes(12_000).toString('base64')));
            }
            for (let i = 0; i < 3; i++) {
                await submit(gateway, { to: `carol${i}@example.org`, subject: `out ${i}`, messageId: `<cut-out-${i}@upstream.test>`, text: crypto.randomBytes(8_000).toString('base64') });
            }
            // Each of the first 60 connections dies after its own number of bytes (2.6 to 26 KB,
            // TLS handshake included): a request that carries less (HEAD, the exchange) goes
            // through, a transfer is cut, in the upload and in the download, at offsets spread
            // over the bundles. (The relay's handshake costs about 3.5 KB of the first connection,
            // its certificate and CA, and still 1.5 to 2 KB of each one after a cut, which resumes
            // the TLS session: the outbound messages are kept small so that the upload leaves cuts
            // for the download.)
            const offsets = Array.from({ length: 60 }, (_, i) => 2600 + ((i * 7919) % 24_000));
            link.setCutAfter(index => offsets[index] ?? null);
            const report = await run(gateway, 'relay cut test');
            assert.equal(report.status, 'ok', JSON.stringify(report));
            const cutConnections = link.connectionStats().filter(connection => connection.cut);
            assert.ok(cutConnections.length >= 20, `only ${cutConnections.length} cuts`);
            // Both ways: some cut connections carried mostly Pi → relay bytes, some mostly relay → Pi.
            assert.ok(
                cutConnections.some(connection => connection.bytesUp > connection.bytesDown * 2),
                'no cut in an upload'
            );
            assert.ok(
                cutConnections.some(connection => connection.bytesDown > connection.bytesUp * 2),
                'no cut in a download'
            );

            const inbox = inboxIds(gateway);
            for (const id of ids) assert.equal(inbox.filter(candidate => candidate === id).length, 1, `${id} in INBOX: ${inbox.join(' ')}`);
            await upstream.waitForMessages(upstream.catchall.address, 'INBOX', 3);
            const copies = await upstream.sentCopies();
            assert.equal(copies.length, 3, copies.map(copy => copy.envelopeTo).join(' '));
            assert.deepEqual(
                gateway.daemon.store.queue.list().map(entry => entry.state),
                ['sent', 'sent', 'sent']
            );

            link.setCutAfter(null);
            const again = await run(gateway, 'relay cut test, again');
            assert.equal(again.status, 'ok', JSON.stringify(again));
            assert.equal((await upstream.sentCopies()).length, 3);
            assert.equal(inboxIds(gateway).length, inbox.length);
        });
    });

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
