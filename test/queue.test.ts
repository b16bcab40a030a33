/**
 * The outbound queue from the admin's side (the `mailmule queue` CLI in a child process against
 * a live gateway's data) and delivery status notifications (buildBounce, bounceToSender).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ImapFlow } from 'imapflow';
import nodemailer, { type SendMailOptions } from 'nodemailer';
import { simpleParser, type AddressObject } from 'mailparser';
import { startGateway, upstreamAccount, type Gateway, type TestUser } from './support/gateway';
import { buildBounce, bounceToSender } from '../src/queue';
import type { QueueEntry } from '../src/store';
import { blobRefs, messageStored, orphanFiles, recipientCount, sentCopyUid, setQueueEntry, setRecipientState } from './support/store';
import { runMailmule } from './support/daemon-process';
import type { ProcessResult } from './support/run-process';

const ALICE_PW = 'alice-secret-pw';
const USERS: TestUser[] = [
    { name: 'alice', password: ALICE_PW, accountsYaml: upstreamAccount('alice@upstream.test') },
    { name: 'bob', password: 'bob-secret-pw' }
];
const WAIT_MS = 10_000;

let gw: Gateway;

before(async () => {
    gw = await startGateway({ users: USERS });
});
after(async () => {
    await gw?.stop();
});

// ------------------------------------------------------------------ helpers

/**
 * `mailmule ARGS -c <the gateway's config>`, as the admin would type it. stdin is not a terminal,
 * as under cron or ssh without -t: `queue drop` must not ask. The working directory has no
 * config/ of its own, so a lost -c cannot find another store.
 */
function mailmule(...args: string[]): Promise<ProcessResult> {
    return runMailmule([...args, '-c', gw.configFile], { cwd: gw.dir });
}

function transport(keepBcc = false) {
    const mailer = nodemailer.createTransport({
        host: '127.0.0.1',
        port: gw.smtpPort,
        secure: false,
        name: 'laptop.lan',
        auth: { user: 'alice', pass: ALICE_PW },
        tls: { rejectUnauthorized: false },
        connectionTimeout: WAIT_MS,
        greetingTimeout: WAIT_MS,
        socketTimeout: WAIT_MS
    });
    if (keepBcc) {
        mailer.use('stream', (mail, done) => {
            (mail.message as unknown as { keepBcc: boolean }).keepBcc = true;
            done();
        });
    }
    return mailer;
}

/** Submits over SMTP and returns the queue entry it made. */
async function submit(message: SendMailOptions, keepBcc = false): Promise<QueueEntry> {
    const info = await transport(keepBcc).sendMail({ from: 'alice@upstream.test', text: 'Hello.', ...message });
    const match = /queued as (\d+)/.exec(info.response);
    assert.ok(match, info.response);
    const entry = gw.daemon.store.queue.get(Number(match[1]));
    assert.ok(entry);
    return entry;
}

function setState(id: number, state: string, fields: { attempts?: number; lastError?: string; nextAttemptAt?: number } = {}): void {
    setQueueEntry(gw.daemon.store, id, { state, ...fields });
}

function imapClient(): ImapFlow {
    return new ImapFlow({
        host: '127.0.0.1',
        port: gw.imapPort,
        secure: false,
        auth: { user: 'alice', pass: ALICE_PW },
        logger: false,
        tls: { rejectUnauthorized: false },
        connectionTimeout: WAIT_MS,
        greetingTimeout: WAIT_MS
    });
}

async function fetchByUid(mailbox: string, uid: number): Promise<Buffer | null> {
    const client = imapClient();
    await client.connect();
    try {
        await client.mailboxOpen(mailbox, { readOnly: true });
        const message = await client.fetchOne(String(uid), { source: true }, { uid: true });
        return message ? (message.source as Buffer) : null;
    } finally {
        await client.logout();
    }
}

function headerBlockOf(raw: Buffer): Buffer {
    return raw.subarray(0, raw.indexOf('\r\n\r\n') + 2);
}

/** The body parts of a multipart message: [header text, body] each, split on its boundary. */
function mimeParts(raw: Buffer): { headers: string; body: Buffer }[] {
    const top = headerBlockOf(raw)
        .toString('binary')
        .replace(/\r\n[ \t]+/g, ' ');
    const boundary = /boundary="?([^";\r\n]+)"?/i.exec(top)?.[1];
    assert.ok(boundary, 'a boundary');
    const text = raw.toString('binary');
    const pieces = text.split(`\r\n--${boundary}`);
    // pieces[0] is the preamble (and top headers); the last starts with "--" (the close delimiter).
    assert.ok(pieces[pieces.length - 1].startsWith('--'), 'a close delimiter');
    return pieces.slice(1, -1).map(piece => {
        const part = piece.slice(piece.indexOf('\r\n') + 2);
        const end = part.indexOf('\r\n\r\n');
        return { headers: part.slice(0, end), body: Buffer.from(part.slice(end + 4), 'binary') };
    });
}

