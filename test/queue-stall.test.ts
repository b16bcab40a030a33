/**
 * A queue that never stalls, against the REAL Postfix on loopback (test/support/upstream.ts):
 * one message's refusal (550 at RCPT, 552/554 at DATA), a 421 or a connection cut mid-DATA
 * affects that message alone and the next one goes out on the same run; every failed attempt,
 * connection failures included, is recorded on its entries; a refused login (535) defers the
 * entries, shows the account as failing in `mailmule status` and leaves ONE notice in the
 * sender's INBOX; `queue retry --all` retries deferred entries only, and a recipient is never
 * bounced twice.
 *
 * Each test starts its own upstream and gateway. Nothing sleeps: runs are awaited, Postfix's
 * deliveries are polled with a deadline (upstream.waitForMessages).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ImapFlow } from 'imapflow';
import { simpleParser } from 'mailparser';
import nodemailer from 'nodemailer';
import { startGateway, type Gateway, type TestUser } from './support/gateway';
import { startLinkProxy } from './support/link-proxy';
import { startUpstream, type Upstream, type UpstreamOptions } from './support/upstream';
import { runMailmule } from './support/daemon-process';
import type { RunReport } from '../src/uplink';
import type { QueueEntry } from '../src/store';

const ALICE = 'alice@upstream.test';
const BOB = 'bob@upstream.test';
const TEST_TIMEOUT = 60_000;

// ------------------------------------------------------------------ environment

function aliceUser(smtp: { port: number }, imapPort: number, password = 'alice-pass'): TestUser {
    return {
        name: 'alice',
        password: 'pw-alice',
        accountsYaml: [
            `      - address: ${ALICE}`,
            `        imap: { host: 127.0.0.1, port: ${imapPort}, tls: none }`,
            `        smtp: { host: 127.0.0.1, port: ${smtp.port}, tls: none }`,
            `        credentials: { password: ${password} }`,
            '        folders: [INBOX]'
        ].join('\n')
    };
}

async function withEnv(
    options: { upstream?: UpstreamOptions; smtpPort?: (upstream: Upstream) => Promise<number> | number; password?: string },
    fn: (env: { upstream: Upstream; gateway: Gateway }) => Promise<void>
): Promise<void> {
    const upstream = await startUpstream(options.upstream ?? {});
    let gateway: Gateway | undefined;
    try {
        const port = options.smtpPort ? await options.smtpPort(upstream) : upstream.submissionPort;
        gateway = await startGateway({ users: [aliceUser({ port }, upstream.imapPort, options.password)] });
        await fn({ upstream, gateway });
    } finally {
        await gateway?.stop().catch(() => undefined);
        await upstream.stop();
    }
}

/** Submits each message (one recipient each) as alice over the gateway's SMTP; returns the entries, in order. */
async function submitAll(gateway: Gateway, messages: { to: string; subject: string; bytes?: number }[]): Promise<QueueEntry[]> {
    const transport = nodemailer.createTransport({
        host: '127.0.0.1',
        port: gateway.smtpPort,
        secure: false,
        auth: { user: 'alice', pass: 'pw-alice' },
        tls: { rejectUnauthorized: false }
    });
    try {
        const entries: QueueEntry[] = [];
        for (const message of messages) {
            const text = message.bytes ? crypto.randomBytes(message.bytes).toString('base64').replace(/.{76}/g, '$&\r\n') : `Body of ${message.subject}.`;
            const info = await transport.sendMail({ from: ALICE, to: message.to, subject: message.subject, text });
            const match = /queued as (\d+)/.exec(info.response);
            assert.ok(match, info.response);
            entries.push(gateway.daemon.store.queue.get(Number(match[1]))!);
        }
        return entries;
    } finally {
        transport.close();
    }
}

function run(gateway: Gateway, trigger: string): Promise<RunReport> {
    return gateway.daemon.uplink!.run({ trigger, sendOnly: true });
}

function entry(gateway: Gateway, id: number): QueueEntry {
    const found = gateway.daemon.store.queue.get(id);
    assert.ok(found, `queue entry ${id}`);
    return found;
}

/** Headers of every message in alice's local INBOX. */
async function inboxHeaders(gateway: Gateway): Promise<string[]> {
    const client = new ImapFlow({ host: '127.0.0.1', port: gateway.imapPort, secure: false, auth: { user: 'alice', pass: 'pw-alice' }, logger: false, tls: { rejectUnauthorized: false } });
    client.on('error', () => undefined);
    await client.connect();
    try {
        const lock = await client.getMailboxLock('INBOX');
        try {
            if (!client.mailbox || !client.mailbox.exists) return [];
            const out: string[] = [];
            for await (const message of client.fetch('1:*', { source: true })) {
                const text = (message.source ?? Buffer.alloc(0)).toString('utf8');
                out.push(text);
            }
            return out;
        } finally {
            lock.release();
        }
    } finally {
        await client.logout().catch(() => client.close());
    }
}

