/**
 * LAN submission: real clients (nodemailer, swaks, imapflow) and hand-written SMTP dialogues
 * against an in-process gateway.
 *
 * Over 500 lines: independent tests, one per submission behaviour, sharing one gateway; a new topic
 * belongs in a file of its own (as smtp-crash and smtp-submission-rules).
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import { startGateway, upstreamAccount, type Gateway, type TestUser } from './support/gateway';
import { RawSmtpConnection, authPlain, type SmtpReply } from './support/raw-smtp';
import { withTimeout } from './support/wait';
import { connectionLimits, orphanFiles, setConnectionLimits, tmpFiles as storeTmpFiles } from './support/store';
import { runMailmule } from './support/daemon-process';
import { runToCompletion, type ProcessResult } from './support/run-process';

// ------------------------------------------------------------------ fixtures

const ALICE_PW = 'alice-secret-pw';
const BOB_PW = 'bob-secret-pw';
const USERS: TestUser[] = [
    { name: 'alice', password: ALICE_PW, accountsYaml: upstreamAccount('alice@upstream.test') },
    { name: 'bob', password: BOB_PW, accountsYaml: upstreamAccount('bob@upstream2.test') }
];
const WAIT_MS = 10_000;

// ------------------------------------------------------------------ small helpers

/** Waits (bounded) until `predicate` holds; for state another process or socket changes. */
async function waitFor(predicate: () => boolean, what: string, timeoutMs = WAIT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise(resolve => setTimeout(resolve, 10));
    }
}

function swaks(args: string[]): Promise<ProcessResult> {
    return runToCompletion('swaks', ['--server', '127.0.0.1', '--ehlo', 'laptop.lan', '--timeout', '20', ...args], { timeoutMs: 30_000 });
}

function queuedId(text: string): number {
    const match = /queued as (\d+)/.exec(text);
    assert.ok(match, `a "queued as" reply in:\n${text}`);
    return Number(match[1]);
}

function transport(gw: Gateway, options: { user?: string; pass?: string; port?: number; secure?: boolean; localAddress?: string } = {}) {
    return nodemailer.createTransport({
        host: '127.0.0.1',
        port: options.port ?? gw.smtpPort,
        secure: options.secure ?? false,
        name: 'laptop.lan',
        localAddress: options.localAddress,
        auth: { user: options.user ?? 'alice', pass: options.pass ?? ALICE_PW },
        tls: { rejectUnauthorized: false },
        connectionTimeout: WAIT_MS,
        greetingTimeout: WAIT_MS,
        socketTimeout: 30_000
    });
}

function imapClient(gw: Gateway, user = 'alice', pass = ALICE_PW): ImapFlow {
    return new ImapFlow({
        host: '127.0.0.1',
        port: gw.imapPort,
        secure: false,
        auth: { user, pass },
        logger: false,
        tls: { rejectUnauthorized: false },
        connectionTimeout: WAIT_MS,
        greetingTimeout: WAIT_MS
    });
}

interface MailboxMessage {
    uid: number;
    messageId: string;
    subject: string;
    source: Buffer;
}

/** Every message of a mailbox over IMAP, with its source. */
async function mailboxMessages(gw: Gateway, mailbox: string, user = 'alice', pass = ALICE_PW): Promise<MailboxMessage[]> {
    const client = imapClient(gw, user, pass);
    await client.connect();
    try {
        const opened = await client.mailboxOpen(mailbox, { readOnly: true });
        if (!opened.exists) return [];
        const out: MailboxMessage[] = [];
        for await (const message of client.fetch('1:*', { uid: true, envelope: true, source: true })) {
            out.push({
                uid: message.uid,
                messageId: String(message.envelope?.messageId ?? '').toLowerCase(),
                subject: String(message.envelope?.subject ?? ''),
                source: message.source as Buffer
            });
        }
        return out;
    } finally {
        await client.logout();
    }
}

async function copiesIn(gw: Gateway, mailbox: string, messageId: string, user = 'alice', pass = ALICE_PW): Promise<MailboxMessage[]> {
    return (await mailboxMessages(gw, mailbox, user, pass)).filter(m => m.messageId === messageId.toLowerCase());
}

/** Message files on disk that no `blobs` row accounts for. */
function orphanBlobFiles(gw: Gateway): string[] {
    return orphanFiles(gw.daemon.store);
}

function tmpFiles(gw: Gateway): string[] {
    return storeTmpFiles(gw.daemon.store);
}

function queueSize(gw: Gateway): number {
    return gw.daemon.store.queue.list().length;
}

function headerBlock(raw: Buffer): string {
    const end = raw.indexOf('\r\n\r\n');
    return raw.subarray(0, end < 0 ? raw.length : end).toString('binary');
}

/** Every LF is preceded by CR and every CR followed by LF. */
function onlyCrlf(raw: Buffer): boolean {
    for (let i = 0; i < raw.length; i++) {
        if (raw[i] === 10 && raw[i - 1] !== 13) return false;
        if (raw[i] === 13 && raw[i + 1] !== 10) return false;
    }
    return true;
}

// ------------------------------------------------------------------ a hand-driven SMTP client

type Reply = SmtpReply;

/** Connects, says EHLO and logs in with AUTH PLAIN. */
async function loggedIn(port: number, options: { user?: string; pass?: string; localAddress?: string; tls?: boolean } = {}): Promise<RawSmtpConnection> {
    const { client, greeting } = await RawSmtpConnection.connect(port, options);
    assert.equal(greeting.code, 220, greeting.text);
    const ehlo = await client.cmd('EHLO laptop.lan');
    assert.equal(ehlo.code, 250, ehlo.text);
    const auth = await client.cmd(authPlain(options.user ?? 'alice', options.pass ?? ALICE_PW));
    assert.equal(auth.code, 235, auth.text);
    return client;
}