// ------------------------------------------------------------------ the queue CLI

test('an empty queue', async () => {
    const json = await mailmule('queue', '--json');
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), []);
    const text = await mailmule('queue');
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /the queue is empty/);
});

test('queue --json and the table list what was submitted', async () => {
    const first = await submit({ to: 'carol@example.net', cc: 'dave@example.org', subject: 'listed one', messageId: '<listed-1@laptop.lan>' });
    const second = await submit({ to: 'erin@example.com', subject: 'listed two' });

    const json = await mailmule('queue', '--json');
    assert.equal(json.code, 0, json.stderr);
    const entries = JSON.parse(json.stdout) as QueueEntry[];
    assert.deepEqual(
        entries.map(e => e.id),
        [first.id, second.id]
    );
    assert.deepEqual(entries[0], JSON.parse(JSON.stringify(first)), 'the CLI shows what the store holds');
    assert.equal(entries[0].mailFrom, 'alice@upstream.test');
    assert.equal(entries[0].account, 'alice@upstream.test');
    assert.equal(entries[0].user, 'alice');
    assert.equal(entries[0].messageId, '<listed-1@laptop.lan>');
    assert.deepEqual(entries[0].recipients, [
        { address: 'carol@example.net', state: 'pending', lastError: null },
        { address: 'dave@example.org', state: 'pending', lastError: null }
    ]);

    const table = await mailmule('queue');
    assert.equal(table.code, 0, table.stderr);
    const rows = table.stdout.split('\n');
    assert.ok(
        rows.some(row => new RegExp(`^\\s*${first.id}\\s+queued\\s+0\\s+${first.size}\\s.*alice@upstream\\.test\\s+→ 2 rcpts`).test(row)),
        table.stdout
    );
    assert.ok(
        rows.some(row => new RegExp(`^\\s*${second.id}\\s+queued\\s.*→ 1 rcpt$`).test(row.trimEnd())),
        table.stdout
    );
    assert.match(table.stdout, /^2 queued, 0 sending, 0 sent, 0 deferred, 0 failed$/m);
});

test('queue show ID (text and --json); unknown ids exit 3', async () => {
    const entry = await submit({ to: ['frank@example.net', 'grace@example.org'], subject: 'shown', messageId: '<shown@laptop.lan>' });
    setRecipientState(gw.daemon.store, entry.id, 'grace@example.org', 'failed', '550 5.1.1 unknown user');

    const text = await mailmule('queue', 'show', String(entry.id));
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`^id:\\s+${entry.id}$`, 'm'));
    assert.match(text.stdout, /^state:\s+queued$/m);
    assert.match(text.stdout, /^user:\s+alice$/m);
    assert.match(text.stdout, /^relay via:\s+alice@upstream\.test$/m);
    assert.match(text.stdout, /^mail from:\s+alice@upstream\.test$/m);
    assert.match(text.stdout, /^message-id:\s+<shown@laptop\.lan>$/m);
    assert.match(text.stdout, new RegExp(`^size:\\s+${entry.size} bytes$`, 'm'));
    assert.match(text.stdout, /^ {2}pending +frank@example\.net$/m);
    assert.match(text.stdout, /^ {2}failed +grace@example\.org {2}\[550 5\.1\.1 unknown user\]$/m);

    const json = await mailmule('queue', 'show', String(entry.id), '--json');
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), JSON.parse(JSON.stringify(gw.daemon.store.queue.get(entry.id))));
    // -c before the subcommand works as well.
    const before = await runMailmule(['queue', '-c', gw.configFile, 'show', String(entry.id), '--json'], { cwd: gw.dir });
    assert.equal(before.code, 0, before.stderr);
    assert.equal((JSON.parse(before.stdout) as QueueEntry).id, entry.id);

    const missing = await mailmule('queue', 'show', '99999');
    assert.equal(missing.code, 3);
    assert.match(missing.stderr, /no queue entry 99999/);
    assert.equal(missing.stdout, '');
    const junk = await mailmule('queue', 'show', 'abc');
    assert.equal(junk.code, 3);
    assert.match(junk.stderr, /not a queue id/);
});

