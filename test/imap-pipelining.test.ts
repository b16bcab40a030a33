/**
 * Many commands in flight (issue 15): mbsync pipelines hundreds of small UID FETCHes, and a pull
 * of a real mailbox once ended in "Maximum call stack size exceeded" and a command answered twice
 * (OK, then NO [TEMPFAIL], imap-core's answer to a failed hook before patch 090), because handling
 * the next command nested inside the completion of the previous one.
 *
 * The daemon runs as its own process with a V8 stack of 400 KB (the default is 984 KB), so a
 * call depth that grows with the number of pipelined commands overflows early instead of hiding
 * below the limit:
 *   1. mbsync pushes 5,000 small messages into an empty INBOX and pulls them back: the same bytes;
 *   2. the same with 2,796 real messages (SpamAssassin corpus, easy-ham-2 and spam-2: 8-bit
 *      headers, broken MIME, HTML spam);
 *   3. a raw client writes 20,000 `UID FETCH n (BODY.PEEK[])` in one go and gets 20,000 tagged
 *      OKs, each tag once and in order.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ImapFlow } from 'imapflow';
import { setup, startDaemon, killAllDaemons, type DaemonProcess, type Setup } from './support/daemon-process';
import { mbsyncConfig, runMbsync, readMaildir, toLf, withoutTuid } from './support/mbsync-kit';
import { corpusGroup } from './support/fixtures/spam-assassin';

const STACK_KB = 400;
const SMALL_COUNT = 5000;
const PIPELINED = 20_000;
const MBSYNC_TIMEOUT_MS = 240_000;
const ALICE = { name: 'alice', password: 'alice-pipeline-pw' };
const BOB = { name: 'bob', password: 'bob-pipeline-pw' };

let daemon: DaemonProcess;
let env: Setup;
let stackOverflows: () => number;

before(async () => {
    env = await setup({ users: [ALICE, BOB], plaintext: true, prefix: 'mailmule-pipeline-' });
    daemon = await startDaemon(env.configFile, [`--stack-size=${STACK_KB}`]);
    stackOverflows = daemon.watch(/Maximum call stack|RangeError/);
});

after(async () => {
    await killAllDaemons();
    if (env) fs.rmSync(env.dir, { recursive: true, force: true });
});

/** A small text message: distinct headers and a body of 200 to 2,000 bytes, LF line endings as in a Maildir. */
function smallMessage(n: number): Buffer {
    const words = crypto.createHash('sha256').update(String(n)).digest('hex');
    const body = Array.from({ length: 2 + (n % 20) }, (_, i) => `Line ${i} of message ${n}: ${words}`).join('\n');
    return Buffer.from(
        [
            `From: Sender ${n % 97} <sender${n % 97}@example.org>`,
            'To: alice@mailmule.lan',
            `Subject: Small message ${n}`,
            `Date: Mon, 23 Nov 2026 ${String(n % 24).padStart(2, '0')}:00:00 +0000`,
            `Message-ID: <small-${n}@pipeline.test>`,
            'MIME-Version: 1.0',
            'Content-Type: text/plain; charset=us-ascii',
            '',
            body,
            ''
        ].join('\n')
    );
}

/** Writes messages as a Maildir INBOX under `dir`/mail, as mbsync's near side expects. */
function writeMaildir(dir: string, messages: Buffer[]): void {
    const cur = path.join(dir, 'mail', 'INBOX', 'cur');
    for (const sub of ['cur', 'new', 'tmp']) fs.mkdirSync(path.join(dir, 'mail', 'INBOX', sub), { recursive: true });
    messages.forEach((raw, n) => fs.writeFileSync(path.join(cur, `${1_700_000_000 + n}.${n}.pipeline:2,S`), raw));
}

/**
 * The content as compared across the round trip: LF line ends and no X-TUID line (mbsync's Maildir
 * driver stores LF and adds X-TUID), and no bare CR: mbsync drops a CR that does not end a line
 * when it converts a Maildir file to CRLF for APPEND (8 of the spam-2 messages have some), so
 * those bytes never reach the server. The server itself keeps them (the test after the corpus).
 */
function normalised(raw: Buffer): string {
    const text = withoutTuid(toLf(raw)).toString('latin1').replace(/\r/g, '');
    return crypto.createHash('sha256').update(text, 'latin1').digest('hex');
}

