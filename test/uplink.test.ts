/**
 * The uplink end to end against a REAL provider (Dovecot + Postfix on loopback, test/support/upstream.ts)
 * and a real in-process gateway (test/support/gateway.ts): sending the queue, bringing mail home (in
 * process, through the CLI and the control socket, and standalone), flags both ways,
 * link-by-Message-ID, UIDVALIDITY resets, the byte budget, stubs and "Fetch full", OAuth2, hooks
 * and the probe, one run at a time, `mailmule status --json`, and 4xx/5xx handling.
 *
 * Each test starts its own upstream and gateway and stops them in `finally`. Nothing sleeps to
 * synchronise: runs are awaited, and Postfix's asynchronous deliveries are polled with a deadline
 * (upstream.waitForMessages). The link-fault sweep and the benchmark live elsewhere.
 *
 * Figures worth keeping an eye on are printed with t.diagnostic() (node --test shows them).
 *
 * Over 500 lines: independent tests sharing one real upstream, whose start-up (Dovecot + Postfix)
 * is the expensive part; a new topic belongs in a file of its own (as uplink-faults).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFile, spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import { startGateway, type Gateway, type TestUser } from './support/gateway';
import { startUpstream, headerBlock, headerValue, type Upstream, type UpstreamOptions } from './support/upstream';
import { freePort } from './support/ports';
import { Daemon } from '../src/daemon';
import { createLogger } from '../src/log';
import { RunInProgressError, type RunReport } from '../src/uplink';
import { messageRows, setQueueEntry } from './support/store';

const ROOT = path.resolve(__dirname, '..', '..');
const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
const ALICE = 'alice@upstream.test';
const BOB = 'bob@upstream.test';
const TEST_TIMEOUT = 40_000;

// ------------------------------------------------------------------ environment

interface AccountOptions {
    /** Extra YAML lines for the account (each indented 8 spaces), e.g. "maxMessageSize: 50KB". */
    extra?: string[];
    credentials?: string;
    folders?: string[];
}

function accountYaml(upstream: Upstream, address: string, options: AccountOptions = {}): string {
    const local = address.split('@')[0];
    return [
        `      - address: ${address}`,
        `        imap: { host: 127.0.0.1, port: ${upstream.imapPort}, tls: none }`,
        `        smtp: { host: 127.0.0.1, port: ${upstream.submissionPort}, tls: none }`,
        `        credentials: ${options.credentials ?? `{ password: ${local}-pass }`}`,
        `        folders: [${(options.folders ?? ['INBOX', 'Sent']).join(', ')}]`,
        ...(options.extra ?? []).map(line => `        ${line}`)
    ].join('\n');
}

/** Local users: name "alice" (password pw-alice) owns alice@upstream.test, and so on. */
function localUser(upstream: Upstream, name: 'alice' | 'bob', options: AccountOptions = {}): TestUser {
    return { name, password: `pw-${name}`, accountsYaml: accountYaml(upstream, `${name}@upstream.test`, options) };
}

interface Env {
    upstream: Upstream;
    gateway: Gateway;
}

async function withEnv(
    options: { upstream?: UpstreamOptions; users: (upstream: Upstream) => TestUser[]; extraYaml?: string | ((upstream: Upstream) => string) },
    fn: (env: Env) => Promise<void>
): Promise<void> {
    const upstream = await startUpstream(options.upstream ?? {});
    let gateway: Gateway | undefined;
    try {
        gateway = await startGateway({
            users: options.users(upstream),
            extraYaml: typeof options.extraYaml === 'function' ? options.extraYaml(upstream) : options.extraYaml
        });
        await fn({ upstream, gateway });
    } finally {
        await gateway?.stop().catch(() => undefined);
        await upstream.stop();
    }
}

async function run(gateway: Gateway, trigger: string, extra: { sendOnly?: boolean; receiveOnly?: boolean; user?: string } = {}): Promise<RunReport> {
    return gateway.daemon.uplink!.run({ trigger, ...extra });
}

function accountOf(report: RunReport, address: string) {
    const account = report.accounts.find(a => a.account === address);
    assert.ok(account, `no figures for ${address} in ${JSON.stringify(report)}`);
    return account;
}

function wire(report: RunReport, address: string): number {
    const account = accountOf(report, address);
    return account.bytesSent + account.bytesReceived;
}

function describeReport(report: RunReport): string {
    return JSON.stringify(report);
}

// ------------------------------------------------------------------ messages

/** Base64 of random bytes, 76 columns: barely compressible, so COMPRESS=DEFLATE cannot hide a download. */
function randomBase64(bytes: number): string {
    return crypto.randomBytes(bytes).toString('base64').replace(/.{76}/g, '$&\r\n').replace(/\r\n$/, '');
}

function inbound(fields: { subject: string; messageId: string; to?: string; bodyBytes?: number; from?: string }): Buffer {
    const body = fields.bodyBytes ? `Noise follows.\r\n${randomBase64(fields.bodyBytes)}\r\n` : `Body of ${fields.subject}.\r\n`;
    return Buffer.from(
        [
            `From: ${fields.from ?? 'Carol <carol@example.org>'}`,
            `To: ${fields.to ?? ALICE}`,
            `Subject: ${fields.subject}`,
            'Date: Mon, 23 Nov 2026 09:00:00 +0000',
            `Message-ID: ${fields.messageId}`,
            'MIME-Version: 1.0',
            'Content-Type: text/plain; charset=utf-8',
            '',
            body
        ].join('\r\n')
    );
}

function withAttachment(fields: { subject: string; messageId: string; text: string; filename: string; attachmentBytes: number }): Buffer {
    return Buffer.from(
        [
            'From: Carol <carol@example.org>',
            `To: ${ALICE}`,
            `Subject: ${fields.subject}`,
            'Date: Mon, 23 Nov 2026 09:00:00 +0000',
            `Message-ID: ${fields.messageId}`,
            'MIME-Version: 1.0',
            'Content-Type: multipart/mixed; boundary="b1-outer"',
            '',
            '--b1-outer',
            'Content-Type: text/plain; charset=utf-8',
            '',
            fields.text,
            '--b1-outer',
            `Content-Type: application/pdf; name="${fields.filename}"`,
            `Content-Disposition: attachment; filename="${fields.filename}"`,
            'Content-Transfer-Encoding: base64',
            '',
            randomBase64(fields.attachmentBytes),
            '--b1-outer--',
            ''
        ].join('\r\n')
    );
}

function smtpTransport(gateway: Gateway, user: string) {
    return nodemailer.createTransport({
        host: '127.0.0.1',
        port: gateway.smtpPort,
        secure: false,
        auth: { user, pass: `pw-${user}` },
        tls: { rejectUnauthorized: false },
        connectionTimeout: 5000,
        greetingTimeout: 5000,
        socketTimeout: 10_000
    });
}

// ------------------------------------------------------------------ local IMAP

interface LocalMessage {
    uid: number;
    size: number;
    flags: string[];
    source: Buffer;
}