test('queue retry ID makes a failed or deferred entry due again', async () => {
    const failed = await submit({ to: ['henry@example.net', 'ida@example.org'], subject: 'to retry' });
    setState(failed.id, 'failed', { attempts: 3, lastError: '550 no' });
    setRecipientState(gw.daemon.store, failed.id, 'ida@example.org', 'failed', '550 no');
    setRecipientState(gw.daemon.store, failed.id, 'henry@example.net', 'sent');

    const result = await mailmule('queue', 'retry', String(failed.id));
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^1 message will be tried at the next uplink run$/m);
    const after = gw.daemon.store.queue.get(failed.id)!;
    assert.equal(after.state, 'queued');
    assert.equal(after.nextAttemptAt, null);
    assert.deepEqual(
        after.recipients.map(r => [r.address, r.state, r.lastError]),
        [
            ['henry@example.net', 'sent', null],
            ['ida@example.org', 'pending', null]
        ],
        'failed recipients are tried again, sent ones are not'
    );

    const deferred = await submit({ to: 'jack@example.net', subject: 'deferred' });
    setState(deferred.id, 'deferred', { nextAttemptAt: Date.now() + 3600_000 });
    assert.equal((await mailmule('queue', 'retry', String(deferred.id))).code, 0);
    const due = gw.daemon.store.queue.get(deferred.id)!;
    assert.equal(due.state, 'queued');
    assert.equal(due.nextAttemptAt, null);
    assert.ok(
        gw.daemon.store.queue.due().some(e => e.id === deferred.id),
        'due now'
    );

    const missing = await mailmule('queue', 'retry', '99999');
    assert.equal(missing.code, 3);
    assert.match(missing.stderr, /no queue entry 99999/);
    const nothing = await mailmule('queue', 'retry');
    assert.equal(nothing.code, 3, 'neither an id nor --all');
});

test('queue retry --all requeues deferred entries only: a failed one stays failed (it was bounced), sent ones stay sent', async () => {
    const a = await submit({ to: 'kim@example.net', subject: 'all a' });
    const b = await submit({ to: 'lee@example.net', subject: 'all b' });
    const c = await submit({ to: 'max@example.net', subject: 'all c' });
    setState(a.id, 'failed');
    setState(b.id, 'deferred', { nextAttemptAt: Date.now() + 3600_000 });
    setState(c.id, 'sent');

    const result = await mailmule('queue', 'retry', '--all');
    assert.equal(result.code, 0, result.stderr);
    assert.equal(gw.daemon.store.queue.get(a.id)!.state, 'failed');
    assert.equal(gw.daemon.store.queue.get(b.id)!.state, 'queued');
    assert.equal(gw.daemon.store.queue.get(c.id)!.state, 'sent');
    assert.equal(gw.daemon.store.queue.counts().deferred, 0);
    // Put it out of the way of the tests after this one.
    setState(a.id, 'sent');
});

test('queue retry --all reports how many deferred entries it requeued', async () => {
    const a = await submit({ to: 'ned@example.net', subject: 'count a' });
    const b = await submit({ to: 'ned@example.net', subject: 'count b' });
    setState(a.id, 'deferred');
    setState(b.id, 'failed');
    const result = await mailmule('queue', 'retry', '--all');
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^1 message will be tried/m);
    setState(b.id, 'sent');
});

