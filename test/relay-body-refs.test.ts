/**
 * Relay mode sends a body once per village even under other header lines (issue 14,
 * docs/relay.md "Bodies once per village"): a mailing-list post delivered by the real Dovecot
 * (LMTP, through a real relay process) to alice and then to bob, each copy with its own
 * Return-Path, Delivered-To and Received lines, so the whole messages differ.
 *
 * - Bob's copy goes down as a `bodyRef`: his header bytes and where the body lies in alice's
 *   copy. The Pi rebuilds it byte-identical to what Dovecot holds, for about his header's bytes.
 * - When the Pi no longer holds alice's copy, bob's is asked for again and the next run brings
 *   it whole: nothing lost, nothing twice.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { describe, test } from 'node:test';
import zlib from 'node:zlib';
import type { RunReport } from '../src/uplink';
import type { Gateway } from './support/gateway';
import { expungeAll, localSources } from './support/local-imap';
import { ALICE, downApplied, downBundle, withRelaySetup } from './support/relay';
import { blobCount } from './support/store';
import { headerBlock, type Upstream } from './support/upstream';
import { slimHeaders } from '../src/relay/server/header-slimming';

const TEST_TIMEOUT = 180_000;
const BOB = 'bob@upstream.test';

function account(upstream: Upstream, address: string): string {
    return [
        `      - address: ${address}`,
        `        imap: { host: 127.0.0.1, port: ${upstream.imapPort}, tls: none }`,
        `        smtp: { host: 127.0.0.1, port: ${upstream.submissionPort}, tls: none }`,
        `        credentials: { password: ${address.split('@')[0]}-pass }`,
        '        folders: [INBOX]'
    ].join('\n');
}

const TWO_USERS = {
    upstream: { users: [ALICE, BOB].map(address => ({ address, password: `${address.split('@')[0]}-pass` })) },
    users: (upstream: Upstream) => [
        { name: 'alice', password: 'pw-alice', accountsYaml: account(upstream, ALICE) },
        { name: 'bob', password: 'pw-bob', accountsYaml: account(upstream, BOB) }
    ]
};

/**
 * A list post as the list server sent it (random text, so that only a reference keeps it from
 * crossing again), with a Received line for each of `hops` before the upstream's own.
 */
function post(messageId: string, hops = 1): Buffer {
    const received = Array.from(
        { length: hops },
        (_, hop) =>
            `Received: from hop${hop + 1}.example.net (hop${hop + 1}.example.net [192.0.2.${hop + 7}])\r\n\tby hop${hop}.example.net with ESMTPS id ${hop}; Mon, 01 Jun 2026 10:00:0${hop} +0000`
    );
    return Buffer.from(
        [
            ...received,
            'From: list@example.org',
            'To: village@lists.example.org',
            'Subject: the monthly newsletter',
            `Message-ID: ${messageId}`,
            'List-Id: <village.lists.example.org>',
            'Date: Mon, 01 Jun 2026 10:00:00 +0000',
            '',
            crypto.randomBytes(45_000).toString('base64').replace(/.{76}/g, '$&\r\n'),
            ''
        ].join('\r\n')
    );
}

async function run(gateway: Gateway, trigger: string): Promise<RunReport> {
    const report = await gateway.daemon.uplink!.run({ trigger });
    assert.equal(report.status, 'ok', JSON.stringify(report));
    return report;
}

/** What Dovecot holds in the address's INBOX, each copy with the header lines its delivery added. */
async function upstreamSources(upstream: Upstream, address: string): Promise<Buffer[]> {
    return (await upstream.listMessages(address)).map(message => message.source);
}