async function localImap(port: number, user: string): Promise<ImapFlow> {
    const client = new ImapFlow({
        host: '127.0.0.1',
        port,
        secure: false,
        auth: { user, pass: `pw-${user}` },
        logger: false,
        tls: { rejectUnauthorized: false },
        disableAutoIdle: true,
        connectionTimeout: 5000,
        greetingTimeout: 5000,
        socketTimeout: 15_000
    });
    client.on('error', () => undefined);
    await client.connect();
    return client;
}

async function withLocal<T>(port: number, user: string, fn: (client: ImapFlow) => Promise<T>): Promise<T> {
    const client = await localImap(port, user);
    try {
        return await fn(client);
    } finally {
        await client.logout().catch(() => client.close());
    }
}

async function fetchAll(client: ImapFlow, folder: string): Promise<LocalMessage[]> {
    const lock = await client.getMailboxLock(folder);
    try {
        if (!client.mailbox || !client.mailbox.exists) return [];
        const out: LocalMessage[] = [];
        for await (const message of client.fetch('1:*', { uid: true, size: true, flags: true, source: true })) {
            out.push({ uid: message.uid, size: message.size ?? 0, flags: [...(message.flags ?? [])].filter(f => f !== '\\Recent').sort(), source: message.source ?? Buffer.alloc(0) });
        }
        return out.sort((a, b) => a.uid - b.uid);
    } finally {
        lock.release();
    }
}

function localMessages(port: number, user: string, folder = 'INBOX'): Promise<LocalMessage[]> {
    return withLocal(port, user, client => fetchAll(client, folder));
}

function messageIdOf(source: Buffer): string | undefined {
    return headerValue(headerBlock(source), 'Message-ID');
}

// ------------------------------------------------------------------ the CLI as a child process

interface CliResult {
    code: number | null;
    stdout: string;
    stderr: string;
}