test('queue drop ID -y removes the entry, and its message file once nothing else uses it', async () => {
    // Without Bcc the relayed copy is the Sent copy: one file, two references.
    const shared = await submit({ to: 'olga@example.net', subject: 'shared file', messageId: '<shared-file@laptop.lan>' });
    const sentUid = sentCopyUid(gw.daemon.store, shared.blobHash);
    assert.ok(sentUid, 'the Sent copy shares the file');
    assert.equal(blobRefs(gw.daemon.store, shared.blobHash), 2);

    const dropShared = await mailmule('queue', 'drop', String(shared.id), '-y');
    assert.equal(dropShared.code, 0, dropShared.stderr);
    assert.match(dropShared.stdout, new RegExp(`^dropped ${shared.id}$`, 'm'));
    assert.equal(gw.daemon.store.queue.get(shared.id), null);
    assert.equal(recipientCount(gw.daemon.store, shared.id), 0);
    assert.equal(blobRefs(gw.daemon.store, shared.blobHash), 1);
    assert.ok(messageStored(gw.daemon.store, shared.blobHash), 'the Sent copy keeps the message');
    const sentSource = await fetchByUid('Sent', sentUid);
    assert.ok(sentSource && sentSource.equals(gw.daemon.store.messages.readRaw(shared.blobHash)), 'Sent copy intact over IMAP');

    // With Bcc the relayed copy differs from the Sent copy: the queue holds the only reference.
    const own = await submit({ to: 'pia@example.net', bcc: 'quinn@example.org', subject: 'own file' }, true);
    assert.equal(blobRefs(gw.daemon.store, own.blobHash), 1);
    const dropOwn = await mailmule('queue', 'drop', String(own.id), '--yes');
    assert.equal(dropOwn.code, 0, dropOwn.stderr);
    assert.equal(gw.daemon.store.queue.get(own.id), null);
    assert.equal(blobRefs(gw.daemon.store, own.blobHash), undefined, 'blobs row gone');
    assert.equal(messageStored(gw.daemon.store, own.blobHash), false, 'message gone');

    const missing = await mailmule('queue', 'drop', '99999', '-y');
    assert.equal(missing.code, 3);
    assert.match(missing.stderr, /no queue entry 99999/);

    // An entry being sent right now is left alone.
    const busy = await submit({ to: 'rob@example.net', subject: 'busy' });
    setState(busy.id, 'sending');
    const dropBusy = await mailmule('queue', 'drop', String(busy.id), '-y');
    assert.equal(dropBusy.code, 3);
    assert.match(dropBusy.stderr, /being sent right now/);
    assert.ok(gw.daemon.store.queue.get(busy.id));
    assert.ok(messageStored(gw.daemon.store, busy.blobHash));
    setState(busy.id, 'queued');

    assert.deepEqual(orphanFiles(gw.daemon.store), []);
    assert.equal(gw.daemon.store.integrityCheck(), 'ok');
});

// ------------------------------------------------------------------ delivery status notifications

const ORIGINAL_HEADERS = Buffer.from(
    [
        'Received: from laptop.lan (laptop.lan [192.168.1.20])',
        '\tby mailmule.test (mailmule) with ESMTPSA id 4d2a; Mon, 23 Nov 2026 10:00:00 +0000',
        'From: Alice <alice@upstream.test>',
        'To: nobody@example.net, gone@example.org',
        'Subject: Harvest festival',
        'Message-ID: <orig-1@laptop.lan>',
        'Date: Mon, 23 Nov 2026 10:00:00 +0000',
        ''
    ].join('\r\n')
);

test('buildBounce: a multipart/report with delivery-status fields and the original headers', async () => {
    const raw = await buildBounce({
        to: 'alice@upstream.test',
        reportingMta: 'mailmule.test',
        originalHeaders: ORIGINAL_HEADERS,
        originalMessageId: '<orig-1@laptop.lan>',
        arrivalDate: new Date('2026-11-23T10:00:00Z'),
        recipients: [
            { address: 'nobody@example.net', status: '5.1.1', diagnostic: '550 5.1.1 no such user', remoteMta: 'mx.example.net' },
            { address: 'gone@example.org', status: '5.2.1', diagnostic: '550 5.2.1 mailbox disabled\r\nX-Injected: yes' }
        ]
    });

    const parsed = await simpleParser(raw);
    const contentType = parsed.headers.get('content-type') as { value: string; params: Record<string, string> };
    assert.equal(contentType.value, 'multipart/report');
    assert.equal(contentType.params['report-type'], 'delivery-status');
    assert.equal(parsed.subject, 'Undelivered Mail Returned to Sender');
    assert.equal((parsed.from as AddressObject).value[0].address, 'mailer-daemon@mailmule.test');
    assert.equal((parsed.to as AddressObject).value[0].address, 'alice@upstream.test');
    assert.equal(parsed.inReplyTo, '<orig-1@laptop.lan>');
    assert.equal(parsed.headers.get('auto-submitted'), 'auto-replied');
    assert.match(parsed.messageId ?? '', /@mailmule\.test>$/);
    const headersPart = parsed.attachments.find(a => a.contentType === 'text/rfc822-headers');
    assert.ok(headersPart, 'a text/rfc822-headers part');
    assert.match(headersPart.content.toString(), /^Subject: Harvest festival$/m);
    assert.match(headersPart.content.toString(), /^Message-ID: <orig-1@laptop\.lan>$/m);

    // The raw structure, as RFC 3464 lays it out.
    const parts = mimeParts(raw);
    assert.equal(parts.length, 3);
    assert.match(parts[0].headers, /^Content-Type: text\/plain/im);
    assert.match(parts[1].headers, /^Content-Type: message\/delivery-status/im);
    assert.match(parts[2].headers, /^Content-Type: text\/rfc822-headers/im);

    const [perMessage, ...perRecipient] = parts[1].body.toString().trimEnd().split('\r\n\r\n');
    assert.deepEqual(perMessage.split('\r\n'), ['Reporting-MTA: dns; mailmule.test', 'Arrival-Date: Mon, 23 Nov 2026 10:00:00 GMT']);
    assert.deepEqual(
        perRecipient.map(block => block.split('\r\n')),
        [
            ['Final-Recipient: rfc822; nobody@example.net', 'Action: failed', 'Status: 5.1.1', 'Remote-MTA: dns; mx.example.net', 'Diagnostic-Code: smtp; 550 5.1.1 no such user'],
            ['Final-Recipient: rfc822; gone@example.org', 'Action: failed', 'Status: 5.2.1', 'Diagnostic-Code: smtp; 550 5.2.1 mailbox disabled X-Injected: yes']
        ]
    );

    // The original header block, byte for byte.
    assert.ok(parts[2].body.subarray(0, ORIGINAL_HEADERS.length).equals(ORIGINAL_HEADERS), parts[2].headers + '\n' + parts[2].body.toString());
});