describe('relay mode: a body once per village under other header lines', () => {
    test("bob's copy of a post alice received in an earlier run goes down as its header lines and a reference to alice's body, byte-identical to Dovecot's", { timeout: TEST_TIMEOUT }, async t => {
        await withRelaySetup(async ({ upstream, relay, gateway, link }) => {
            const raw = post('<newsletter-3@lists.example.org>');
            await upstream.deliver(ALICE, raw, { from: 'list-bounces@lists.example.org' });
            link.reset();
            await run(gateway, 'alice first');
            const first = link.stats().bytesDown;
            const [alices] = await upstreamSources(upstream, ALICE);
            assert.ok((await localSources(gateway, 'alice'))[0].source.equals(alices));

            await upstream.deliver(BOB, raw, { from: 'list-bounces@lists.example.org' });
            const [bobs] = await upstreamSources(upstream, BOB);
            assert.notEqual(headerBlock(bobs), headerBlock(alices), 'the copies differ in their header lines');
            link.reset();
            await run(gateway, 'bob later');
            const second = link.stats().bytesDown;
            const bundle = await downBundle(relay, downApplied(gateway));
            assert.deepEqual(
                bundle.records.map(record => record.type),
                ['bodyRef']
            );
            const header = bundle.records[0].body;
            assert.ok(bobs.subarray(0, header.length).equals(header), "the record carries bob's header bytes");
            const compressed = zlib.zstdCompressSync(raw).length;
            t.diagnostic(
                `a ${raw.length}-byte post (${compressed} compressed), bob's header ${header.length} bytes: ${first} bytes down the first time, ${second} the second; the second down bundle is ${bundle.bytes} bytes`
            );
            assert.ok(bundle.bytes < header.length + 1024, `a ${bundle.bytes}-byte down bundle for ${header.length} bytes of header`);
            assert.ok(second < compressed / 4, `${second} bytes down for a post of ${compressed} compressed bytes whose body the Pi holds`);

            const bobsHere = await localSources(gateway, 'bob');
            assert.equal(bobsHere.length, 1);
            assert.ok(bobsHere[0].source.equals(bobs), "bob's copy is byte-identical to Dovecot's");
            assert.equal(blobCount(gateway.daemon.store), 2, "bob's copy is a message file of its own");

            await run(gateway, 'quiet');
            assert.equal((await localSources(gateway, 'bob')).length, 1, 'once');
            assert.equal((await localSources(gateway, 'alice')).length, 1);
        }, TWO_USERS);
    });

    test("a reference to a body in a message the Pi no longer holds is asked for again: the next run brings bob's copy whole, once", { timeout: TEST_TIMEOUT }, async () => {
        await withRelaySetup(async ({ upstream, relay, gateway }) => {
            const raw = post('<newsletter-4@lists.example.org>');
            await upstream.deliver(ALICE, raw);
            await run(gateway, 'alice first');
            await expungeAll(gateway, 'alice');
            assert.equal(blobCount(gateway.daemon.store), 0);

            await upstream.deliver(BOB, raw);
            await run(gateway, 'bob: a reference to a body gone');
            assert.deepEqual(
                (await downBundle(relay, downApplied(gateway))).records.map(record => record.type),
                ['bodyRef']
            );
            assert.deepEqual(await localSources(gateway, 'bob'), [], 'not stored: its body is not here');

            await run(gateway, 'bob: asked for whole');
            assert.deepEqual(
                (await downBundle(relay, downApplied(gateway))).records.map(record => record.type),
                ['message']
            );
            const [bobs] = await upstreamSources(upstream, BOB);
            const bobsHere = await localSources(gateway, 'bob');
            assert.equal(bobsHere.length, 1);
            assert.ok(bobsHere[0].source.equals(bobs), "bob's copy is byte-identical to Dovecot's");

            await run(gateway, 'quiet');
            await run(gateway, 'quiet again');
            assert.equal((await localSources(gateway, 'bob')).length, 1, 'once');
            assert.deepEqual(await localSources(gateway, 'alice'), [], "alice's expunge stays");
        }, TWO_USERS);
    });

    test('header slimming is off by default; on, the Pi gets the first Received lines and a note of the rest, and the body still goes once', { timeout: TEST_TIMEOUT }, async t => {
        const raw = post('<newsletter-5@lists.example.org>', 5);
        await withRelaySetup(async ({ upstream, gateway }) => {
            await upstream.deliver(ALICE, raw);
            await run(gateway, 'off by default');
            const [alices] = await upstreamSources(upstream, ALICE);
            assert.ok((await localSources(gateway, 'alice'))[0].source.equals(alices), "byte-identical to Dovecot's copy, seven Received lines and all");
        }, TWO_USERS);

        await withRelaySetup(
            async ({ upstream, relay, gateway, link }) => {
                await upstream.deliver(ALICE, raw);
                await run(gateway, 'slimmed');
                const [alices] = await upstreamSources(upstream, ALICE);
                const [alicesHere] = await localSources(gateway, 'alice');
                const header = headerBlock(alicesHere.source);
                assert.equal(header.match(/^Received:/gim)?.length, 2, header);
                const slimmed = /^X-Mailmule-Slimmed: received=(\d+) bytes=(\d+)$/m.exec(header);
                assert.ok(slimmed, header);
                assert.equal(Number(slimmed[1]), headerBlock(alices).match(/^Received:/gim)!.length - 2);
                assert.ok(alicesHere.source.equals(slimHeaders(alices, { keepReceived: 2 })));
                assert.ok(alicesHere.source.subarray(alicesHere.source.indexOf('\r\n\r\n')).equals(alices.subarray(alices.indexOf('\r\n\r\n'))), 'the body untouched');
                t.diagnostic(`slimming: ${alices.length - alicesHere.source.length} bytes less of ${headerBlock(alices).length} bytes of header (${slimmed[0]})`);

                // Bob's copy, slimmed too: its body is the one alice holds, so it goes as a reference.
                await upstream.deliver(BOB, raw);
                link.reset();
                await run(gateway, 'bob slimmed');
                assert.deepEqual(
                    (await downBundle(relay, downApplied(gateway))).records.map(record => record.type),
                    ['bodyRef']
                );
                const [bobs] = await upstreamSources(upstream, BOB);
                const bobsHere = await localSources(gateway, 'bob');
                assert.equal(bobsHere.length, 1);
                assert.ok(bobsHere[0].source.equals(slimHeaders(bobs, { keepReceived: 2 })));
                await run(gateway, 'quiet');
                assert.equal((await localSources(gateway, 'bob')).length, 1, 'once');
                assert.equal((await localSources(gateway, 'alice')).length, 1, 'once');
            },
            { ...TWO_USERS, relayLines: ['slimHeaders: { keepReceived: 2 }'] }
        );
    });
});