const isBounce = (message: string) => /multipart\/report/i.test(message);

/** Copies Postfix delivered for `recipients` (catch-all for other domains, bob's INBOX for bob). */
async function delivered(upstream: Upstream, recipients: string[]): Promise<void> {
    const external = recipients.filter(r => !r.endsWith('@upstream.test'));
    if (external.length) {
        await upstream.waitForMessages(upstream.catchall.address, 'INBOX', external.length);
        assert.deepEqual((await upstream.sentCopies()).map(c => c.envelopeTo).sort(), external.sort());
    }
    if (recipients.includes(BOB)) await upstream.waitForMessages(BOB, 'INBOX', 1);
}

// ------------------------------------------------------------------ one message's refusal is its own

test('a 550 at RCPT fails and bounces that message alone; the next two go out on the same run', { timeout: TEST_TIMEOUT }, async () => {
    await withEnv({}, async ({ upstream, gateway }) => {
        const [refused, second, third] = await submitAll(gateway, [
            { to: 'nosuchuser@upstream.test', subject: 'to nobody' },
            { to: BOB, subject: 'second' },
            { to: 'carol@example.org', subject: 'third' }
        ]);
        const report = await run(gateway, '550 at rcpt');
        assert.equal(report.accounts[0].messagesSent, 2, JSON.stringify(report));
        assert.equal(entry(gateway, refused.id).state, 'failed');
        assert.match(entry(gateway, refused.id).recipients[0].lastError ?? '', /^550 5\.1\.1/);
        assert.equal(entry(gateway, second.id).state, 'sent', JSON.stringify(entry(gateway, second.id)));
        assert.equal(entry(gateway, third.id).state, 'sent', JSON.stringify(entry(gateway, third.id)));
        await delivered(upstream, [BOB, 'carol@example.org']);
        assert.doesNotMatch(upstream.logs().postfix, /lost connection after DATA/);
        assert.equal((await inboxHeaders(gateway)).filter(isBounce).length, 1, 'one bounce, for the refused message');
    });
});

test('a 552 and a 554 at DATA fail and bounce their messages alone (with their status); the third goes out', { timeout: TEST_TIMEOUT }, async () => {
    const data = { 'full@example.org': '552 5.2.2 Mailbox full', 'spam@example.org': '554 5.7.1 Message refused by policy' };
    await withEnv({ upstream: { recipientReplies: { data } } }, async ({ upstream, gateway }) => {
        const [full, spam, ok] = await submitAll(gateway, [
            { to: 'full@example.org', subject: 'too much' },
            { to: 'spam@example.org', subject: 'not wanted' },
            { to: 'carol@example.org', subject: 'fine' }
        ]);
        const report = await run(gateway, '55x at data');
        assert.equal(report.accounts[0].messagesSent, 1, JSON.stringify(report));
        assert.equal(entry(gateway, full.id).state, 'failed');
        assert.match(entry(gateway, full.id).recipients[0].lastError ?? '', /^552 5\.2\.2/);
        assert.equal(entry(gateway, spam.id).state, 'failed');
        assert.match(entry(gateway, spam.id).recipients[0].lastError ?? '', /^554 5\.7\.1/);
        assert.equal(entry(gateway, ok.id).state, 'sent', JSON.stringify(entry(gateway, ok.id)));
        await delivered(upstream, ['carol@example.org']);
        const bounces = (await inboxHeaders(gateway)).filter(isBounce);
        assert.equal(bounces.length, 2);
        assert.ok(bounces.some(b => /Status: 5\.2\.2/.test(b) && /full@example\.org/.test(b)));
        assert.ok(bounces.some(b => /Status: 5\.7\.1/.test(b) && /spam@example\.org/.test(b)));
    });
});

