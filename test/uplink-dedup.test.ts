/**
 * Never the same bytes twice, against the REAL provider (Dovecot on loopback,
 * test/support/upstream.ts) and a real in-process gateway:
 *
 * - a Gmail-style account with the same messages in INBOX and "All Mail" (both in `folders`)
 *   downloads each body once and files the other copy from it, counted on the wire. Dovecot
 *   does not offer X-GM-EXT-1, so this is the Message-ID + size + date path (identity.ts; the
 *   X-GM-MSGID decision has unit tests beside it). A COPY keeps all three, as a Gmail label does.
 * - the byte budget fills at least 90 % of `perRun` while a backlog of real mail (the
 *   SpamAssassin corpus) waits, and never goes over it, run after run.
 *
 * Nothing sleeps to synchronise: runs are awaited. Figures are printed with t.diagnostic().
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import type { Gateway } from './support/gateway';
import { ALICE, receiveRun, withAliceUplink } from './support/uplink-account';
import type { Upstream } from './support/upstream';
import { withStoreDb } from './support/store';
import type { RunReport } from '../src/uplink';
import { corpusGroup } from './support/fixtures/spam-assassin';

const TEST_TIMEOUT = 120_000;

function withEnv(folders: string[], extraYaml: string, fn: (upstream: Upstream, gateway: Gateway) => Promise<void>): Promise<void> {
    return withAliceUplink({ folders, extraYaml }, fn);
}

function received(report: RunReport): number {
    const account = report.accounts.find(a => a.account === ALICE);
    assert.ok(account, JSON.stringify(report));
    return account.bytesReceived;
}

/** Copies every message of INBOX upstream into `folder` (created if missing), as a Gmail label would show it. */
async function copyInboxTo(upstream: Upstream, folder: string, range = '1:*'): Promise<void> {
    const client = await upstream.connect(ALICE);
    try {
        if (!(await client.list()).some(entry => entry.path === folder)) await client.mailboxCreate(folder);
        const lock = await client.getMailboxLock('INBOX');
        try {
            await client.messageCopy(range, folder, { uid: true });
        } finally {
            lock.release();
        }
    } finally {
        await client.logout().catch(() => client.close());
    }
}

/** Per local mailbox of alice: message count; and how many distinct message files those share. */
function localCopies(gateway: Gateway): { byMailbox: Record<string, number>; distinctFiles: number; unlinked: number } {
    return withStoreDb(gateway.daemon.store, db => {
        const rows = db
            .prepare(
                `SELECT mb.path AS path, COUNT(*) AS n FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id JOIN users u ON u.id = mb.user_id
                 WHERE u.name = 'alice' GROUP BY mb.path`
            )
            .all() as { path: string; n: number }[];
        const distinctFiles = db.prepare('SELECT COUNT(DISTINCT blob_hash) FROM messages').pluck().get() as number;
        const unlinked = db.prepare('SELECT COUNT(*) FROM messages WHERE upstream_uid IS NULL').pluck().get() as number;
        return { byMailbox: Object.fromEntries(rows.map(row => [row.path, row.n])), distinctFiles, unlinked };
    });
}

/** Random base64 (76 columns): deflate cannot shrink it below ~75 %, so a second download would show. */
function noisyMessage(i: number, bytes: number): Buffer {
    const noise = (
        crypto
            .randomBytes(bytes)
            .toString('base64')
            .match(/.{1,76}/g) ?? []
    ).join('\r\n');
    return Buffer.from(
        [
            'From: Carol <carol@example.org>',
            `To: ${ALICE}`,
            `Subject: label ${i}`,
            'Date: Mon, 23 Nov 2026 09:00:00 +0000',
            `Message-ID: <label-${i}@example.org>`,
            'MIME-Version: 1.0',
            'Content-Type: text/plain; charset=utf-8',
            '',
            noise,
            ''
        ].join('\r\n')
    );
}