/** MAIL FROM, RCPT TO for each, DATA; returns the reply to the end of data. */
async function submitRaw(client: RawSmtpConnection, from: string, to: string[], data: Buffer, timeoutMs = WAIT_MS): Promise<Reply> {
    const mail = await client.cmd(`MAIL FROM:<${from}>`);
    assert.equal(mail.code, 250, mail.text);
    for (const rcpt of to) {
        const reply = await client.cmd(`RCPT TO:<${rcpt}>`);
        assert.equal(reply.code, 250, reply.text);
    }
    const go = await client.cmd('DATA');
    assert.equal(go.code, 354, go.text);
    await client.write(Buffer.concat([data, Buffer.from('\r\n.\r\n')]));
    return client.reply(timeoutMs);
}

function rawMessage(lines: string[], body = 'Hello from the village.'): Buffer {
    return Buffer.from([...lines, '', body].join('\r\n'), 'utf8');
}

// ------------------------------------------------------------------ the main gateway

describe('submission (plaintext AUTH allowed on the STARTTLS port)', () => {
    let gw: Gateway;

    before(async () => {
        gw = await startGateway({ users: USERS });
    });
    after(async () => {
        await gw?.stop();
    });

    /** A normal submission still works and the database is sound. */
    async function assertStillServing(label: string): Promise<void> {
        const info = await transport(gw).sendMail({
            from: 'alice@upstream.test',
            to: 'carol@example.net',
            subject: `still serving after ${label}`,
            text: 'ok'
        });
        assert.match(info.response, /^250 /, `submission after ${label}`);
        assert.equal(gw.daemon.store.integrityCheck(), 'ok');
    }

    test('nodemailer (STARTTLS, AUTH): queued with the exact envelope and filed once in Sent', async () => {
        const messageId = '<nodemailer-1@laptop.lan>';
        const info = await transport(gw).sendMail({
            from: 'Alice <alice@upstream.test>',
            to: 'Carol <carol@example.net>',
            cc: 'dave@example.org',
            bcc: 'erin@example.com',
            subject: 'Seed prices',
            text: 'Maize is up again.',
            messageId
        });
        assert.deepEqual(info.accepted, ['carol@example.net', 'dave@example.org', 'erin@example.com']);
        const id = queuedId(info.response);

        const entry = gw.daemon.store.queue.get(id);
        assert.ok(entry, 'queue entry exists');
        assert.equal(entry.user, 'alice');
        assert.equal(entry.mailFrom, 'alice@upstream.test');
        assert.equal(entry.account, 'alice@upstream.test');
        assert.equal(entry.state, 'queued');
        assert.equal(entry.messageId, messageId);
        assert.deepEqual(
            entry.recipients.map(r => [r.address, r.state]),
            [
                ['carol@example.net', 'pending'],
                ['dave@example.org', 'pending'],
                ['erin@example.com', 'pending']
            ]
        );
        assert.equal(gw.daemon.store.messages.readRaw(entry.blobHash).length, entry.size);

        // The same, through the CLI against the live data directory.
        const cli = await runMailmule(['queue', '--json', '-c', gw.configFile]);
        assert.equal(cli.code, 0, cli.stderr);
        const listed = (JSON.parse(cli.stdout) as { id: number; mailFrom: string; recipients: { address: string }[] }[]).find(e => e.id === id);
        assert.ok(listed, 'the CLI lists the entry');
        assert.equal(listed.mailFrom, 'alice@upstream.test');
        assert.deepEqual(
            listed.recipients.map(r => r.address),
            ['carol@example.net', 'dave@example.org', 'erin@example.com']
        );

        const sent = await copiesIn(gw, 'Sent', messageId);
        assert.equal(sent.length, 1, 'exactly one Sent copy');
        assert.match(sent[0].source.toString(), /Maize is up again\./);
    });

    test('the queue subject keeps its case', async () => {
        const info = await transport(gw).sendMail({ from: 'alice@upstream.test', to: 'carol@example.net', subject: 'Village Meeting', text: 'x' });
        assert.equal(gw.daemon.store.queue.get(queuedId(info.response))?.subject, 'Village Meeting');
    });

    for (const variant of [
        { name: 'swaks, AUTH PLAIN without TLS', tls: [] as string[], port: (g: Gateway) => g.smtpPort, protocol: /with ESMTPA / },
        { name: 'swaks -tls (STARTTLS, self-signed certificate)', tls: ['-tls'], port: (g: Gateway) => g.smtpPort, protocol: /with ESMTPSA / },
        { name: 'swaks --tls-on-connect (implicit TLS port)', tls: ['--tls-on-connect'], port: (g: Gateway) => g.smtpsPort, protocol: /with ESMTPSA / }
    ]) {
        test(`${variant.name}: queued with the exact envelope and filed once in Sent`, async () => {
            const subject = `swaks ${variant.tls.join(' ') || 'plain'}`;
            const result = await swaks([
                '--port',
                String(variant.port(gw)),
                ...variant.tls,
                '--auth',
                'PLAIN',
                '--auth-user',
                'alice',
                '--auth-password',
                ALICE_PW,
                '--from',
                'alice@upstream.test',
                // grace is not in the To header: a blind recipient, but in the envelope.
                '--to',
                'frank@example.net,grace@example.org',
                '--header',
                'To: frank@example.net',
                '--header',
                `Subject: ${subject}`,
                '--body',
                'Sent with swaks.'
            ]);
            assert.equal(result.code, 0, result.stdout + result.stderr);
            const id = queuedId(result.stdout);
            const entry = gw.daemon.store.queue.get(id);
            assert.ok(entry);
            assert.equal(entry.mailFrom, 'alice@upstream.test');
            assert.equal(entry.account, 'alice@upstream.test');
            assert.deepEqual(
                entry.recipients.map(r => r.address),
                ['frank@example.net', 'grace@example.org']
            );
            assert.ok(entry.messageId, 'swaks sets a Message-Id');

            const relayed = gw.daemon.store.messages.readRaw(entry.blobHash);
            assert.match(headerBlock(relayed), new RegExp(`^Subject: ${subject}$`, 'm'));
            assert.match(headerBlock(relayed), /^To: frank@example\.net$/m);
            assert.match(headerBlock(relayed), variant.protocol, 'Received names the transmission type');

            const sent = await copiesIn(gw, 'Sent', entry.messageId);
            assert.equal(sent.length, 1, 'exactly one Sent copy');
            assert.equal(sent[0].subject, subject);
        });
    }

    test('an APPEND to Sent before the submission leaves one copy', async () => {
        const messageId = '<append-before@laptop.lan>';
        const raw = rawMessage(['From: alice@upstream.test', 'To: henry@example.net', 'Subject: appended first', `Message-ID: ${messageId}`, 'Date: Mon, 23 Nov 2026 10:00:00 +0000']);
        const imap = imapClient(gw);
        await imap.connect();
        try {
            const appended = await imap.append('Sent', raw, ['\\Seen']);
            assert.ok(appended && appended.uid);
        } finally {
            await imap.logout();
        }
        assert.equal((await copiesIn(gw, 'Sent', messageId)).length, 1);

        const info = await transport(gw).sendMail({ envelope: { from: 'alice@upstream.test', to: ['henry@example.net'] }, raw });
        const entry = gw.daemon.store.queue.get(queuedId(info.response));
        assert.ok(entry, 'still relayed');
        assert.equal(entry.messageId, messageId);
        assert.equal((await copiesIn(gw, 'Sent', messageId)).length, 1, 'still one Sent copy');
        assert.deepEqual(orphanBlobFiles(gw), []);
    });

    test('an APPEND to Sent after the submission leaves one copy', async () => {
        const messageId = '<append-after@laptop.lan>';
        const raw = rawMessage(['From: alice@upstream.test', 'To: ida@example.net', 'Subject: appended after', `Message-ID: ${messageId}`, 'Date: Mon, 23 Nov 2026 10:00:00 +0000']);
        const info = await transport(gw).sendMail({ envelope: { from: 'alice@upstream.test', to: ['ida@example.net'] }, raw });
        assert.ok(gw.daemon.store.queue.get(queuedId(info.response)));
        const before = await copiesIn(gw, 'Sent', messageId);
        assert.equal(before.length, 1);

        const imap = imapClient(gw);
        await imap.connect();
        try {
            const appended = await imap.append('Sent', raw, ['\\Seen']);
            assert.ok(appended, 'APPEND answered OK');
        } finally {
            await imap.logout();
        }
        const after = await copiesIn(gw, 'Sent', messageId);
        assert.equal(after.length, 1, 'still one Sent copy');
        assert.equal(after[0].uid, before[0].uid, 'the submitted copy is the one kept');
        assert.deepEqual(orphanBlobFiles(gw), [], 'the APPENDed duplicate left no file behind');
    });

    test('MAIL FROM without AUTH gets 530, on both listeners', async () => {
        for (const [port, secure] of [
            [gw.smtpPort, false],
            [gw.smtpsPort, true]
        ] as const) {
            const { client } = await RawSmtpConnection.connect(port, { tls: secure });
            try {
                assert.equal((await client.cmd('EHLO laptop.lan')).code, 250);
                const reply = await client.cmd('MAIL FROM:<alice@upstream.test>');
                assert.equal(reply.code, 530, `port ${port}: ${reply.text}`);
            } finally {
                await client.quit();
            }
        }
    });

    test('AUTH LOGIN works too; a wrong password gets 535', async () => {
        const { client } = await RawSmtpConnection.connect(gw.smtpPort);
        try {
            assert.equal((await client.cmd('EHLO laptop.lan')).code, 250);
            assert.equal((await client.cmd('AUTH LOGIN')).code, 334);
            assert.equal((await client.cmd(Buffer.from('alice@mailmule.lan').toString('base64'))).code, 334);
            assert.equal((await client.cmd(Buffer.from('not-it').toString('base64'))).code, 535);
            assert.equal((await client.cmd('AUTH LOGIN')).code, 334);
            assert.equal((await client.cmd(Buffer.from('alice@mailmule.lan').toString('base64'))).code, 334);
            const ok = await client.cmd(Buffer.from(ALICE_PW).toString('base64'));
            assert.equal(ok.code, 235, ok.text);
            assert.equal((await client.cmd('MAIL FROM:<alice@mailmule.lan>')).code, 250);
        } finally {
            await client.quit();
        }
    });

    test('a MAIL FROM the user does not own gets 550 naming the allowed addresses', async () => {
        const client = await loggedIn(gw.smtpPort);
        try {
            const reply = await client.cmd('MAIL FROM:<bob@mailmule.lan>');
            assert.equal(reply.code, 550, reply.text);
            assert.match(reply.text, /alice@mailmule\.lan/);
            assert.match(reply.text, /alice@upstream\.test/);
        } finally {
            await client.quit();
        }
    });

    test('mail beyond the Pi from a local address gets 550 naming the upstream addresses', async () => {
        const client = await loggedIn(gw.smtpPort);
        try {
            assert.equal((await client.cmd('MAIL FROM:<alice@mailmule.lan>')).code, 250);
            const reply = await client.cmd('RCPT TO:<carol@example.net>');
            assert.equal(reply.code, 550, reply.text);
            assert.match(reply.text, /alice@upstream\.test/);
        } finally {
            await client.quit();
        }
    });

    test('a header From the user does not own gets 550 and nothing is stored', async () => {
        const queued = queueSize(gw);
        const sentBefore = (await mailboxMessages(gw, 'Sent')).length;
        const client = await loggedIn(gw.smtpPort);
        try {
            const reply = await submitRaw(client, 'alice@upstream.test', ['carol@example.net'], rawMessage(['From: Bank <ceo@bank.example>', 'To: carol@example.net', 'Subject: forged']));
            assert.equal(reply.code, 550, reply.text);
            assert.match(reply.text, /alice@upstream\.test/);
        } finally {
            await client.quit();
        }
        assert.equal(queueSize(gw), queued);
        assert.equal((await mailboxMessages(gw, 'Sent')).length, sentBefore);
        assert.deepEqual(orphanBlobFiles(gw), []);
    });

    test('a second From field the user does not own gets 550', async () => {
        const queued = queueSize(gw);
        const client = await loggedIn(gw.smtpPort);
        try {
            const reply = await submitRaw(
                client,
                'alice@upstream.test',
                ['carol@example.net'],
                rawMessage(['From: alice@upstream.test', 'From: Bank <ceo@bank.example>', 'To: carol@example.net', 'Subject: two froms'])
            );
            assert.equal(reply.code, 550, reply.text);
        } finally {
            await client.quit();
        }
        assert.equal(queueSize(gw), queued);
    });

    test('a local recipient gets the message at once (and an IDLE session hears of it); no queue entry', async () => {
        const watcher = imapClient(gw, 'bob', BOB_PW);
        await watcher.connect();
        try {
            const opened = await watcher.mailboxOpen('INBOX');
            const startCount = opened.exists;
            const heard = new Promise<{ count: number }>(resolve => watcher.on('exists', (data: { count: number }) => resolve(data)));
            void watcher.idle().catch(() => {});
            await waitFor(() => watcher.idling, 'IMAP IDLE to start');

            const queued = queueSize(gw);
            const messageId = '<local-1@laptop.lan>';
            const info = await transport(gw).sendMail({ from: 'alice@mailmule.lan', to: 'bob@mailmule.lan', subject: 'Tea at four?', text: 'At the well.', messageId });
            assert.match(info.response, /^250 .*delivered locally/);
            assert.equal(queueSize(gw), queued, 'a local-domain-only message is not queued');

            const exists = await withTimeout(heard, WAIT_MS, 'EXISTS over IDLE');
            assert.equal(exists.count, startCount + 1);

            const inbox = await copiesIn(gw, 'INBOX', messageId, 'bob', BOB_PW);
            assert.equal(inbox.length, 1, "in bob's INBOX right after the 250");
            assert.equal(inbox[0].subject, 'Tea at four?');
            assert.equal((await copiesIn(gw, 'Sent', messageId)).length, 1, "and in alice's Sent");
        } finally {
            await watcher.logout();
        }
    });

    test("mail to a local user's upstream address is delivered to their INBOX at once and also relayed", async () => {
        const messageId = '<local-upstream-1@laptop.lan>';
        const info = await transport(gw).sendMail({
            from: 'alice@upstream.test',
            to: ['bob@upstream2.test', 'carol@example.net'],
            subject: 'To your upstream address',
            text: 'x',
            messageId
        });
        const entry = gw.daemon.store.queue.get(queuedId(info.response));
        assert.ok(entry);
        // Issue 3: the provider gets it too (bob's phone reads it there); the uplink links the
        // upstream copy to the local one by Message-ID instead of downloading it again.
        assert.deepEqual(
            entry.recipients.map(r => r.address),
            ['bob@upstream2.test', 'carol@example.net']
        );
        const inbox = await copiesIn(gw, 'INBOX', messageId, 'bob', BOB_PW);
        assert.equal(inbox.length, 1);
    });

    test("a local user's upstream address is a local recipient for a local sender too", async () => {
        const messageId = '<local-upstream-2@laptop.lan>';
        const queued = queueSize(gw);
        const info = await transport(gw).sendMail({ from: 'alice@mailmule.lan', to: 'bob@upstream2.test', subject: 'From my village address', text: 'x', messageId });
        assert.match(info.response, /^250 .*delivered locally/);
        assert.equal(queueSize(gw), queued);
        assert.equal((await copiesIn(gw, 'INBOX', messageId, 'bob', BOB_PW)).length, 1);
    });

    test('an unknown local-domain recipient gets 550 at RCPT', async () => {
        const client = await loggedIn(gw.smtpPort);
        try {
            assert.equal((await client.cmd('MAIL FROM:<alice@mailmule.lan>')).code, 250);
            const reply = await client.cmd('RCPT TO:<nobody@mailmule.lan>');
            assert.equal(reply.code, 550, reply.text);
            assert.match(reply.text, /nobody@mailmule\.lan/);
            assert.equal((await client.cmd('RCPT TO:<bob@mailmule.lan>')).code, 250, 'a known one still goes');
        } finally {
            await client.quit();
        }
    });

    test('Bcc: in the queued envelope, not in the relayed or local copies, kept in Sent', async () => {
        const messageId = '<bcc-1@laptop.lan>';
        const mailer = transport(gw);
        // Like a client that keeps Bcc in the submitted header (nodemailer strips it by default).
        mailer.use('stream', (mail, done) => {
            (mail.message as unknown as { keepBcc: boolean }).keepBcc = true;
            done();
        });
        const info = await mailer.sendMail({
            from: 'alice@upstream.test',
            to: 'carol@example.net',
            cc: 'bob@mailmule.lan',
            bcc: ['secret-one@example.org', 'secret-two@example.com'],
            subject: 'Harvest plans',
            text: 'Between us.',
            messageId
        });
        const entry = gw.daemon.store.queue.get(queuedId(info.response));
        assert.ok(entry);
        assert.deepEqual(
            entry.recipients.map(r => r.address),
            ['carol@example.net', 'secret-one@example.org', 'secret-two@example.com']
        );

        const relayed = gw.daemon.store.messages.readRaw(entry.blobHash).toString('binary');
        assert.doesNotMatch(relayed, /^Bcc:/im);
        assert.doesNotMatch(relayed, /secret-one|secret-two/);

        const bobs = await copiesIn(gw, 'INBOX', messageId, 'bob', BOB_PW);
        assert.equal(bobs.length, 1);
        assert.doesNotMatch(bobs[0].source.toString(), /^Bcc:/im);
        assert.doesNotMatch(bobs[0].source.toString(), /secret-one|secret-two/);

        const sent = await copiesIn(gw, 'Sent', messageId);
        assert.equal(sent.length, 1);
        assert.match(headerBlock(sent[0].source), /^Bcc: secret-one@example\.org, secret-two@example\.com$/m);
    });

    test('Received is added, and Message-ID and Date when the client left them out', async () => {
        const client = await loggedIn(gw.smtpPort);
        let reply: Reply;
        try {
            reply = await submitRaw(client, 'alice@upstream.test', ['carol@example.net'], rawMessage(['From: alice@upstream.test', 'To: carol@example.net', 'Subject: bare headers']));
        } finally {
            await client.quit();
        }
        assert.equal(reply.code, 250, reply.text);
        const entry = gw.daemon.store.queue.get(queuedId(reply.text));
        assert.ok(entry);
        const headers = headerBlock(gw.daemon.store.messages.readRaw(entry.blobHash));
        assert.match(headers, /^Received: from laptop\.lan \(.*\[127\.0\.0\.1\]\)\r\n\tby mailmule\.test \(mailmule\) with ESMTPA id /);
        const messageId = /^Message-ID: (<[^>]+@mailmule\.test>)$/im.exec(headers);
        assert.ok(messageId, 'a Message-ID was added');
        assert.equal(entry.messageId, messageId[1].toLowerCase());
        const date = /^Date: (.+)$/im.exec(headers);
        assert.ok(date, 'a Date was added');
        assert.ok(Math.abs(Date.parse(date[1]) - Date.now()) < 5 * 60 * 1000, `a current date: ${date[1]}`);
        assert.equal((await copiesIn(gw, 'Sent', messageId[1])).length, 1, 'the Sent copy carries the same Message-ID');
    });

    test('ten clients finishing at once are all committed (group commit)', async () => {
        const queued = queueSize(gw);
        const infos = await Promise.all(
            Array.from({ length: 10 }, (_, i) =>
                transport(gw).sendMail({ from: 'alice@upstream.test', to: `batch-${i}@example.net`, subject: `batch ${i}`, text: `number ${i}`, messageId: `<batch-${i}@laptop.lan>` })
            )
        );
        const ids = infos.map(info => queuedId(info.response));
        assert.equal(new Set(ids).size, 10);
        assert.equal(queueSize(gw), queued + 10);
        ids.forEach((id, i) => {
            const entry = gw.daemon.store.queue.get(id);
            assert.ok(entry);
            assert.deepEqual(
                entry.recipients.map(r => r.address),
                [`batch-${i}@example.net`]
            );
            assert.equal(entry.messageId, `<batch-${i}@laptop.lan>`);
        });
        const sent = await mailboxMessages(gw, 'Sent');
        for (let i = 0; i < 10; i++) assert.equal(sent.filter(m => m.messageId === `<batch-${i}@laptop.lan>`).length, 1);
    });

    test('a failed commit answers 4xx and leaves no message file behind', async () => {
        const queued = queueSize(gw);
        const sentBefore = (await mailboxMessages(gw, 'Sent')).length;
        // Fault injection: the database cannot grow, and SQLite answers the commit as on a full disk
        // (SQLITE_FULL); the message's indexed text needs new pages.
        const store = gw.daemon.store;
        setConnectionLimits(store, { maxPageCount: connectionLimits(store).pageCount });
        let reply: Reply;
        try {
            const client = await loggedIn(gw.smtpPort);
            try {
                const raw = rawMessage(['From: alice@upstream.test', 'Subject: disk full', 'Message-ID: <disk-full@laptop.lan>'], 'words to index '.repeat(8000));
                reply = await submitRaw(client, 'alice@upstream.test', ['carol@example.net'], raw);
            } finally {
                await client.quit();
            }
        } finally {
            setConnectionLimits(store, { maxPageCount: 1073741823 });
        }
        // Issue 10: a full disk is 452 4.3.1 (insufficient system storage), and says so.
        assert.equal(reply.code, 452, reply.text);
        assert.equal(queueSize(gw), queued);
        assert.equal((await mailboxMessages(gw, 'Sent')).length, sentBefore);
        assert.deepEqual(orphanBlobFiles(gw), [], 'the files written for the failed commit are gone');
        assert.deepEqual(tmpFiles(gw), []);
        await assertStillServing('a failed commit');
    });

    // -------------------------------------------------------------- bad input over raw sockets

    test('a message with no header fields keeps its body as body', async () => {
        const client = await loggedIn(gw.smtpPort);
        let reply: Reply;
        try {
            reply = await submitRaw(client, 'alice@upstream.test', ['carol@example.net'], Buffer.from('\r\nJust a body.\r\nSecond line.'));
        } finally {
            await client.quit();
        }
        assert.equal(reply.code, 250, reply.text);
        const entry = gw.daemon.store.queue.get(queuedId(reply.text));
        assert.ok(entry);
        const raw = gw.daemon.store.messages.readRaw(entry.blobHash).toString();
        const [header, body] = [raw.slice(0, raw.indexOf('\r\n\r\n')), raw.slice(raw.indexOf('\r\n\r\n') + 4)];
        assert.equal(body, 'Just a body.\r\nSecond line.\r\n');
        assert.doesNotMatch(header, /Just a body|Second line/);
        assert.match(header, /^From: <alice@upstream\.test>$/m);
        assert.match(header, /^Message-ID: </m);
        await assertStillServing('a headerless message');
    });

    test('bare LF line endings are accepted and stored with CRLF', async () => {
        const client = await loggedIn(gw.smtpPort);
        let reply: Reply;
        try {
            const data = Buffer.from('From: alice@upstream.test\nTo: carol@example.net\nSubject: bare lf\nMessage-ID: <bare-lf@laptop.lan>\n\nline one\nline two');
            reply = await submitRaw(client, 'alice@upstream.test', ['carol@example.net'], data);
        } finally {
            await client.quit();
        }
        assert.equal(reply.code, 250, reply.text);
        const entry = gw.daemon.store.queue.get(queuedId(reply.text));
        assert.ok(entry);
        const raw = gw.daemon.store.messages.readRaw(entry.blobHash);
        assert.ok(onlyCrlf(raw), 'only CRLF line ends in the stored copy');
        assert.match(raw.toString(), /\r\nSubject: bare lf\r\n/);
        assert.match(raw.toString(), /\r\n\r\nline one\r\nline two\r\n$/);
        const sent = await copiesIn(gw, 'Sent', '<bare-lf@laptop.lan>');
        assert.equal(sent.length, 1);
        assert.ok(onlyCrlf(sent[0].source));
        await assertStillServing('bare LF');
    });

    test('NUL bytes are refused with 554 and nothing is queued', async () => {
        const queued = queueSize(gw);
        const sentBefore = (await mailboxMessages(gw, 'Sent')).length;
        const client = await loggedIn(gw.smtpPort);
        try {
            const data = Buffer.concat([Buffer.from('From: alice@upstream.test\r\nTo: carol@example.net\r\nSubject: nul\r\n\r\nbad'), Buffer.from([0]), Buffer.from('byte')]);
            const reply = await submitRaw(client, 'alice@upstream.test', ['carol@example.net'], data);
            assert.equal(reply.code, 554, reply.text);
            // The session goes on: a clean message on the same connection is fine.
            const next = await submitRaw(client, 'alice@upstream.test', ['carol@example.net'], rawMessage(['From: alice@upstream.test', 'Subject: after nul']));
            assert.equal(next.code, 250, next.text);
        } finally {
            await client.quit();
        }
        assert.equal(queueSize(gw), queued + 1, 'only the clean message');
        assert.equal((await mailboxMessages(gw, 'Sent')).length, sentBefore + 1);
        assert.deepEqual(orphanBlobFiles(gw), []);
        await assertStillServing('NUL');
    });

    test('8-bit header bytes without SMTPUTF8 are accepted and kept byte for byte', async () => {
        const subject = 'Grüße aus dem Dorf – ½ kg';
        const client = await loggedIn(gw.smtpPort);
        let reply: Reply;
        try {
            reply = await submitRaw(
                client,
                'alice@upstream.test',
                ['carol@example.net'],
                rawMessage(['From: Zoë <alice@upstream.test>', 'To: carol@example.net', `Subject: ${subject}`, 'Message-ID: <eight-bit@laptop.lan>'])
            );
        } finally {
            await client.quit();
        }
        assert.equal(reply.code, 250, reply.text);
        const entry = gw.daemon.store.queue.get(queuedId(reply.text));
        assert.ok(entry);
        const raw = gw.daemon.store.messages.readRaw(entry.blobHash);
        assert.ok(raw.includes(Buffer.from(`\r\nSubject: ${subject}\r\n`, 'utf8')), 'header bytes unchanged');
        assert.ok(raw.includes(Buffer.from('From: Zoë <alice@upstream.test>', 'utf8')));
        await assertStillServing('8-bit headers');
    });

    test('a 10 MB single line is accepted whole (nothing half-queued)', async () => {
        const queued = queueSize(gw);
        const line = 'x'.repeat(10 * 1024 * 1024);
        const client = await loggedIn(gw.smtpPort);
        let reply: Reply;
        try {
            reply = await submitRaw(
                client,
                'alice@upstream.test',
                ['carol@example.net'],
                Buffer.concat([rawMessage(['From: alice@upstream.test', 'To: carol@example.net', 'Subject: long line', 'Message-ID: <long-line@laptop.lan>'], ''), Buffer.from(line)]),
                30_000
            );
        } finally {
            await client.quit();
        }
        assert.equal(reply.code, 250, reply.text);
        assert.equal(queueSize(gw), queued + 1);
        const entry = gw.daemon.store.queue.get(queuedId(reply.text));
        assert.ok(entry);
        const raw = gw.daemon.store.messages.readRaw(entry.blobHash);
        assert.equal(raw.length, entry.size);
        const body = raw.subarray(raw.indexOf('\r\n\r\n') + 4);
        assert.equal(body.length, line.length + 2);
        assert.ok(body.subarray(0, line.length).equals(Buffer.from(line)), 'the line arrived whole');
        assert.deepEqual(orphanBlobFiles(gw), []);
        await assertStillServing('a 10 MB line');
    });

    test('a client that disconnects mid-DATA leaves nothing behind', async () => {
        const queued = queueSize(gw);
        const logged = gw.logLines.length;
        const client = await loggedIn(gw.smtpPort);
        assert.equal((await client.cmd('MAIL FROM:<alice@upstream.test>')).code, 250);
        assert.equal((await client.cmd('RCPT TO:<carol@example.net>')).code, 250);
        assert.equal((await client.cmd('RCPT TO:<bob@mailmule.lan>')).code, 250);
        assert.equal((await client.cmd('DATA')).code, 354);
        await client.write('From: alice@upstream.test\r\nTo: carol@example.net\r\nSubject: cut off\r\nMessage-ID: <cut-off@laptop.lan>\r\n\r\n' + 'partial line\r\n'.repeat(2000));
        client.destroy();
        await withTimeout(client.closedPromise, WAIT_MS, 'client socket close');
        await waitFor(() => gw.logLines.slice(logged).some(line => line.includes('message not received in full')), 'the server to notice the cut');

        assert.equal(queueSize(gw), queued);
        assert.equal((await copiesIn(gw, 'Sent', '<cut-off@laptop.lan>')).length, 0);
        assert.equal((await copiesIn(gw, 'INBOX', '<cut-off@laptop.lan>', 'bob', BOB_PW)).length, 0);
        assert.deepEqual(orphanBlobFiles(gw), [], 'no message file without a blobs row');
        assert.deepEqual(tmpFiles(gw), [], 'no temporary file');
        assert.equal(gw.daemon.store.recover().removedBlobs, 0);
        await assertStillServing('a cut DATA');
    });

    test('garbage commands get 500-class replies and the session goes on', async () => {
        const client = await loggedIn(gw.smtpPort);
        try {
            for (const garbage of ['FROBNICATE now', 'HELLO WORLD', Buffer.from([0xff, 0xfe, 0x01, 0x41]).toString('binary')]) {
                const reply = await client.cmd(garbage);
                assert.equal(reply.code, 500, `${JSON.stringify(garbage)}: ${reply.text}`);
            }
            const badMail = await client.cmd('MAIL FROM alice@upstream.test');
            assert.ok(badMail.code >= 500 && badMail.code <= 504, `MAIL without colon: ${badMail.code} ${badMail.text}`);
            const badRcpt = await client.cmd('RCPT TO:<carol@example.net>');
            assert.equal(badRcpt.code, 503, `RCPT before MAIL: ${badRcpt.text}`);
            assert.equal((await client.cmd('NOOP')).code, 250);
        } finally {
            await client.quit();
        }
        await assertStillServing('garbage commands');
    });
});