test('a 421 (the provider closes the session) defers that message alone; a new connection carries the next ones', { timeout: TEST_TIMEOUT }, async () => {
    const replies = { rcpt: { 'busy@example.org': '421 4.7.0 Try again later, closing connection' }, data: { 'busydata@example.org': '421 4.3.2 Service shutting down' } };
    await withEnv({ upstream: { recipientReplies: replies } }, async ({ upstream, gateway }) => {
        const [atRcpt, second, atData, fourth] = await submitAll(gateway, [
            { to: 'busy@example.org', subject: '421 at rcpt' },
            { to: 'carol@example.org', subject: 'after the first 421' },
            { to: 'busydata@example.org', subject: '421 at data' },
            { to: 'dave@example.org', subject: 'after the second 421' }
        ]);
        const before = Date.now();
        const report = await run(gateway, '421');
        assert.equal(report.accounts[0].messagesSent, 2, JSON.stringify(report));
        for (const deferred of [atRcpt, atData]) {
            const after = entry(gateway, deferred.id);
            assert.equal(after.state, 'deferred', JSON.stringify(after));
            assert.equal(after.attempts, 1);
            assert.match(after.lastError ?? '', /421|closed/);
            assert.ok(after.nextAttemptAt && after.nextAttemptAt > before);
        }
        assert.equal(entry(gateway, second.id).state, 'sent');
        assert.equal(entry(gateway, fourth.id).state, 'sent');
        await delivered(upstream, ['carol@example.org', 'dave@example.org']);
        assert.equal((await inboxHeaders(gateway)).filter(isBounce).length, 0, 'no bounce for a 421');
    });
});

test('a connection cut in the middle of DATA defers that message alone; the next two go out over a new connection', { timeout: TEST_TIMEOUT }, async () => {
    let proxy: Awaited<ReturnType<typeof startLinkProxy>> | undefined;
    try {
        await withEnv(
            {
                smtpPort: async upstream => {
                    // The first connection dies 6 KB in: past the greeting, AUTH and envelope, inside the first message's 40 KB.
                    proxy = await startLinkProxy({ targetPort: upstream.submissionPort, cutAfterBytes: index => (index === 0 ? 6000 : null), cutMode: 'reset' });
                    return proxy.port;
                }
            },
            async ({ upstream, gateway }) => {
                const [cut, second, third] = await submitAll(gateway, [
                    { to: 'carol@example.org', subject: 'cut', bytes: 30_000 },
                    { to: 'dave@example.org', subject: 'second' },
                    { to: 'erin@example.org', subject: 'third' }
                ]);
                const report = await run(gateway, 'cut');
                assert.equal(report.accounts[0].messagesSent, 2, JSON.stringify(report));
                const after = entry(gateway, cut.id);
                assert.equal(after.state, 'deferred', JSON.stringify(after));
                assert.equal(after.attempts, 1);
                assert.ok(after.lastError, 'the entry says why');
                assert.equal(entry(gateway, second.id).state, 'sent');
                assert.equal(entry(gateway, third.id).state, 'sent');
                assert.equal(proxy!.stats().connections, 2);
                await delivered(upstream, ['dave@example.org', 'erin@example.org']);
            }
        );
    } finally {
        await proxy?.close();
    }
});

// ------------------------------------------------------------------ every attempt is recorded

test('a provider that cannot be reached: every entry records the attempt, the reason in words and the next attempt', { timeout: TEST_TIMEOUT }, async () => {
    // A port nothing listens on (the upstream's own LMTP port once Postfix is pointed elsewhere would do too).
    await withEnv({ smtpPort: () => 1 }, async ({ gateway }) => {
        const entries = await submitAll(gateway, [
            { to: 'carol@example.org', subject: 'one' },
            { to: 'dave@example.org', subject: 'two' }
        ]);
        const before = Date.now();
        await run(gateway, 'unreachable');
        for (const queued of entries) {
            const after = entry(gateway, queued.id);
            assert.equal(after.state, 'deferred');
            assert.equal(after.attempts, 1);
            assert.match(after.lastError ?? '', /^the provider \(127\.0\.0\.1:1\) could not be reached: .*ECONNREFUSED/);
            assert.ok(after.nextAttemptAt && after.nextAttemptAt > before);
        }
        const shown = await runMailmule(['queue', 'show', String(entries[0].id), '-c', gateway.configFile]);
        assert.match(shown.stdout, /could not be reached/, shown.stdout + shown.stderr);
    });
});