describe('never the same bytes twice', () => {
    test('a message in INBOX and "All Mail" is downloaded once and linked in the other folder; later label copies are linked in the header pass', { timeout: TEST_TIMEOUT }, async t => {
        await withEnv(['INBOX', 'All Mail'], '', async (upstream, gateway) => {
            const count = 10;
            for (let i = 0; i < count; i++) await upstream.deliver(ALICE, noisyMessage(i, 9_000 + i * 100));
            await copyInboxTo(upstream, 'All Mail');
            const sizes = (await upstream.listMessages(ALICE)).map(m => m.size);
            const oneCopy = sizes.reduce((a, b) => a + b, 0);
            assert.equal((await upstream.listMessages(ALICE, 'All Mail')).length, count);

            const first = await receiveRun(gateway, 'labels 1');
            assert.equal(first.status, 'ok', JSON.stringify(first));
            const local = localCopies(gateway);
            assert.deepEqual(Object.values(local.byMailbox).sort(), [count, count], JSON.stringify(local));
            assert.equal(local.distinctFiles, count, 'stored once');
            assert.equal(local.unlinked, 0, 'every local copy is linked to its upstream original');
            // Each body crosses once: at least ~75 % of one copy (the noise does not deflate),
            // well under the ~150 % that downloading both copies costs.
            t.diagnostic(`two folders of ${count} messages (${oneCopy} bytes each): run 1 received ${received(first)} bytes`);
            assert.ok(received(first) < oneCopy, `received ${received(first)} bytes for ${oneCopy} bytes of mail in two folders`);
            assert.ok(received(first) > oneCopy * 0.7, 'the bodies did come down');

            // New mail: run 2 brings it home from INBOX; then it is labelled upstream, and
            // run 3 files the label copies from the local ones in the header pass.
            for (let i = count; i < count + 3; i++) await upstream.deliver(ALICE, noisyMessage(i, 9_000));
            const second = await receiveRun(gateway, 'labels 2');
            assert.ok(received(second) > 3 * 9_000 * 0.7, 'run 2 downloads the new mail');
            await copyInboxTo(upstream, 'All Mail', `${count + 1}:*`);
            const third = await receiveRun(gateway, 'labels 3');
            t.diagnostic(`3 new messages: run 2 received ${received(second)} bytes; their label copies cost run 3 ${received(third)} bytes`);
            assert.ok(received(third) < 9_000, `run 3 received ${received(third)} bytes: less than one message body`);
            const after = localCopies(gateway);
            assert.deepEqual(Object.values(after.byMailbox).sort(), [count + 3, count + 3], JSON.stringify(after));
            assert.equal(after.distinctFiles, count + 3);
            assert.equal(after.unlinked, 0);
        });
    });

    test('under a budget, the label copies of what each run brings home are linked in that run: nothing crosses twice, no run overspends', { timeout: TEST_TIMEOUT }, async t => {
        const perRun = 40_000;
        await withEnv(['INBOX', 'All Mail'], `uplink:\n  budget:\n    perRun: ${perRun}`, async (upstream, gateway) => {
            const count = 10;
            for (let i = 0; i < count; i++) await upstream.deliver(ALICE, noisyMessage(i, 6_000 + i * 50));
            await copyInboxTo(upstream, 'All Mail');
            const oneCopy = (await upstream.listMessages(ALICE)).reduce((sum, m) => sum + m.size, 0);

            const reports: RunReport[] = [];
            for (let i = 0; i < 10; i++) {
                const report = await receiveRun(gateway, `labels under budget ${i}`);
                reports.push(report);
                assert.ok(report.bytesTotal <= perRun, `run ${i} spent ${report.bytesTotal} bytes of ${perRun}`);
                if (report.status === 'ok') break;
            }
            const total = reports.reduce((sum, r) => sum + received(r), 0);
            t.diagnostic(`two folders of ${count} messages (${oneCopy} bytes each), perRun ${perRun}: ${reports.length} runs received ${reports.map(received).join(', ')} = ${total} bytes`);
            assert.equal(reports[reports.length - 1].status, 'ok', 'everything came home');
            assert.ok(reports.length >= 2, 'the budget split the work');
            assert.ok(total < oneCopy, `received ${total} bytes in all for ${oneCopy} bytes of mail in two folders`);
            const local = localCopies(gateway);
            assert.deepEqual(Object.values(local.byMailbox).sort(), [count, count], JSON.stringify(local));
            assert.equal(local.distinctFiles, count);
            assert.equal(local.unlinked, 0);
        });
    });
});