// ------------------------------------------------------------------ limits and TLS policy

describe('limits and TLS policy (plaintext AUTH off, maxMessageSize 50KB)', () => {
    let gw: Gateway;

    before(async () => {
        gw = await startGateway({ users: USERS, plaintext: false, smtpExtraYaml: '  maxMessageSize: 50KB' });
    });
    after(async () => {
        await gw?.stop();
    });

    test('EHLO advertises SIZE and STARTTLS; AUTH before STARTTLS is refused', async () => {
        const { client } = await RawSmtpConnection.connect(gw.smtpPort);
        try {
            const ehlo = await client.cmd('EHLO laptop.lan');
            assert.equal(ehlo.code, 250);
            assert.ok(ehlo.lines.includes('SIZE 51200'), ehlo.text);
            assert.ok(ehlo.lines.includes('STARTTLS'), ehlo.text);
            const auth = await client.cmd(authPlain('alice', ALICE_PW));
            assert.equal(auth.code, 538, auth.text);
            assert.equal((await client.cmd('MAIL FROM:<alice@upstream.test>')).code, 530, 'still not logged in');

            await client.starttls();
            const again = await client.cmd('EHLO laptop.lan');
            assert.ok(again.lines.includes('SIZE 51200'), again.text);
            assert.ok(
                again.lines.some(line => /^AUTH .*PLAIN/.test(line)),
                again.text
            );
            assert.equal((await client.cmd(authPlain('alice', ALICE_PW))).code, 235, 'AUTH works inside TLS');
        } finally {
            await client.quit();
        }
    });

    test('nodemailer over STARTTLS still submits', async () => {
        const info = await transport(gw).sendMail({ from: 'alice@upstream.test', to: 'carol@example.net', subject: 'small', text: 'fits' });
        assert.ok(gw.daemon.store.queue.get(queuedId(info.response)));
    });

    test('an oversized message gets 552 and nothing is queued (declared SIZE and streamed)', async () => {
        const queued = queueSize(gw);
        const sentBefore = (await mailboxMessages(gw, 'Sent')).length;
        const big = 'y'.repeat(76) + '\r\n';

        await assert.rejects(
            transport(gw).sendMail({ from: 'alice@upstream.test', to: 'carol@example.net', subject: 'too big', text: big.repeat(1000) }),
            (err: { responseCode?: number }) => err.responseCode === 552
        );

        // Without a SIZE parameter: the limit applies while streaming.
        const client = await loggedIn(gw.smtpsPort, { tls: true });
        try {
            const reply = await submitRaw(
                client,
                'alice@upstream.test',
                ['carol@example.net'],
                rawMessage(['From: alice@upstream.test', 'To: carol@example.net', 'Subject: too big, streamed'], big.repeat(1000))
            );
            assert.equal(reply.code, 552, reply.text);
            const next = await submitRaw(client, 'alice@upstream.test', ['carol@example.net'], rawMessage(['From: alice@upstream.test', 'Subject: small after big']));
            assert.equal(next.code, 250, next.text);
        } finally {
            await client.quit();
        }
        assert.equal(queueSize(gw), queued + 1, 'only the small one');
        assert.equal((await mailboxMessages(gw, 'Sent')).length, sentBefore + 1);
        assert.deepEqual(orphanBlobFiles(gw), []);
        assert.equal(gw.daemon.store.integrityCheck(), 'ok');
    });
});