test('buildBounce keeps 8-bit and long original header lines as they were', async () => {
    const original = Buffer.from(
        ['From: Zoë <alice@upstream.test>', `Subject: Grüße vom Markt – ${'a very long subject line '.repeat(4)}`, 'Message-ID: <orig-2@laptop.lan>', ''].join('\r\n'),
        'utf8'
    );
    const raw = await buildBounce({
        to: 'alice@upstream.test',
        reportingMta: 'mailmule.test',
        originalHeaders: original,
        recipients: [{ address: 'nobody@example.net', status: '5.1.1', diagnostic: '550 5.1.1 no such user' }]
    });
    const parts = mimeParts(raw);
    assert.match(parts[2].headers, /^Content-Transfer-Encoding: 8bit$/im, 'not re-encoded');
    assert.ok(parts[2].body.subarray(0, original.length).equals(original), `${parts[2].headers}\n${parts[2].body.toString()}`);
    const parsed = await simpleParser(raw);
    const headersPart = parsed.attachments.find(a => a.contentType === 'text/rfc822-headers');
    assert.ok(headersPart);
    assert.match(headersPart.content.toString('utf8'), /^Subject: Grüße vom Markt – a very long/m);
});

test("bounceToSender files the notice in the sender's INBOX, visible over IMAP", async () => {
    const entry = await submit(
        { to: 'nobody@example.net', bcc: 'hidden@example.org', subject: 'Market day', messageId: '<market-day@laptop.lan>', text: 'BODY-MARKER must not be in the bounce' },
        true
    );
    const uid = await bounceToSender(gw.daemon.store, entry, [{ address: 'nobody@example.net', status: '5.1.1', diagnostic: '550 5.1.1 no such user' }], { reportingMta: 'mailmule.test' });
    assert.ok(uid, 'a UID in INBOX');

    const source = await fetchByUid('INBOX', uid);
    assert.ok(source, "the bounce is in alice's INBOX");
    const parsed = await simpleParser(source);
    assert.equal(parsed.subject, 'Undelivered Mail Returned to Sender');
    assert.equal((parsed.to as AddressObject).value[0].address, 'alice@upstream.test');
    assert.equal(parsed.inReplyTo, '<market-day@laptop.lan>');
    const headersPart = parsed.attachments.find(a => a.contentType === 'text/rfc822-headers');
    assert.ok(headersPart);
    assert.match(headersPart.content.toString(), /^Subject: Market day$/m);
    assert.match(headersPart.content.toString(), /^Message-ID: <market-day@laptop\.lan>$/m);

    const text = source.toString();
    assert.match(text, /^Final-Recipient: rfc822; nobody@example\.net$/m);
    assert.match(text, /^Status: 5\.1\.1$/m);
    assert.match(text, /^Diagnostic-Code: smtp; 550 5\.1\.1 no such user$/m);
    assert.match(text, /^Subject: Market day$/m, 'the original Subject in the raw report');
    assert.match(text, /^Message-ID: <market-day@laptop\.lan>$/m);
    assert.doesNotMatch(text, /BODY-MARKER/, 'headers only, not the original body');
    assert.doesNotMatch(text, /hidden@example\.org/, "the relayed copy's headers: no Bcc");
    const arrival = /^Arrival-Date: (.+)$/m.exec(text);
    assert.ok(arrival);
    assert.equal(Date.parse(arrival[1]), Math.floor(entry.createdAt / 1000) * 1000);
});