function cli(args: string[], timeoutMs = 20_000): Promise<CliResult> {
    return new Promise((resolve, reject) => {
        const child = spawn(process.execPath, [CLI, ...args], { cwd: os.tmpdir(), stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
        child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
        const timer = setTimeout(() => {
            child.kill('SIGKILL');
            reject(new Error(`mailmule ${args.join(' ')} did not finish within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
        }, timeoutMs);
        child.on('error', err => {
            clearTimeout(timer);
            reject(err);
        });
        child.on('close', code => {
            clearTimeout(timer);
            resolve({ code, stdout, stderr });
        });
    });
}

function cliText(result: CliResult): string {
    return `exit ${result.code}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
}

// ================================================================== 1. sending

describe('sending the queue', () => {
    test('submitted mail reaches the provider with headers and body intact, one copy per envelope recipient, Bcc honoured, sent once', { timeout: TEST_TIMEOUT }, async t => {
        await withEnv({ users: up => [localUser(up, 'alice')] }, async ({ upstream, gateway }) => {
            const transport = smtpTransport(gateway, 'alice');
            const body = `Dear all,\r\n\r\nthe well pump is fixed. ${randomBase64(3000)}\r\n`;
            const info = await transport.sendMail({
                from: `Alice <${ALICE}>`,
                to: `carol@example.org, Bob <${BOB}>`,
                cc: 'erin@example.net',
                bcc: 'dave@example.org',
                subject: 'Pump repaired – näheres später',
                messageId: '<pump-1@upstream.test>',
                text: body
            });
            transport.close();
            assert.deepEqual(info.accepted.sort(), [BOB, 'carol@example.org', 'dave@example.org', 'erin@example.net']);

            const [entry] = gateway.daemon.store.queue.list();
            assert.ok(entry, 'the message is queued');
            assert.equal(entry.state, 'queued');
            const queued = gateway.daemon.store.messages.readRaw(entry.blobHash);
            assert.doesNotMatch(headerBlock(queued), /^bcc:/im, 'the relayed copy carries no Bcc header');

            const report = await run(gateway, 'test send');
            assert.equal(report.status, 'ok', describeReport(report));
            assert.equal(accountOf(report, ALICE).messagesSent, 1);

            const after = gateway.daemon.store.queue.get(entry.id)!;
            assert.equal(after.state, 'sent');
            assert.deepEqual(after.recipients.map(r => [r.address, r.state]).sort(), [
                [BOB, 'sent'],
                ['carol@example.org', 'sent'],
                ['dave@example.org', 'sent'],
                ['erin@example.net', 'sent']
            ]);

            // Postfix delivers asynchronously: poll (bounded) for the copies.
            const external = await upstream.waitForMessages(upstream.catchall.address, 'INBOX', 3);
            const bobInbox = await upstream.waitForMessages(BOB, 'INBOX', 1);
            const copies = await upstream.sentCopies();
            assert.deepEqual(copies.map(c => c.envelopeTo).sort(), ['carol@example.org', 'dave@example.org', 'erin@example.net'], 'one catch-all copy per external envelope recipient, Bcc included');
            assert.equal(external.length, 3);
            assert.equal(bobInbox.length, 1);
            for (const copy of [...copies.map(c => c.source), bobInbox[0].source]) {
                const headers = headerBlock(copy);
                assert.doesNotMatch(headers, /^bcc:/im, 'no copy shows the Bcc recipient');
                assert.equal(headerValue(headers, 'Subject'), headerValue(headerBlock(queued), 'Subject'));
                assert.equal(headerValue(headers, 'From'), `Alice <${ALICE}>`);
                assert.equal(headerValue(headers, 'Message-ID'), '<pump-1@upstream.test>');
                // The provider prepends its trace fields; everything after them is what was queued, byte for byte.
                assert.ok(copy.length > queued.length && copy.subarray(copy.length - queued.length).equals(queued), 'the copy ends with the queued message, byte for byte');
                const prefix = copy.subarray(0, copy.length - queued.length).toString('latin1');
                const names = prefix
                    .split('\r\n')
                    .filter(line => line && !/^[ \t]/.test(line))
                    .map(line => line.slice(0, line.indexOf(':')).toLowerCase());
                assert.ok(
                    names.every(name => ['return-path', 'delivered-to', 'received'].includes(name)),
                    `only trace fields were added: ${names.join(', ')}`
                );
            }
            for (const copy of copies) assert.equal(copy.envelopeFrom, ALICE);

            // A second run has nothing to send: fewer bytes go up than the message is long.
            const second = await run(gateway, 'test send again');
            assert.equal(second.status, 'ok', describeReport(second));
            assert.equal(accountOf(second, ALICE).messagesSent, 0);
            assert.ok(accountOf(second, ALICE).bytesSent < queued.length, `no-op run sent ${accountOf(second, ALICE).bytesSent} bytes (message ${queued.length})`);
            assert.equal(gateway.daemon.store.queue.get(entry.id)!.state, 'sent');
            t.diagnostic(
                `no-op run: ${second.bytesTotal} bytes on the wire (${accountOf(second, ALICE).bytesSent} up, ${accountOf(second, ALICE).bytesReceived} down) for one account with INBOX+Sent`
            );
        });
    });
});

// ================================================================== 2. receiving

describe('receiving', () => {
    test('mail delivered upstream reaches the villager over local IMAP: in process, via the CLI and the control socket, and standalone', { timeout: TEST_TIMEOUT }, async t => {
        const upstream = await startUpstream();
        let gateway: Gateway | undefined;
        let daemon: Daemon | undefined;
        let dir: string | undefined;
        try {
            gateway = await startGateway({ users: [localUser(upstream, 'alice')] });
            dir = gateway.dir;
            daemon = gateway.daemon;
            const raws = [1, 2, 3].map(n => inbound({ subject: `inbound ${n}`, messageId: `<in-${n}@example.org>`, bodyBytes: 2000 }));

            // In process.
            await upstream.deliver(ALICE, raws[0]);
            const first = await run(gateway, 'test in-process');
            assert.equal(first.status, 'ok', describeReport(first));
            assert.equal(accountOf(first, ALICE).messagesReceived, 1);
            let upstreamCopies = await upstream.listMessages(ALICE);
            let local = await localMessages(gateway.imapPort, 'alice');
            assert.equal(local.length, 1);
            assert.ok(local[0].source.equals(upstreamCopies[0].source), 'the local copy is the upstream one, byte for byte');

            // Through the CLI: a child process talking to the running daemon over the control socket.
            await upstream.deliver(ALICE, raws[1]);
            const viaDaemon = await cli(['sync', '-c', gateway.configFile]);
            assert.equal(viaDaemon.code, 0, cliText(viaDaemon));
            assert.match(viaDaemon.stdout, /^alice@upstream\.test: sent 0 msg, received 1 msg; [\d.]+ KB up, [\d.]+ KB down/m, cliText(viaDaemon));
            assert.match(viaDaemon.stdout, /^run \d+: ok; /m, cliText(viaDaemon));
            assert.match(gateway.daemon.store.runs.last()!.trigger, /^mailmule sync$/, 'the daemon ran it (not a standalone run)');
            local = await localMessages(gateway.imapPort, 'alice');
            upstreamCopies = await upstream.listMessages(ALICE);
            assert.equal(local.length, 2);
            assert.ok(local[1].source.equals(upstreamCopies[1].source));

            // Standalone: no daemon, the CLI runs the uplink itself against the store.
            await upstream.deliver(ALICE, raws[2]);
            await daemon.stop();
            daemon = undefined;
            const standalone = await cli(['sync', '-c', gateway.configFile]);
            assert.equal(standalone.code, 0, cliText(standalone));
            assert.match(standalone.stdout, /^alice@upstream\.test: sent 0 msg, received 1 msg;/m, cliText(standalone));

            // Start the daemon again on the same data and read the message over IMAP.
            const logLines: string[] = [];
            const sink = new Writable({ write: (chunk, _e, done) => (logLines.push(chunk.toString()), done()) });
            daemon = new Daemon(gateway.configFile, { logger: createLogger('warn', sink) });
            await daemon.start();
            assert.equal(daemon.store.runs.last()!.trigger, 'mailmule sync (standalone)');
            const port = daemon.listeners.find(l => l.security === 'starttls')!.port;
            local = await localMessages(port, 'alice');
            upstreamCopies = await upstream.listMessages(ALICE);
            assert.equal(local.length, 3);
            assert.deepEqual(
                local.map(m => messageIdOf(m.source)),
                ['<in-1@example.org>', '<in-2@example.org>', '<in-3@example.org>']
            );
            assert.ok(local[2].source.equals(upstreamCopies[2].source));
            t.diagnostic(`CLI via daemon printed: ${viaDaemon.stdout.trim().replace(/\n/g, ' | ')}`);
        } finally {
            await daemon?.stop().catch(() => undefined);
            if (dir) fs.rmSync(dir, { recursive: true, force: true });
            await upstream.stop();
        }
    });
});

// ================================================================== 3. flags

describe('flags', () => {
    test('\\Seen and \\Flagged set locally go upstream; a flag set upstream comes down (CONDSTORE)', { timeout: TEST_TIMEOUT }, async () => {
        // flagScanInterval is long (and the first sync stamps the scan), so only CHANGEDSINCE can bring changes down.
        await withEnv({ users: up => [localUser(up, 'alice')], extraYaml: 'uplink:\n  flagScanInterval: 30d' }, async ({ upstream, gateway }) => {
            await upstream.deliver(ALICE, inbound({ subject: 'one', messageId: '<f-1@example.org>' }));
            await upstream.deliver(ALICE, inbound({ subject: 'two', messageId: '<f-2@example.org>' }));
            await upstream.deliver(ALICE, inbound({ subject: 'three', messageId: '<f-3@example.org>' }));
            assert.equal((await run(gateway, 'first')).status, 'ok');

            // Local changes over IMAP.
            await withLocal(gateway.imapPort, 'alice', async client => {
                const lock = await client.getMailboxLock('INBOX');
                try {
                    assert.equal(client.mailbox && client.mailbox.exists, 3);
                    await client.messageFlagsAdd('1', ['\\Seen']);
                    await client.messageFlagsAdd('2', ['\\Flagged', '\\Seen']);
                } finally {
                    lock.release();
                }
            });
            const pushed = await run(gateway, 'push flags');
            assert.equal(pushed.status, 'ok', describeReport(pushed));
            let upstreamMessages = await upstream.listMessages(ALICE);
            const flagsById = (list: { source: Buffer; flags: string[] }[]) => Object.fromEntries(list.map(m => [messageIdOf(m.source), [...m.flags].sort()]));
            assert.deepEqual(flagsById(upstreamMessages), { '<f-1@example.org>': ['\\Seen'], '<f-2@example.org>': ['\\Flagged', '\\Seen'], '<f-3@example.org>': [] });

            // An upstream change (the user's phone) comes down. The first sync stamped the full flag
            // scan, and flagScanInterval is a day: only CHANGEDSINCE can bring it.
            const third = upstreamMessages.find(m => messageIdOf(m.source) === '<f-3@example.org>')!;
            const first = upstreamMessages.find(m => messageIdOf(m.source) === '<f-1@example.org>')!;
            await upstream.setFlags(ALICE, 'INBOX', third.uid, ['\\Answered', '\\Flagged']);
            await upstream.setFlags(ALICE, 'INBOX', first.uid, []); // read state cleared on the phone
            const pulled = await run(gateway, 'pull flags');
            assert.equal(pulled.status, 'ok', describeReport(pulled));
            const local = await localMessages(gateway.imapPort, 'alice');
            assert.deepEqual(flagsById(local), { '<f-1@example.org>': [], '<f-2@example.org>': ['\\Flagged', '\\Seen'], '<f-3@example.org>': ['\\Answered', '\\Flagged'] });
            const state = gateway.daemon.store.sync.getFolder(ALICE, 'INBOX')!;
            assert.equal(BigInt(state.highestModseq), (await upstream.status(ALICE)).highestModseq, 'the CONDSTORE position was recorded');

            // Nothing bounces back: a further run changes nothing either side.
            assert.equal((await run(gateway, 'quiet')).status, 'ok');
            upstreamMessages = await upstream.listMessages(ALICE);
            assert.deepEqual(flagsById(upstreamMessages), { '<f-1@example.org>': [], '<f-2@example.org>': ['\\Flagged', '\\Seen'], '<f-3@example.org>': ['\\Answered', '\\Flagged'] });
        });
    });

    test('a local expunge deletes upstream only with deleteUpstream: true', { timeout: TEST_TIMEOUT }, async () => {
        await withEnv({ users: up => [localUser(up, 'alice', { extra: ['deleteUpstream: true'] }), localUser(up, 'bob')] }, async ({ upstream, gateway }) => {
            for (const address of [ALICE, BOB]) {
                await upstream.deliver(address, inbound({ subject: 'keep', messageId: `<keep-${address}>`, to: address }));
                await upstream.deliver(address, inbound({ subject: 'delete me', messageId: `<del-${address}>`, to: address }));
            }
            assert.equal((await run(gateway, 'first')).status, 'ok');
            for (const user of ['alice', 'bob']) {
                await withLocal(gateway.imapPort, user, async client => {
                    const lock = await client.getMailboxLock('INBOX');
                    try {
                        const uids = await client.search({ header: { 'message-id': 'del-' } }, { uid: true });
                        assert.equal((uids || []).length, 1);
                        assert.ok(await client.messageDelete((uids as number[]).join(','), { uid: true }));
                    } finally {
                        lock.release();
                    }
                });
            }
            const report = await run(gateway, 'deletions');
            assert.equal(report.status, 'ok', describeReport(report));
            const ids = async (address: string) => (await upstream.listMessages(address)).map(m => messageIdOf(m.source)).sort();
            assert.deepEqual(await ids(ALICE), [`<keep-${ALICE}>`], 'deleteUpstream: true deletes upstream');
            assert.deepEqual(await ids(BOB), [`<del-${BOB}>`, `<keep-${BOB}>`], 'the default keeps the upstream copy');
            // And the message bob deleted does not come back down.
            assert.equal((await run(gateway, 'again')).status, 'ok');
            assert.deepEqual(
                (await localMessages(gateway.imapPort, 'bob')).map(m => messageIdOf(m.source)),
                [`<keep-${BOB}>`]
            );
            assert.deepEqual(
                (await localMessages(gateway.imapPort, 'alice')).map(m => messageIdOf(m.source)),
                [`<keep-${ALICE}>`]
            );
        });
    });
});

// ================================================================== 4. link by Message-ID

describe('link by Message-ID', () => {
    test("mail from one villager to another's upstream address is delivered at once and linked, not downloaded again", { timeout: TEST_TIMEOUT }, async t => {
        await withEnv({ users: up => [localUser(up, 'alice'), localUser(up, 'bob')] }, async ({ upstream, gateway }) => {
            const transport = smtpTransport(gateway, 'alice');
            await transport.sendMail({ from: ALICE, to: BOB, subject: 'village news', messageId: '<news-1@upstream.test>', text: randomBase64(60_000) });
            transport.close();
            const store = gateway.daemon.store;
            const bobId = store.users.get('bob')!.id;
            const inboxId = store.mailboxes.get(bobId, 'INBOX')!.id;
            const rows = () => messageRows(store, inboxId);
            const before = rows();
            assert.equal(before.length, 1, 'delivered locally at once, before any run');
            assert.equal(before[0].upstreamUid, null);
            const size = before[0].size;

            // Run 1 sends it through the provider; Postfix hands it to Dovecot asynchronously.
            const sent = await run(gateway, 'send');
            assert.equal(accountOf(sent, ALICE).messagesSent, 1, describeReport(sent));
            const [upstreamCopy] = await upstream.waitForMessages(BOB, 'INBOX', 1);
            assert.equal(messageIdOf(upstreamCopy.source), '<news-1@upstream.test>');

            // Run 2 sees bob's upstream copy and links it to the local one.
            const linked = await run(gateway, 'link', { user: 'bob' });
            assert.equal(linked.status, 'ok', describeReport(linked));
            const after = rows();
            assert.equal(after.length, 1, 'bob still has exactly one copy');
            assert.equal(after[0].uid, before[0].uid, 'the original local message, not a new one');
            assert.equal(after[0].upstreamUid, upstreamCopy.uid);
            assert.equal(after[0].upstreamUidValidity, (await upstream.status(BOB)).uidValidity);
            const down = accountOf(linked, BOB).bytesReceived;
            assert.ok(down < size / 10, `linking cost ${down} bytes down for a ${size}-byte message`);
            assert.equal(store.sync.pendingDownloads(BOB).length, 0);
            assert.equal((await localMessages(gateway.imapPort, 'bob')).length, 1);
            t.diagnostic(`link run: ${down} bytes down for a ${size}-byte message`);
        });
    });
});

// ================================================================== 5. UIDVALIDITY reset

describe('UIDVALIDITY reset', () => {
    test('a recreated upstream INBOX is re-linked for a few per cent of its bytes, without duplicates; new mail then arrives once', { timeout: TEST_TIMEOUT }, async t => {
        await withEnv({ users: up => [localUser(up, 'alice', { folders: ['INBOX'] })], extraYaml: 'uplink:\n  flagScanInterval: 30d' }, async ({ upstream, gateway }) => {
            for (let i = 0; i < 30; i++) {
                await upstream.deliver(ALICE, inbound({ subject: `archive ${i}`, messageId: `<arch-${i}@example.org>`, bodyBytes: 15_000 }));
            }
            const first = await run(gateway, 'first');
            assert.equal(accountOf(first, ALICE).messagesReceived, 30, describeReport(first));
            const mailboxBytes = (await upstream.listMessages(ALICE)).reduce((sum, m) => sum + m.size, 0);
            const before = await localMessages(gateway.imapPort, 'alice');
            assert.equal(before.length, 30);

            // The phone flags one message just before the provider rebuilds the folder.
            const flaggedUpstream = (await upstream.listMessages(ALICE)).find(m => messageIdOf(m.source) === '<arch-3@example.org>')!;
            await upstream.setFlags(ALICE, 'INBOX', flaggedUpstream.uid, ['\\Flagged']);
            const { before: oldStatus, after: newStatus } = await upstream.recreateFolder(ALICE, 'INBOX');
            assert.notEqual(newStatus.uidValidity, oldStatus.uidValidity);

            const remap = await run(gateway, 'after reset');
            assert.equal(remap.status, 'ok', describeReport(remap));
            const spent = wire(remap, ALICE);
            assert.ok(spent < mailboxBytes * 0.05, `the remap moved ${spent} bytes for a ${mailboxBytes}-byte mailbox`);
            const after = await localMessages(gateway.imapPort, 'alice');
            assert.deepEqual(
                after.map(m => [m.uid, messageIdOf(m.source)]),
                before.map(m => [m.uid, messageIdOf(m.source)]),
                'same local messages, same UIDs, no duplicates'
            );
            assert.deepEqual(
                after.filter(m => m.flags.includes('\\Flagged')).map(m => messageIdOf(m.source)),
                ['<arch-3@example.org>'],
                'the flag set upstream came down with the remap'
            );
            const linked = gateway.daemon.store.sync.linkedMessages(ALICE, 'INBOX', newStatus.uidValidity);
            assert.equal(linked.length, 30, 'every local copy points at the new generation');
            assert.equal(gateway.daemon.store.sync.linkedMessages(ALICE, 'INBOX', oldStatus.uidValidity).length, 0);

            // CHANGEDSINCE goes on in the new generation: a flag set upstream now comes down next run.
            const renumbered = (await upstream.listMessages(ALICE)).find(m => messageIdOf(m.source) === '<arch-5@example.org>')!;
            await upstream.setFlags(ALICE, 'INBOX', renumbered.uid, ['\\Seen', '\\Answered']);

            // New mail after the reset: downloaded once.
            await upstream.deliver(ALICE, inbound({ subject: 'after the reset', messageId: '<new-after-reset@example.org>', bodyBytes: 1000 }));
            const next = await run(gateway, 'new mail');
            assert.equal(accountOf(next, ALICE).messagesReceived, 1, describeReport(next));
            const final = await localMessages(gateway.imapPort, 'alice');
            assert.equal(final.length, 31);
            assert.deepEqual(final.find(m => messageIdOf(m.source) === '<arch-5@example.org>')!.flags, ['\\Answered', '\\Seen'], 'an upstream flag change after the reset comes down');
            assert.equal(final.filter(m => messageIdOf(m.source) === '<new-after-reset@example.org>').length, 1);
            assert.equal(new Set(final.map(m => messageIdOf(m.source))).size, 31);
            const upstreamNew = (await upstream.listMessages(ALICE)).find(m => messageIdOf(m.source) === '<new-after-reset@example.org>')!;
            assert.ok(final[30].source.equals(upstreamNew.source));
            t.diagnostic(
                `UIDVALIDITY reset: ${spent} bytes on the wire (${accountOf(remap, ALICE).bytesSent} up, ${accountOf(remap, ALICE).bytesReceived} down) for ${mailboxBytes} bytes in 30 messages = ${((spent / mailboxBytes) * 100).toFixed(2)} %`
            );
        });
    });
});

// ================================================================== 6. budget

describe('budget', () => {
    test('a run stops before uplink.budget.perRun, says so, and later runs finish without duplicates', { timeout: TEST_TIMEOUT }, async t => {
        const perRun = 60_000;
        await withEnv({ users: up => [localUser(up, 'alice', { folders: ['INBOX'] })], extraYaml: `uplink:\n  budget:\n    perRun: ${perRun}` }, async ({ upstream, gateway }) => {
            const count = 10;
            for (let i = 0; i < count; i++) {
                await upstream.deliver(ALICE, inbound({ subject: `bulk ${i}`, messageId: `<bulk-${i}@example.org>`, bodyBytes: 15_000 + i * 100 }));
            }
            const sizes = (await upstream.listMessages(ALICE)).map(m => m.size);
            const largest = Math.max(...sizes);
            const total = sizes.reduce((a, b) => a + b, 0);
            assert.ok(total > perRun * 2, 'more mail than fits in one run');

            const reports: RunReport[] = [];
            for (let i = 0; i < 8; i++) {
                const report = await run(gateway, `budget ${i}`);
                reports.push(report);
                assert.ok(report.bytesTotal <= perRun, `run ${i} spent ${report.bytesTotal} bytes of ${perRun}`);
                if (report.status === 'ok') break;
                assert.equal(report.status, 'partial', describeReport(report));
                assert.match(report.message ?? '', /budget/);
                assert.ok(report.waiting.length > 0 && report.waiting.some(w => /budget/.test(w)), `the report says what waits: ${JSON.stringify(report.waiting)}`);
                assert.ok(accountOf(report, ALICE).messagesReceived > 0, `run ${i} made progress`);
            }
            assert.equal(reports[0].status, 'partial');
            assert.equal(reports[reports.length - 1].status, 'ok', `finished within ${reports.length} runs`);
            assert.ok(reports.length >= 3);
            const local = await localMessages(gateway.imapPort, 'alice');
            assert.equal(local.length, count);
            assert.equal(new Set(local.map(m => messageIdOf(m.source))).size, count, 'no duplicates');
            assert.equal(
                reports.reduce((sum, r) => sum + accountOf(r, ALICE).messagesReceived, 0),
                count
            );
            t.diagnostic(`budget ${perRun}: runs spent ${reports.map(r => r.bytesTotal).join(', ')} bytes (one message is up to ${largest})`);
        });
    });
});

// ================================================================== 7. stubs

describe('stubs and "Fetch full"', () => {
    test('a message over maxMessageSize arrives as a stub; moved into "Fetch full" it comes down whole', { timeout: TEST_TIMEOUT }, async t => {
        await withEnv({ users: up => [localUser(up, 'alice', { extra: ['maxMessageSize: 50KB'] })] }, async ({ upstream, gateway }) => {
            const raw = withAttachment({
                subject: 'the survey',
                messageId: '<survey@example.org>',
                text: 'The survey results are attached. Greetings, Carol',
                filename: 'survey-results.pdf',
                attachmentBytes: 300_000
            });
            await upstream.deliver(ALICE, raw);
            const [original] = await upstream.listMessages(ALICE);

            const first = await run(gateway, 'stub');
            assert.equal(first.status, 'ok', describeReport(first));
            assert.ok(accountOf(first, ALICE).bytesReceived < 50_000, `the stub cost ${accountOf(first, ALICE).bytesReceived} bytes down`);
            let inbox = await localMessages(gateway.imapPort, 'alice');
            assert.equal(inbox.length, 1);
            const stub = inbox[0];
            const stubText = stub.source.toString('utf8');
            assert.ok(stub.size < 50 * 1024, `RFC822.SIZE of the stub is ${stub.size}`);
            assert.match(headerBlock(stub.source), /^X-Mailmule-Stub: /im);
            assert.equal(headerValue(headerBlock(stub.source), 'Subject'), 'the survey');
            assert.equal(messageIdOf(stub.source), '<survey@example.org>');
            assert.match(stubText, /The survey results are attached\. Greetings, Carol/, 'the text part is there');
            assert.match(stubText, /survey-results\.pdf/, 'the note names the attachment');
            assert.match(stubText.replace(/=\r\n/g, ''), /Fetch full/);

            // The villager asks for the whole message.
            await withLocal(gateway.imapPort, 'alice', async client => {
                await client.mailboxCreate('Fetch full').catch(() => undefined);
                const lock = await client.getMailboxLock('INBOX');
                try {
                    assert.ok(await client.messageMove(String(stub.uid), 'Fetch full', { uid: true }));
                } finally {
                    lock.release();
                }
            });
            assert.equal((await localMessages(gateway.imapPort, 'alice', 'Fetch full')).length, 1);

            const second = await run(gateway, 'fetch full');
            assert.equal(second.status, 'ok', describeReport(second));
            inbox = await localMessages(gateway.imapPort, 'alice');
            assert.equal(inbox.length, 1, 'one message in INBOX: the full one, no stub');
            assert.ok(inbox[0].source.equals(original.source), "byte-identical to the provider's copy");
            assert.equal(inbox[0].size, original.size);
            assert.doesNotMatch(headerBlock(inbox[0].source), /^X-Mailmule-Stub/im);
            assert.equal((await localMessages(gateway.imapPort, 'alice', 'Fetch full')).length, 0, '"Fetch full" is empty');
            const third = await run(gateway, 'quiet');
            assert.equal(accountOf(third, ALICE).messagesReceived, 0);
            assert.equal((await localMessages(gateway.imapPort, 'alice')).length, 1);
            t.diagnostic(
                `stub ${stub.size} bytes (run ${accountOf(first, ALICE).bytesReceived} down) for a ${original.size}-byte message; fetch full run ${accountOf(second, ALICE).bytesReceived} down`
            );
        });
    });
});

// ================================================================== 8. OAuth2

describe('OAuth2', () => {
    test('XOAUTH2 for SMTP and IMAP with one token from the token endpoint, refreshed when revoked, never logged', { timeout: TEST_TIMEOUT }, async () => {
        await withEnv(
            {
                upstream: { oauth2: true },
                users: up => [
                    localUser(up, 'alice', {
                        credentials: `{ oauth2: { clientId: ${JSON.stringify(up.oauth!.clientId)}, refreshToken: ${JSON.stringify(up.oauth!.refreshTokenFor(ALICE))}, tokenUrl: ${JSON.stringify(up.oauth!.tokenUrl)} } }`
                    })
                ]
            },
            async ({ upstream, gateway }) => {
                const oauth = upstream.oauth!;
                await upstream.deliver(ALICE, inbound({ subject: 'via oauth', messageId: '<oauth-in@example.org>' }));
                const transport = smtpTransport(gateway, 'alice');
                await transport.sendMail({ from: ALICE, to: 'carol@example.org', subject: 'out via oauth', messageId: '<oauth-out@upstream.test>', text: 'hi' });
                transport.close();

                const report = await run(gateway, 'oauth');
                assert.equal(report.status, 'ok', describeReport(report));
                assert.equal(accountOf(report, ALICE).messagesSent, 1);
                assert.equal(accountOf(report, ALICE).messagesReceived, 1);
                const [copy] = await upstream.waitForMessages(upstream.catchall.address, 'INBOX', 1);
                assert.equal(messageIdOf(copy.source), '<oauth-out@upstream.test>');
                const local = await localMessages(gateway.imapPort, 'alice');
                assert.deepEqual(
                    local.map(m => messageIdOf(m.source)),
                    ['<oauth-in@example.org>']
                );

                const stats = oauth.stats();
                assert.equal(stats.tokenRequests, 1, 'one token for SMTP and IMAP');
                assert.ok(stats.introspections >= 2, `Dovecot checked the token for both protocols (${stats.introspections} introspections)`);
                const again = await run(gateway, 'oauth again');
                assert.equal(again.status, 'ok', describeReport(again));
                assert.equal(oauth.stats().tokenRequests, 1, 'the cached token is reused by the next run');

                // The provider revokes the token early: each protocol gets a fresh one and carries on.
                oauth.revokeAccessTokens();
                await upstream.deliver(ALICE, inbound({ subject: 'after revocation', messageId: '<oauth-in-2@example.org>' }));
                const imapAfterRevoke = await run(gateway, 'revoked imap', { receiveOnly: true });
                assert.equal(imapAfterRevoke.status, 'ok', describeReport(imapAfterRevoke));
                assert.equal(accountOf(imapAfterRevoke, ALICE).messagesReceived, 1);
                assert.equal(oauth.stats().tokenRequests, 2);
                oauth.revokeAccessTokens();
                const t2 = smtpTransport(gateway, 'alice');
                await t2.sendMail({ from: ALICE, to: 'carol@example.org', subject: 'after revocation', messageId: '<oauth-out-2@upstream.test>', text: 'hi' });
                t2.close();
                const smtpAfterRevoke = await run(gateway, 'revoked smtp', { sendOnly: true });
                assert.equal(smtpAfterRevoke.status, 'ok', describeReport(smtpAfterRevoke));
                assert.equal(accountOf(smtpAfterRevoke, ALICE).messagesSent, 1);
                assert.equal(oauth.stats().tokenRequests, 3);
                await upstream.waitForMessages(upstream.catchall.address, 'INBOX', 2);

                const logs = gateway.logLines.join('\n');
                assert.doesNotMatch(logs, /\bat-[0-9a-f]{32}\b/, 'no access token in the log');
                assert.ok(!logs.includes(oauth.refreshTokenFor(ALICE)), 'no refresh token in the log');
            }
        );
    });
});

// ================================================================== 9. hooks, probe, one run at a time

function sh(command: string, args: string[]): Promise<void> {
    return new Promise((resolve, reject) => execFile(command, args, { timeout: 5000 }, (err: Error | null) => (err ? reject(err) : resolve())));
}

/**
 * A FIFO for an `up` hook to wait on (`read line < fifo`): the run is held inside its hook until
 * release() writes a line. release() retries every 20 ms until the hook has the FIFO open (bounded).
 */
async function fifoGate(): Promise<{ path: string; release(): Promise<void>; close(): void }> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailmule-fifo-'));
    const fifo = path.join(dir, 'go');
    await sh('mkfifo', [fifo]);
    const releaseOnce = async (): Promise<boolean> => {
        try {
            // Non-blocking open for writing fails (ENXIO) while nobody reads.
            const handle = await fs.promises.open(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
            await handle.write('go\n');
            await handle.close();
            return true;
        } catch {
            return false;
        }
    };
    return {
        path: fifo,
        async release() {
            const deadline = Date.now() + 10_000;
            while (!(await releaseOnce())) {
                if (Date.now() > deadline) throw new Error('the up hook never opened the FIFO');
                await new Promise(resolve => setTimeout(resolve, 20));
            }
        },
        close: () => fs.rmSync(dir, { recursive: true, force: true })
    };
}

describe('hooks and probe', () => {
    test('a probe that does not answer skips the run ("no link"), in process and through the CLI', { timeout: TEST_TIMEOUT }, async () => {
        const closed = await freePort();
        await withEnv({ users: up => [localUser(up, 'alice')], extraYaml: `uplink:\n  probe: "127.0.0.1:${closed}"` }, async ({ upstream, gateway }) => {
            await upstream.deliver(ALICE, inbound({ subject: 'waits', messageId: '<waits@example.org>' }));
            const report = await run(gateway, 'probe');
            assert.equal(report.status, 'skipped');
            assert.match(report.message ?? '', /no link/);
            assert.equal(report.accounts.length, 0);
            const result = await cli(['sync', '-c', gateway.configFile]);
            assert.match(result.stdout, /skipped \(no link/, cliText(result)); // exit code 4: see the exit-code test below
            assert.equal((await localMessages(gateway.imapPort, 'alice')).length, 0);
            assert.equal(gateway.daemon.store.runs.last()!.status, 'skipped');
        });
    });

    test('up and down hooks run around the run and their output is logged; a failing up hook skips the run', { timeout: TEST_TIMEOUT }, async () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailmule-hooks-'));
        const trail = path.join(dir, 'trail');
        const failFlag = path.join(dir, 'fail-up');
        try {
            const upHook = `echo up-hook-says-hello; echo up >> ${trail}; if [ -e ${failFlag} ]; then echo up-hook-failing >&2; exit 3; fi`;
            const downHook = `echo down-hook-says-bye; echo down >> ${trail}`;
            await withEnv(
                { users: up => [localUser(up, 'alice')], extraYaml: `uplink:\n  up: ${JSON.stringify(upHook)}\n  down: ${JSON.stringify(downHook)}\n  hookTimeout: 20` },
                async ({ upstream, gateway }) => {
                    await upstream.deliver(ALICE, inbound({ subject: 'hooked', messageId: '<hooked@example.org>' }));
                    const report = await run(gateway, 'hooks');
                    assert.equal(report.status, 'ok', describeReport(report));
                    assert.equal(accountOf(report, ALICE).messagesReceived, 1);
                    assert.equal(fs.readFileSync(trail, 'utf8'), 'up\ndown\n');
                    const logged = gateway.logLines.map(line => JSON.parse(line));
                    assert.ok(
                        logged.some(l => l.hook === 'up' && /up-hook-says-hello/.test(l.output) && l.exitCode === 0),
                        "the up hook's output is logged"
                    );
                    assert.ok(
                        logged.some(l => l.hook === 'down' && /down-hook-says-bye/.test(l.output)),
                        "the down hook's output is logged"
                    );

                    fs.writeFileSync(failFlag, '');
                    await upstream.deliver(ALICE, inbound({ subject: 'not yet', messageId: '<not-yet@example.org>' }));
                    const skipped = await run(gateway, 'failing up');
                    assert.equal(skipped.status, 'skipped');
                    assert.match(skipped.message ?? '', /up hook/);
                    assert.ok(
                        gateway.logLines.some(line => /up-hook-failing/.test(line) && /"exitCode":3/.test(line)),
                        "the failing hook's output is logged"
                    );
                    assert.equal((await localMessages(gateway.imapPort, 'alice')).length, 1, 'nothing was fetched');
                }
            );
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });

    test('one run at a time: a second run while one is in progress fails (RunInProgressError; the CLI says so)', { timeout: TEST_TIMEOUT }, async () => {
        const gate = await fifoGate();
        try {
            await withEnv(
                { users: up => [localUser(up, 'alice')], extraYaml: `uplink:\n  up: ${JSON.stringify(`read line < ${gate.path}; echo released: $line`)}\n  hookTimeout: 20` },
                async ({ upstream, gateway }) => {
                    await upstream.deliver(ALICE, inbound({ subject: 'slow run', messageId: '<slow@example.org>' }));
                    const first = run(gateway, 'held by the up hook');
                    try {
                        assert.equal(gateway.daemon.uplink!.isRunning(), true);
                        assert.ok(fs.existsSync(path.join(gateway.daemon.store.dataDir, 'uplink.lock')), 'the lock file is taken');
                        await assert.rejects(run(gateway, 'second'), RunInProgressError);
                        const busy = await cli(['sync', '-c', gateway.configFile]);
                        assert.match(busy.stderr, /already in progress/, cliText(busy)); // exit code 5: see the exit-code test below
                    } finally {
                        await gate.release();
                        await first.catch(() => undefined);
                    }
                    const report = await first;
                    assert.equal(report.status, 'ok', describeReport(report));
                    assert.equal(accountOf(report, ALICE).messagesReceived, 1);
                    assert.ok(
                        gateway.logLines.some(line => /released: go/.test(line)),
                        'the hook output is logged'
                    );
                    assert.equal(gateway.daemon.uplink!.isRunning(), false);
                    assert.ok(!fs.existsSync(path.join(gateway.daemon.store.dataDir, 'uplink.lock')), 'the lock file is gone');
                    // The next one may start.
                    const next = run(gateway, 'after');
                    await gate.release();
                    assert.equal((await next).status, 'ok');
                }
            );
        } finally {
            gate.close();
        }
    });

    test('mailmule sync exits 4 when the run is skipped and 5 when one is in progress', { timeout: TEST_TIMEOUT }, async () => {
        const gate = await fifoGate();
        const closed = await freePort();
        try {
            await withEnv(
                {
                    users: up => [localUser(up, 'alice')],
                    extraYaml: `uplink:\n  up: ${JSON.stringify(`read line < ${gate.path}`)}\n  probe: "127.0.0.1:${closed}"\n  hookTimeout: 20`
                },
                async ({ gateway }) => {
                    const first = run(gateway, 'held');
                    try {
                        const busy = await cli(['sync', '-c', gateway.configFile]);
                        assert.equal(busy.code, 5, cliText(busy));
                    } finally {
                        await gate.release();
                        await first.catch(() => undefined);
                    }
                    assert.equal((await first).status, 'skipped');
                    const skipped = cli(['sync', '-c', gateway.configFile]);
                    await gate.release();
                    const result = await skipped;
                    assert.match(result.stdout, /skipped \(no link/, cliText(result));
                    assert.equal(result.code, 4, cliText(result));
                }
            );
        } finally {
            gate.close();
        }
    });
});

// ================================================================== 10. status

describe('status', () => {
    test('mailmule status --json shows the last run, the queue and bytes today per account', { timeout: TEST_TIMEOUT }, async () => {
        await withEnv({ users: up => [localUser(up, 'alice'), localUser(up, 'bob')] }, async ({ upstream, gateway }) => {
            await upstream.deliver(ALICE, inbound({ subject: 'status', messageId: '<status@example.org>' }));
            const transport = smtpTransport(gateway, 'alice');
            await transport.sendMail({ from: ALICE, to: 'carol@example.org', subject: 'status out', text: 'x' });
            await transport.sendMail({ from: ALICE, to: 'carol@example.org', subject: 'status out 2', text: 'y' });
            transport.close();

            const first = await run(gateway, 'status 1');
            const second = await run(gateway, 'status 2');
            assert.equal(first.status, 'ok', describeReport(first));
            const result = await cli(['status', '--json', '-c', gateway.configFile]);
            assert.equal(result.code, 0, cliText(result));
            const status = JSON.parse(result.stdout);
            assert.equal(status.daemon.running, true);
            assert.equal(status.daemon.pid, process.pid);
            assert.equal(status.lastRun.id, second.runId);
            assert.equal(status.lastRun.status, 'ok');
            assert.equal(status.lastRun.trigger, 'status 2');
            assert.deepEqual(
                status.lastRun.accounts.map((a: { account: string }) => a.account),
                [ALICE, BOB]
            );
            assert.equal(status.queue.sent, 2);
            assert.equal(status.queue.deferred, 0);
            assert.equal(status.queue.queued, 0);
            for (const address of [ALICE, BOB]) {
                const row = status.bytesToday.find((r: { account: string }) => r.account === address);
                assert.ok(row, `bytes today for ${address}`);
                const expectedSent = accountOf(first, address).bytesSent + accountOf(second, address).bytesSent;
                const expectedReceived = accountOf(first, address).bytesReceived + accountOf(second, address).bytesReceived;
                assert.equal(row.bytesSent, expectedSent);
                assert.equal(row.bytesReceived, expectedReceived);
                assert.ok(row.bytesSent > 0 && row.bytesReceived > 0);
            }
        });
    });
});

// ================================================================== 11. 4xx / 5xx

describe('provider errors', () => {
    test('a recipient rejected with 5xx fails and bounces while the others are delivered; an expired message bounces unsent', { timeout: TEST_TIMEOUT }, async () => {
        await withEnv({ users: up => [localUser(up, 'alice')], extraYaml: 'queue:\n  maxAge: 1h' }, async ({ upstream, gateway }) => {
            const store = gateway.daemon.store;
            const transport = smtpTransport(gateway, 'alice');
            await transport.sendMail({ from: ALICE, to: [BOB, 'nosuchuser@upstream.test', 'carol@example.org'], subject: 'mixed fortunes', messageId: '<mixed@upstream.test>', text: 'hello' });
            transport.close();
            const [entry] = store.queue.list();

            const report = await run(gateway, 'rcpt errors');
            const after = store.queue.get(entry.id)!;
            assert.equal(after.state, 'sent');
            const byAddress = Object.fromEntries(after.recipients.map(r => [r.address, r.state]));
            assert.deepEqual(byAddress, { [BOB]: 'sent', 'nosuchuser@upstream.test': 'failed', 'carol@example.org': 'sent' });
            assert.match(after.recipients.find(r => r.address === 'nosuchuser@upstream.test')!.lastError ?? '', /^5\d\d|5\.\d\.\d/);
            await upstream.waitForMessages(BOB, 'INBOX', 1);
            await upstream.waitForMessages(upstream.catchall.address, 'INBOX', 1);
            assert.deepEqual(
                (await upstream.sentCopies()).map(c => c.envelopeTo),
                ['carol@example.org']
            );
            // The run reports the refused recipient (not a silent 'ok').
            assert.equal(report.status, 'partial', describeReport(report));
            assert.ok(
                accountOf(report, ALICE).errors.some(e => /nosuchuser@upstream\.test/.test(e) && /5\.1\.1/.test(e)),
                JSON.stringify(accountOf(report, ALICE).errors)
            );

            let inbox = await localMessages(gateway.imapPort, 'alice');
            const bounces = inbox.filter(m => /multipart\/report/i.test(headerBlock(m.source)));
            assert.equal(bounces.length, 1, "a DSN in the sender's local INBOX");
            const dsn = bounces[0].source.toString('utf8');
            assert.match(dsn, /Final-Recipient: rfc822; ?nosuchuser@upstream\.test/i);
            assert.match(dsn, /Status: 5\.\d\.\d/);
            assert.match(dsn, /Action: failed/);
            assert.doesNotMatch(dsn, /Final-Recipient: rfc822; ?bob@upstream\.test/i);
            assert.match(dsn, /mixed fortunes/, 'the original headers are included');

            // A message older than queue.maxAge (1 h here) fails and bounces without being sent.
            const t2 = smtpTransport(gateway, 'alice');
            await t2.sendMail({ from: ALICE, to: 'carol@example.org', subject: 'too late', messageId: '<too-late@upstream.test>', text: 'stale' });
            t2.close();
            const stale = store.queue.list({ states: ['queued'] })[0];
            setQueueEntry(store, stale.id, { createdAt: Date.now() - 2 * 3600_000 });
            const expired = await run(gateway, 'expiry', { sendOnly: true });
            assert.equal(accountOf(expired, ALICE).messagesSent, 0);
            assert.equal(wire(expired, ALICE), 0, 'no connection to the provider at all');
            assert.ok(accountOf(expired, ALICE).errors.some(e => /expired/.test(e)));
            const staleAfter = store.queue.get(stale.id)!;
            assert.equal(staleAfter.state, 'failed');
            assert.deepEqual(
                staleAfter.recipients.map(r => r.state),
                ['failed']
            );
            inbox = await localMessages(gateway.imapPort, 'alice');
            const expiryBounce = inbox.filter(m => /multipart\/report/i.test(headerBlock(m.source)) && /too late/.test(m.source.toString('utf8')));
            assert.equal(expiryBounce.length, 1);
            assert.match(expiryBounce[0].source.toString('utf8'), /Status: 4\.4\.7/);
            // Nothing more will try it.
            const later = await run(gateway, 'after expiry', { sendOnly: true });
            assert.equal(accountOf(later, ALICE).messagesSent, 0);
            assert.equal(store.queue.get(stale.id)!.state, 'failed');
        });
    });

    test('a recipient deferred with 4xx stays queued while the others are delivered, and is not sent twice', { timeout: TEST_TIMEOUT }, async () => {
        // soft_bounce turns Postfix's 5xx RCPT rejects into 4xx.
        await withEnv({ upstream: { postfixExtra: 'soft_bounce = yes' }, users: up => [localUser(up, 'alice')] }, async ({ upstream, gateway }) => {
            const store = gateway.daemon.store;
            const transport = smtpTransport(gateway, 'alice');
            await transport.sendMail({ from: ALICE, to: [BOB, 'later@upstream.test'], subject: 'try again', messageId: '<soft@upstream.test>', text: randomBase64(30_000) });
            transport.close();
            const [entry] = store.queue.list();
            const report = await run(gateway, 'soft');
            assert.equal(accountOf(report, ALICE).messagesSent, 1, describeReport(report));
            assert.equal(report.status, 'partial');
            assert.ok(
                accountOf(report, ALICE).errors.some(e => /later@upstream\.test/.test(e) && /deferred/.test(e)),
                JSON.stringify(accountOf(report, ALICE).errors)
            );
            const after = store.queue.get(entry.id)!;
            assert.equal(after.state, 'deferred');
            assert.ok(after.nextAttemptAt && after.nextAttemptAt > Date.now(), 'retried later, with backoff');
            assert.deepEqual(Object.fromEntries(after.recipients.map(r => [r.address, r.state])), { [BOB]: 'sent', 'later@upstream.test': 'pending' });
            await upstream.waitForMessages(BOB, 'INBOX', 1);
            assert.equal((await localMessages(gateway.imapPort, 'alice')).filter(m => /multipart\/report/i.test(headerBlock(m.source))).length, 0, 'no bounce for a 4xx');

            // Retry now: only the pending recipient is tried again. Postfix refuses it at RCPT, so no
            // DATA goes out at all (fewer bytes up than the message is long): bob gets no second copy.
            assert.equal(store.queue.retry(entry.id), 1);
            const retry = await run(gateway, 'retry', { sendOnly: true });
            assert.equal(accountOf(retry, ALICE).messagesSent, 0, describeReport(retry));
            assert.ok(accountOf(retry, ALICE).bytesSent > 0 && accountOf(retry, ALICE).bytesSent < entry.size, `retry sent ${accountOf(retry, ALICE).bytesSent} bytes, message ${entry.size}`);
            const retried = store.queue.get(entry.id)!;
            assert.equal(retried.state, 'deferred');
            assert.deepEqual(Object.fromEntries(retried.recipients.map(r => [r.address, r.state])), { [BOB]: 'sent', 'later@upstream.test': 'pending' });
            assert.equal(retried.attempts, after.attempts + 1);
        });
    });
});