// ------------------------------------------------------------------ brute force

describe('password guessing', () => {
    let gw: Gateway;

    before(async () => {
        // The penalty's delays scaled down (test/auth-limits.test.ts covers its timing).
        gw = await startGateway({ users: USERS, authPenalty: { baseDelayMs: 10, maxDelayMs: 50 } });
    });
    after(async () => {
        await gw?.stop();
    });

    test('10 guesses at one user from one address: the tenth is refused (535, even with the right password); other users and addresses still log in', async () => {
        const wrong = Array.from({ length: 10 }, (_, i) => `guess-${i}-wrong`);
        const { client } = await RawSmtpConnection.connect(gw.smtpPort);
        try {
            assert.equal((await client.cmd('EHLO laptop.lan')).code, 250);
            for (const guess of wrong) {
                const reply = await client.cmd(authPlain('alice', guess));
                assert.equal(reply.code, 535, reply.text);
            }
            const locked = await client.cmd(authPlain('alice', ALICE_PW));
            assert.equal(locked.code, 535, locked.text);
        } finally {
            await client.quit();
        }

        // A fresh connection from the same address is refused too, for alice.
        const { client: second } = await RawSmtpConnection.connect(gw.smtpPort);
        try {
            assert.equal((await second.cmd('EHLO laptop.lan')).code, 250);
            assert.equal((await second.cmd(authPlain('alice', ALICE_PW))).code, 535);
        } finally {
            await second.quit();
        }

        // The penalty is shared: IMAP from 127.0.0.1 is refused for alice with the right password.
        await assert.rejects(imapClient(gw).connect());

        const refusals = gw.logLines.filter(line => line.includes('too many failures'));
        assert.ok(refusals.length >= 1, 'the refusal is logged');
        assert.ok(refusals.some(line => /127\.0\.0\.1/.test(line)));
        const secrets = [ALICE_PW, ...wrong, Buffer.from(`\0alice\0${ALICE_PW}`).toString('base64')];
        for (const line of gw.logLines) {
            for (const secret of secrets) assert.ok(!line.includes(secret), `a password in the log: ${line}`);
        }

        // Another source address is unaffected.
        const other = await loggedIn(gw.smtpPort, { localAddress: '127.0.0.2' });
        await other.quit();
        const info = await transport(gw, { localAddress: '127.0.0.2' }).sendMail({ from: 'alice@upstream.test', to: 'carol@example.net', subject: 'from 127.0.0.2', text: 'x' });
        const entry = gw.daemon.store.queue.get(queuedId(info.response));
        assert.ok(entry);
        assert.match(headerBlock(gw.daemon.store.messages.readRaw(entry.blobHash)), /\[127\.0\.0\.2\]/);

        // And IMAP LOGIN from 127.0.0.2 works.
        const imap = await imapLoginFrom('127.0.0.2', gw.imapPort, 'alice', ALICE_PW);
        assert.match(imap, /^a1 OK/m);
    });
});

/** A bare IMAP LOGIN from a chosen source address (imapflow cannot bind one); returns the tagged reply. */
async function imapLoginFrom(localAddress: string, port: number, user: string, pass: string): Promise<string> {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress });
    let received = '';
    const waitFor_ = (pattern: RegExp, what: string) =>
        withTimeout(
            new Promise<string>((resolve, reject) => {
                const check = () => {
                    const match = pattern.exec(received);
                    if (match) {
                        socket.off('data', onData);
                        resolve(match[0]);
                    }
                };
                const onData = (chunk: Buffer) => {
                    received += chunk.toString('binary');
                    check();
                };
                socket.on('data', onData);
                socket.once('error', reject);
                check();
            }),
            WAIT_MS,
            what
        );
    try {
        await waitFor_(/^\* OK.*\r\n/m, 'IMAP greeting');
        const quote = (s: string) => `"${s.replace(/(["\\])/g, '\\$1')}"`;
        socket.write(`a1 LOGIN ${quote(user)} ${quote(pass)}\r\n`);
        return await waitFor_(/^a1 .*\r\n/m, 'LOGIN reply');
    } finally {
        socket.write('a2 LOGOUT\r\n');
        socket.end();
        socket.destroy();
    }
}
