/**
 * Round trips of uplink runs against the REAL provider (Dovecot on loopback,
 * test/support/upstream.ts), counted by a link proxy in front of its IMAP port
 * (test/support/link-proxy.ts: turns, the round trips the client waited for), with a little
 * latency and bandwidth so that what is written together stays together, as on the real link:
 *
 * - a run with nothing new costs three round trips whatever the number of synced folders: the
 *   session (ID with the login; NAMESPACE, ENABLE, COMPRESS) and one LIST that brings every
 *   folder's STATUS (LIST-STATUS); the connection is closed without a LOGOUT to wait for. An unchanged folder costs no command of its own, nor does an
 *   empty one on its first sync (it is not selected);
 * - body batches go out back to back (the next written while one arrives): a first sync of real
 *   mail and a sync of new mail cost the same handful of round trips however many batches their
 *   slow start takes, and bring every message home once, byte for byte;
 * - a flag changed upstream comes with the SELECT (QRESYNC), no FETCH CHANGEDSINCE of its own.
 *
 * Nothing sleeps to synchronise: runs are awaited. Figures are printed with t.diagnostic().
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type Gateway } from './support/gateway';
import { startUpstream, type Upstream } from './support/upstream';
import { startLinkProxy, type LinkProxy } from './support/link-proxy';
import { ALICE, aliceAccountYaml, receiveRun } from './support/uplink-account';
import { withStoreDb } from './support/store';
import { corpusGroup } from './support/fixtures/spam-assassin';

const TEST_TIMEOUT = 120_000;

/** Alice's local INBOX: Message-ID → raw message. */
function localInbox(gateway: Gateway): Map<string, Buffer> {
    const rows = withStoreDb(gateway.daemon.store, db =>
        db
            .prepare(
                `SELECT m.message_id AS messageId, m.blob_hash AS blobHash FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id JOIN users u ON u.id = mb.user_id
                 WHERE u.name = 'alice' AND mb.path = 'INBOX'`
            )
            .all()
    ) as { messageId: string; blobHash: string }[];
    const out = new Map<string, Buffer>();
    for (const row of rows) {
        assert.ok(!out.has(row.messageId), `${row.messageId} twice`);
        out.set(row.messageId, gateway.daemon.store.messages.readRaw(row.blobHash));
    }
    return out;
}

/** Local INBOX = upstream INBOX, byte for byte, each message once. */
async function assertAllHome(upstream: Upstream, gateway: Gateway): Promise<number> {
    const remote = await upstream.listMessages(ALICE);
    const local = localInbox(gateway);
    assert.equal(local.size, remote.length, 'every message home, once');
    for (const message of remote) {
        const id = /^Message-ID:\s*<?([^>\s]+)>?/im.exec(message.headers)?.[1];
        assert.ok(id && [...local.entries()].some(([key, raw]) => key.toLowerCase().includes(id.toLowerCase()) && raw.equals(message.source)), `${id} home byte for byte`);
    }
    return remote.length;
}

test('round trips: three for a run with nothing new, whatever the folders; body batches back to back', { timeout: TEST_TIMEOUT }, async t => {
    const upstream = await startUpstream();
    let link: LinkProxy | undefined;
    let gateway: Gateway | undefined;
    try {
        // The shaped link of bench:sync, with shorter round trips: a batch of real mail takes long
        // enough to arrive that the next one goes out while it does, whatever the load here.
        link = await startLinkProxy({ targetPort: upstream.imapPort, bandwidthBps: 256_000, latencyMs: 50 });
        const accountsYaml = aliceAccountYaml(link.port, upstream, ['INBOX', 'Sent', 'Trash'], ['maxMessageSize: 1MB']);
        gateway = await startGateway({ users: [{ name: 'alice', password: 'pw-alice', accountsYaml }] });
        const mail = corpusGroup('easy-ham-1').slice(0, 60);
        for (const raw of mail.slice(0, 50)) await upstream.deliver(ALICE, raw);

        const turns = async (label: string): Promise<number> => {
            link!.reset();
            const report = await receiveRun(gateway!, label);
            assert.equal(report.status, 'ok', JSON.stringify(report));
            // One connection: the one opened while the receive modules load is the one used.
            assert.equal(link!.stats().connections, 1, `${label}: connections`);
            return link!.stats().turns;
        };

        const first = await turns('first sync');
        const count = await assertAllHome(upstream, gateway);
        // Session 2, LIST, SELECT, SEARCH, header FETCH, bodies: 7 when the body batches
        // go out back to back (one more per batch were each to wait for the one before: 4 or 5
        // here), and neither empty folder is selected (one each, and INBOX again).
        t.diagnostic(`first sync of ${count} real messages: ${first} round trips`);
        assert.ok(first <= 8, `first sync: ${first} round trips`);

        const idle = await turns('nothing new');
        t.diagnostic(`a run with nothing new, three folders: ${idle} round trips`);
        assert.equal(idle, 3, 'session 2, LIST with every STATUS');

        for (const raw of mail.slice(50)) await upstream.deliver(ALICE, raw);
        const fresh = await turns('new mail');
        assert.equal(await assertAllHome(upstream, gateway), count + 10);
        // Session 2, LIST, SELECT (flag changes with it: QRESYNC), header FETCH, bodies: 6.
        t.diagnostic(`10 new messages: ${fresh} round trips`);
        assert.ok(fresh <= 7, `new mail: ${fresh} round trips`);

        assert.equal(await turns('nothing new again'), 3);

        // A flag set upstream comes with the SELECT (QRESYNC): no FETCH CHANGEDSINCE of its own.
        const flagged = (await upstream.listMessages(ALICE))[3];
        await upstream.setFlags(ALICE, 'INBOX', flagged.uid, ['\\Flagged']);
        const flagRun = await turns('a flag upstream');
        t.diagnostic(`a flag set upstream: ${flagRun} round trips`);
        assert.equal(flagRun, 4, 'session 2, LIST, SELECT with its changes');
        const localFlags = withStoreDb(gateway.daemon.store, db => db.prepare('SELECT flags FROM messages WHERE upstream_uid = ? AND upstream_folder = ?').pluck().get(flagged.uid, 'INBOX')) as string;
        assert.ok(JSON.parse(localFlags).includes('\\Flagged'), `local flags ${localFlags}`);
    } finally {
        await gateway?.stop().catch(() => undefined);
        await link?.close();
        await upstream.stop();
    }
});