test('a refused login (535): entries deferred, the account shown failing, ONE notice in the INBOX however many messages and runs', { timeout: TEST_TIMEOUT }, async () => {
    await withEnv({ password: 'not-the-password' }, async ({ upstream, gateway }) => {
        const entries = await submitAll(gateway, [
            { to: 'carol@example.org', subject: 'one' },
            { to: 'dave@example.org', subject: 'two' },
            { to: 'erin@example.org', subject: 'three' }
        ]);
        await run(gateway, 'bad password 1');
        for (const queued of entries) {
            const after = entry(gateway, queued.id);
            assert.equal(after.state, 'deferred');
            assert.equal(after.attempts, 1);
            assert.match(after.lastError ?? '', /refused the account's login.*535/);
        }
        const status = await runMailmule(['status', '--json', '-c', gateway.configFile]);
        assert.equal(status.code, 0, status.stderr);
        const failing = JSON.parse(status.stdout).failingAccounts;
        assert.deepEqual(
            failing.map((p: { account: string }) => p.account),
            [ALICE]
        );
        assert.match(failing[0].error, /535/);
        const text = await runMailmule(['status', '-c', gateway.configFile]);
        assert.match(text.stdout, /alice@upstream\.test: FAILING since/);

        // Another run while the problem lasts: attempts counted again, no second notice.
        assert.equal(gateway.daemon.store.queue.retry(null), 3);
        await run(gateway, 'bad password 2');
        assert.deepEqual(
            entries.map(queued => entry(gateway, queued.id).attempts),
            [2, 2, 2]
        );
        const inbox = await inboxHeaders(gateway);
        const notices = inbox.filter(message => /provider refused the login/.test(message));
        assert.equal(notices.length, 1, 'one notice, not one per message or per run');
        const notice = await simpleParser(notices[0]);
        assert.match(notice.text ?? '', /refused to let the gateway log in to your account alice@upstream\.test/);
        assert.match(notice.text ?? '', /3 messages you sent could not go out yet/);
        assert.match(notice.text ?? '', /The provider said: .*535/);
        assert.equal(inbox.filter(isBounce).length, 0, 'nothing bounced: the mail waits');

        // The provider accepts the password again (changed on its side; Dovecot re-reads its passwd-file):
        // the waiting mail goes out and the account is no longer failing.
        const usersFile = path.join(upstream.dir, 'dovecot', 'users');
        fs.writeFileSync(usersFile, fs.readFileSync(usersFile, 'utf8').replace(`${ALICE}:{PLAIN}alice-pass:`, `${ALICE}:{PLAIN}not-the-password:`));
        // Dovecot checks its passwd-file for changes at most once a second: ask it (each refusal takes
        // its 500 ms failure tick, so this is not a busy loop) until the new password is in use.
        const deadline = Date.now() + 10_000;
        for (;;) {
            const accepted = await upstream.doveadm(['auth', 'test', ALICE, 'not-the-password']).then(
                () => true,
                () => false
            );
            if (accepted) break;
            assert.ok(Date.now() < deadline, 'Dovecot did not take the new password within 10 s');
        }
        assert.equal(gateway.daemon.store.queue.retry(null), 3);
        const fixed = await run(gateway, 'password fixed');
        assert.equal(fixed.accounts[0].messagesSent, 3, JSON.stringify(fixed));
        assert.deepEqual(gateway.daemon.store.accountProblems.list(), []);
        await upstream.waitForMessages(upstream.catchall.address, 'INBOX', 3);
    });
});

// ------------------------------------------------------------------ retry and bounce once

test('queue retry --all retries deferred entries only; a failed one retried by its id fails again without a second bounce', { timeout: TEST_TIMEOUT }, async () => {
    const replies = { rcpt: { 'later@example.org': '450 4.2.0 Try later' } };
    await withEnv({ upstream: { recipientReplies: replies } }, async ({ gateway }) => {
        const [refused, deferred] = await submitAll(gateway, [
            { to: 'nosuchuser@upstream.test', subject: 'to nobody' },
            { to: 'later@example.org', subject: 'later' }
        ]);
        await run(gateway, 'first');
        assert.equal(entry(gateway, refused.id).state, 'failed');
        assert.equal(entry(gateway, deferred.id).state, 'deferred');
        assert.equal((await inboxHeaders(gateway)).filter(isBounce).length, 1);

        const all = await runMailmule(['queue', 'retry', '--all', '-c', gateway.configFile]);
        assert.equal(all.code, 0, all.stderr);
        assert.match(all.stdout, /^1 message will be tried/m);
        assert.equal(entry(gateway, refused.id).state, 'failed', 'a failed entry is not retried by --all');
        assert.equal(entry(gateway, deferred.id).state, 'queued');

        const byId = await runMailmule(['queue', 'retry', String(refused.id), '-c', gateway.configFile]);
        assert.equal(byId.code, 0, byId.stderr);
        assert.equal(entry(gateway, refused.id).state, 'queued');
        await run(gateway, 'second');
        const again = entry(gateway, refused.id);
        assert.equal(again.state, 'failed');
        assert.equal(again.attempts, 2);
        assert.equal((await inboxHeaders(gateway)).filter(isBounce).length, 1, 'never bounced twice');
    });
});