describe('budget', () => {
    test('with a backlog of real mail every run spends at least 90 % of perRun on the wire and never more', { timeout: TEST_TIMEOUT }, async t => {
        const perRun = 150_000;
        await withEnv(['INBOX'], `uplink:\n  budget:\n    perRun: ${perRun}`, async (upstream, gateway) => {
            // Ham of 12 to 30 KB: compressible mail whose raw size is a large part of a run's
            // budget, where planning on raw sizes stopped a run at about half of it.
            const mail = corpusGroup('hard-ham-1')
                .filter(raw => raw.length >= 12_000 && raw.length <= 30_000)
                .slice(0, 90);
            for (const raw of mail) await upstream.deliver(ALICE, raw);
            const backlog = mail.reduce((sum, raw) => sum + raw.length, 0);

            const reports: RunReport[] = [];
            for (let i = 0; i < 12; i++) {
                const report = await receiveRun(gateway, `fill ${i}`);
                reports.push(report);
                assert.ok(report.bytesTotal <= perRun, `run ${i} spent ${report.bytesTotal} bytes of ${perRun}`);
                if (report.status === 'ok') break;
                assert.match(report.message ?? '', /budget/, JSON.stringify(report));
            }
            const spent = reports.map(r => r.bytesTotal);
            t.diagnostic(`${mail.length} messages, ${backlog} bytes raw; perRun ${perRun}: runs spent ${spent.join(', ')} (${spent.map(s => `${Math.round((100 * s) / perRun)} %`).join(', ')})`);
            assert.equal(reports[reports.length - 1].status, 'ok', 'the backlog came home');
            assert.ok(reports.length >= 4, 'several runs');
            // Every run that stopped for the budget (all but the last) filled it.
            for (const [i, report] of reports.slice(0, -1).entries()) {
                assert.ok(report.bytesTotal >= perRun * 0.9, `run ${i} spent only ${report.bytesTotal} bytes of ${perRun}`);
            }
            const local = localCopies(gateway);
            assert.equal(local.byMailbox.INBOX, mail.length, 'every message once');
        });
    });

    test('the last message a run can afford compresses worse than the run measured: the run still stays within perRun', { timeout: TEST_TIMEOUT }, async t => {
        const perRun = 100_000;
        await withEnv(['INBOX'], `uplink:\n  budget:\n    perRun: ${perRun}`, async (upstream, gateway) => {
            // Ham (deflating to some 40 %) comes first, smallest first; then one base64 message of
            // random bytes (some 76 %), larger than any ham. At the ham's measured ratio it fits in
            // what the ham left of the budget; at its real cost it does not. Planned on the
            // measured ratio alone, the run fetched it and went over perRun by some 20 KB.
            const ham: Buffer[] = [];
            for (const raw of corpusGroup('easy-ham-1').filter(raw => raw.length >= 3_000 && raw.length <= 12_000)) {
                if (ham.reduce((sum, m) => sum + m.length, 0) + raw.length > 150_000) break;
                ham.push(raw);
            }
            const noise = noisyMessage(900, 45_000);
            for (const raw of [...ham, noise]) await upstream.deliver(ALICE, raw);

            const reports: RunReport[] = [];
            for (let i = 0; i < 6; i++) {
                const report = await receiveRun(gateway, `last ${i}`);
                reports.push(report);
                if (report.status === 'ok') break;
            }
            const spent = reports.map(r => r.bytesTotal);
            t.diagnostic(`${ham.length} ham (${ham.reduce((sum, m) => sum + m.length, 0)} bytes) + 1 noise (${noise.length} bytes); perRun ${perRun}: runs spent ${spent.join(', ')}`);
            for (const [i, bytes] of spent.entries()) assert.ok(bytes <= perRun, `run ${i} spent ${bytes} bytes of ${perRun}`);
            assert.equal(reports[reports.length - 1].status, 'ok', 'the backlog came home');
            assert.equal(localCopies(gateway).byMailbox.INBOX, ham.length + 1, 'every message once');
        });
    });

    test('mail that deflates well mixed with mail that does not: no run goes over perRun', { timeout: TEST_TIMEOUT }, async t => {
        const perRun = 100_000;
        await withEnv(['INBOX'], `uplink:\n  budget:\n    perRun: ${perRun}`, async (upstream, gateway) => {
            // Sorted by size, the planner meets the two kinds in turn: a batch may compress
            // much worse than the ones this run measured before it.
            const ham = corpusGroup('hard-ham-1')
                .filter(raw => raw.length >= 8_000 && raw.length <= 20_000)
                .slice(0, 30);
            const noise = Array.from({ length: 15 }, (_, i) => noisyMessage(100 + i, 6_000 + i * 800));
            for (const raw of [...ham, ...noise]) await upstream.deliver(ALICE, raw);

            const reports: RunReport[] = [];
            for (let i = 0; i < 12; i++) {
                const report = await receiveRun(gateway, `mixed ${i}`);
                reports.push(report);
                if (report.status === 'ok') break;
            }
            const spent = reports.map(r => r.bytesTotal);
            t.diagnostic(`${ham.length} ham + ${noise.length} noise; perRun ${perRun}: runs spent ${spent.join(', ')}`);
            for (const [i, bytes] of spent.entries()) assert.ok(bytes <= perRun, `run ${i} spent ${bytes} bytes of ${perRun}`);
            assert.equal(reports[reports.length - 1].status, 'ok', 'the backlog came home');
            assert.equal(localCopies(gateway).byMailbox.INBOX, ham.length + noise.length, 'every message once');
        });
    });
});