async function pushThenPull(user: { name: string; password: string }, messages: Buffer[], label: string): Promise<void> {
    const pushDir = fs.mkdtempSync(path.join(env.dir, `push-${label}-`));
    writeMaildir(pushDir, messages);
    const common = { port: env.imapPort, user: user.name, pass: user.password, tls: false as const, patterns: 'INBOX' };
    await runMbsync(pushDir, mbsyncConfig({ ...common, dir: pushDir, sync: 'Push' }), `push-${label}`, MBSYNC_TIMEOUT_MS);

    const pullDir = fs.mkdtempSync(path.join(env.dir, `pull-${label}-`));
    await runMbsync(pullDir, mbsyncConfig({ ...common, dir: pullDir, sync: 'Pull' }), `pull-${label}`, MBSYNC_TIMEOUT_MS);
    const pulled = readMaildir(path.join(pullDir, 'mail'));
    assert.equal(pulled.length, messages.length, `${label}: every pushed message comes back`);
    const expected = messages.map(normalised).sort();
    const actual = pulled.map(file => normalised(file.content)).sort();
    assert.deepEqual(actual, expected, `${label}: byte-identical after the round trip`);
    assert.ok(daemon.running, 'the daemon is still running');
    assert.equal(stackOverflows(), 0, `no stack overflow in the daemon's log:\n${daemon.lines.slice(-20).join('\n')}`);
}

test('mbsync pushes 5,000 small messages into an empty INBOX and pulls them back byte-identical', { timeout: 2 * MBSYNC_TIMEOUT_MS }, async () => {
    await pushThenPull(
        ALICE,
        Array.from({ length: SMALL_COUNT }, (_, n) => smallMessage(n)),
        'small'
    );
});

test('mbsync pushes and pulls back 2,796 real messages (SpamAssassin easy-ham-2 and spam-2) byte-identical', { timeout: 2 * MBSYNC_TIMEOUT_MS }, async () => {
    const messages = [...corpusGroup('easy-ham-2'), ...corpusGroup('spam-2')];
    assert.equal(messages.length, 2796);
    await pushThenPull(BOB, messages, 'corpus');
});

test('bare CRs in a message survive APPEND and FETCH (what mbsync drops is its own doing)', { timeout: 30_000 }, async () => {
    const client = new ImapFlow({ host: '127.0.0.1', port: env.imapPort, secure: false, auth: { user: BOB.name, pass: BOB.password }, logger: false, tls: { rejectUnauthorized: false } });
    await client.connect();
    try {
        const raw = Buffer.from('Subject: bare CR\r\n\r\nline one\r\r\r\nline two\rand more\r\n', 'latin1');
        await client.mailboxCreate('BareCR');
        const appended = await client.append('BareCR', raw);
        assert.ok(appended && appended.uid);
        await client.mailboxOpen('BareCR');
        const message = await client.fetchOne(String(appended.uid), { source: true }, { uid: true });
        assert.ok(message && message.source);
        assert.equal(message.source.toString('latin1'), raw.toString('latin1'));
    } finally {
        await client.logout();
    }
});

test(`${PIPELINED} pipelined UID FETCHes in one write get ${PIPELINED} tagged OKs, each once and in order`, { timeout: 300_000 }, async () => {
    const socket = net.connect(env.imapPort, '127.0.0.1');
    const tagged: string[] = [];
    let fetches = 0;
    let rest = '';
    let waiter: { tag: string; resolve: () => void } | null = null;
    socket.on('data', chunk => {
        const lines = (rest + chunk.toString('latin1')).split('\r\n');
        rest = lines.pop() ?? '';
        for (const line of lines) {
            if (/^\* \d+ FETCH /.test(line)) fetches++;
            const tag = /^([a-z]\d+) (OK|NO|BAD) /.exec(line);
            if (!tag) continue;
            tagged.push(line);
            if (waiter && tag[1] === waiter.tag) {
                const { resolve } = waiter;
                waiter = null;
                resolve();
            }
        }
    });
    const closed = new Promise<void>(resolve => socket.once('close', () => resolve()));
    const until = (tag: string, ms: number) =>
        new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`no tagged reply to ${tag} within ${ms} ms; ${tagged.length} tagged replies so far`)), ms);
            waiter = { tag, resolve: () => (clearTimeout(timer), resolve()) };
        });
    try {
        let ready = until('s1', 10_000);
        socket.write(`l1 LOGIN ${ALICE.name} ${ALICE.password}\r\ns1 SELECT INBOX\r\n`);
        await ready;
        assert.deepEqual(
            tagged.map(line => line.split(' ')[1]),
            ['OK', 'OK'],
            tagged.join('\n')
        );
        const messages = SMALL_COUNT;
        tagged.length = 0;
        fetches = 0;

        const commands: string[] = [];
        for (let i = 1; i <= PIPELINED; i++) commands.push(`t${i} UID FETCH ${1 + (i % messages)} (BODY.PEEK[])\r\n`);
        ready = until(`t${PIPELINED}`, 240_000);
        socket.write(commands.join(''));
        await ready;

        assert.equal(tagged.length, PIPELINED, 'one tagged reply per command');
        const misplaced = tagged.findIndex((line, i) => !line.startsWith(`t${i + 1} OK `));
        assert.equal(misplaced, -1, `reply ${misplaced + 1} is "${tagged[misplaced]}"`);
        assert.equal(fetches, PIPELINED, 'one FETCH response per command');
        assert.equal(stackOverflows(), 0, 'no stack overflow in the daemon');
        assert.ok(daemon.running);
    } finally {
        socket.end('z1 LOGOUT\r\n');
        await closed;
    }
});
