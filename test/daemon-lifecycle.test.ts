/**
 * `mailmule start` runs whole or not at all, and SIGTERM/SIGINT always end it cleanly (issue 10,
 * item 7). The daemon is a child process on real loopback ports.
 *
 * - A listener that cannot be bound (its port taken by another program, the data directory's
 *   control socket held by another daemon) makes `start` exit 8 with the reason in words, after
 *   closing what it had opened: the process ends by itself, and its control socket and store are
 *   closed (no `mailmule.sqlite-wal` is left: SQLite checkpoints and deletes it when the last
 *   connection closes cleanly, and leaves it after a kill).
 * - SIGTERM during normal operation: exit 0; a message whose 250 was sent is kept, one whose DATA
 *   was still arriving is not stored, and the store is closed.
 * - SIGINT the same; a client left on the control socket does not hold the shutdown up; a second
 *   signal during the shutdown exits at once.
 * - SIGTERM during start-up. Start-up runs without yielding to the event loop up to the first
 *   listener whose host needs a lookup, and a signal is handled only there, so the test names the
 *   listeners `localhost`, and holds SQLite's write lock on the store while it sends the signal:
 *   start-up's first write (the recovery pass) waits for the lock (busy_timeout), so the signal
 *   is sure to arrive before any listener is bound. The daemon prints "mailmule: using FILE" on
 *   stderr only after its signal handlers are installed, so a signal sent after that line is
 *   never the default (fatal) one.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import Database from 'better-sqlite3';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { DaemonProcess, MAIN, killAllDaemons, setup, startDaemon, type Setup } from './support/daemon-process';
import { withTimeout } from './support/wait';
import { beginData, loggedIn } from './support/raw-smtp';
import { bind, ListenError } from '../src/listen';

const HOST = '127.0.0.1';
const USERS = [
    { name: 'alice', password: 'alice-lifecycle-pw' },
    { name: 'bob', password: 'bob-lifecycle-pw' }
];
/** `mailmule start` could not bind a listener (src/cli/main.ts EXIT.LISTEN_FAILED). */
const EXIT_LISTEN_FAILED = 8;

const dirs: string[] = [];
after(async () => {
    await killAllDaemons();
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

async function newSetup(): Promise<Setup> {
    const s = await setup({ users: USERS, prefix: 'mailmule-lifecycle-' });
    dirs.push(s.dir);
    return s;
}

/** The listener ports in mailmule.yaml, in writeConfig's order: IMAP starttls, IMAP tls, SMTP starttls, SMTP tls. */
function listenerPorts(configFile: string): number[] {
    return [...fs.readFileSync(configFile, 'utf8').matchAll(/^ +port: (\d+)$/gm)].map(match => Number(match[1]));
}

/** Another program on `port`. */
async function occupy(port: number): Promise<net.Server> {
    const server = net.createServer(socket => socket.destroy());
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, HOST, () => resolve()));
    return server;
}

/** The store was closed, not abandoned: no WAL left, no control socket, and the database is sound. */
function assertClosedCleanly(s: Setup, output: string): void {
    const database = path.join(s.dataDir, 'mailmule.sqlite');
    assert.ok(!fs.existsSync(`${database}-wal`), `mailmule.sqlite-wal is left: the store was not closed\n${output}`);
    assert.ok(!fs.existsSync(path.join(s.dataDir, 'control.sock')), `the control socket is left\n${output}`);
    const db = new Database(database);
    try {
        assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
    } finally {
        db.close();
    }
}

/** Messages per user, as `mailmule users --json` reports them (the store opened by another process). */
function messagesPerUser(s: Setup): Record<string, number> {
    const result = spawnSync(process.execPath, [MAIN, 'users', '--json', '-c', s.configFile], { encoding: 'utf8', timeout: 30000 });
    assert.equal(result.status, 0, result.stderr);
    return Object.fromEntries((JSON.parse(result.stdout) as { name: string; messages: number }[]).map(row => [row.name, row.messages]));
}

/** Holds SQLite's write lock on the store until release(): the daemon's start-up waits at its first write. */
function lockStore(s: Setup): { release(): void } {
    const db = new Database(path.join(s.dataDir, 'mailmule.sqlite'));
    db.exec('BEGIN IMMEDIATE');
    return {
        release() {
            db.exec('ROLLBACK');
            db.close();
        }
    };
}

const usingLine = (p: DaemonProcess) => p.stderr.includes('mailmule: using ');

// ------------------------------------------------------------------ a listener that cannot be bound

for (const [name, index] of [
    ['SMTP starttls', 2],
    ['IMAP tls', 1]
] as const) {
    test(`a taken ${name} port: start exits ${EXIT_LISTEN_FAILED} with the reason, having closed every listener and the store`, { timeout: 60000 }, async () => {
        const s = await newSetup();
        const ports = listenerPorts(s.configFile);
        assert.equal(ports.length, 4);
        const blocker = await occupy(ports[index]);
        try {
            const start = DaemonProcess.spawn(s.configFile);
            const exit = await start.exited();
            assert.deepEqual(exit, { code: EXIT_LISTEN_FAILED, signal: null }, start.output);
            const reason = `port ${ports[index]} on ${HOST} is already in use`;
            assert.match(start.stderr, new RegExp(`^mailmule: cannot start the ${name} listener: ${reason}.*\\[EADDRINUSE\\]$`, 'm'), start.output);
            const fatal = start.records().find(record => record.level === 60);
            assert.ok(fatal && String(fatal.msg).includes(reason), start.output);
            assert.ok(!start.records().some(record => record.msg === 'mailmule started'), start.output);
            // Listeners bound before the failure (IMAP's for a taken SMTP port) were open and are closed.
            assert.ok(start.stdout.includes('IMAP Server listening'), start.output);
            assert.ok(start.stdout.includes('IMAP Server closed'), start.output);
            assertClosedCleanly(s, start.output);
        } finally {
            blocker.close();
        }
    });
}

test(`a second daemon on the same data directory exits ${EXIT_LISTEN_FAILED} and leaves the first one untouched`, { timeout: 60000 }, async () => {
    const s = await newSetup();
    const first = await startDaemon(s.configFile);
    const second = DaemonProcess.spawn(s.configFile);
    const exit = await second.exited();
    assert.deepEqual(exit, { code: EXIT_LISTEN_FAILED, signal: null }, second.output);
    assert.match(second.stderr, /^mailmule: cannot start the control socket: another mailmule daemon is running on .*control\.sock$/m, second.output);
    // It stopped before touching anything: the first daemon's socket is still there and it still serves.
    assert.ok(first.running);
    assert.ok(fs.existsSync(path.join(s.dataDir, 'control.sock')));
    const smtp = new SMTPConnection({ host: HOST, port: s.smtpPort, ignoreTLS: true });
    await new Promise<void>((resolve, reject) => smtp.connect(err => (err ? reject(err) : resolve())));
    smtp.quit();
    assert.equal(await first.stop(), 0);
});

test('bind failures are worded for an admin: a port in use, an address not on this machine', async () => {
    const taken = await occupy(0);
    const port = (taken.address() as net.AddressInfo).port;
    try {
        await assert.rejects(bind(net.createServer(), 'the SMTP starttls listener', HOST, port), (err: unknown) => {
            assert.ok(err instanceof ListenError);
            assert.equal(err.code, 'EADDRINUSE');
            assert.equal(err.address, `${HOST}:${port}`);
            assert.match(err.message, new RegExp(`^cannot start the SMTP starttls listener: port ${port} on 127\\.0\\.0\\.1 is already in use; `));
            return true;
        });
    } finally {
        taken.close();
    }
    // 192.0.2.1 (TEST-NET-1) is never configured on a machine; nothing is sent, the bind alone fails.
    await assert.rejects(bind(net.createServer(), 'the IMAP tls listener', '192.0.2.1', 0), {
        name: 'ListenError',
        code: 'EADDRNOTAVAIL',
        message: 'cannot start the IMAP tls listener: 192.0.2.1 is not an address of this machine [EADDRNOTAVAIL]'
    });
});

// ------------------------------------------------------------------ signals

function message(subject: string): string {
    return [`From: alice@mailmule.lan`, 'To: bob@mailmule.lan', `Subject: ${subject}`, `Message-ID: <${subject.replace(/\W/g, '-')}@lifecycle.test>`, '', 'body', ''].join('\r\n');
}

test('SIGTERM during normal operation: a message with its 250 is kept, one half-way through DATA is not, exit 0, store closed', { timeout: 60000 }, async () => {
    const s = await newSetup();
    const daemon = await startDaemon(s.configFile);
    const before = messagesPerUser(s);

    // Each client stops after DATA's 354 and writes the message itself: one whole, one cut off.
    const login = async () => {
        const client = await loggedIn(s.smtpPort, 'alice', USERS[0].password);
        await beginData(client, 'alice@mailmule.lan', ['bob@mailmule.lan']);
        return client;
    };
    const complete = await login();
    await complete.write(message('sent in full') + '.\r\n');
    const sent = await complete.reply(15000);
    assert.equal(sent.code, 250, sent.text);
    const partial = await login();
    await partial.write(message('cut off').slice(0, 60));

    const stopped = daemon.watch(/"msg":"mailmule stopped"/);
    const code = await daemon.stop();
    assert.equal(code, 0, daemon.lines.join('\n'));
    assert.equal(stopped(), 1);
    // The half-sent message was refused (421 at shutdown) or its connection closed; never a 250.
    const last = await partial.replyOrClose(15000);
    assert.ok(last === null || (last.code >= 400 && last.code < 500), `${last?.code} ${last?.text}`);
    complete.destroy();
    partial.destroy();

    assertClosedCleanly(s, daemon.lines.join('\n'));
    const after = messagesPerUser(s);
    // alice's Sent copy and bob's INBOX copy of the one message that got its 250.
    assert.deepEqual(after, { alice: before.alice + 1, bob: before.bob + 1 });
});

test('SIGINT stops it the same way: exit 0, store closed', { timeout: 60000 }, async () => {
    const s = await newSetup();
    const start = DaemonProcess.spawn(s.configFile);
    await start.until('"mailmule started"', () => start.stdout.includes('"msg":"mailmule started"'));
    start.child.kill('SIGINT');
    assert.deepEqual(await start.exited(), { code: 0, signal: null }, start.output);
    assert.ok(
        start.records().some(record => record.msg === 'stopping' && record.signal === 'SIGINT'),
        start.output
    );
    assertClosedCleanly(s, start.output);
});

test('SIGTERM with a client on the control socket (a `mailmule sync` waiting for its run) still exits 0 promptly', { timeout: 60000 }, async () => {
    const s = await newSetup();
    const start = DaemonProcess.spawn(s.configFile);
    await start.until('"mailmule started"', () => start.stdout.includes('"msg":"mailmule started"'));
    const control = net.connect(path.join(s.dataDir, 'control.sock'));
    control.on('error', () => {});
    await withTimeout(new Promise(resolve => control.once('connect', resolve)), 5000, 'control socket connect');
    try {
        const stoppedAt = Date.now();
        start.child.kill('SIGTERM');
        assert.deepEqual(await start.exited(10000), { code: 0, signal: null }, start.output);
        assert.ok(Date.now() - stoppedAt < 5000, `took ${Date.now() - stoppedAt} ms`);
    } finally {
        control.destroy();
    }
    assertClosedCleanly(s, start.output);
});

test('SIGTERM during start-up: start-up ends before serving, exit 0, store closed', { timeout: 60000 }, async () => {
    const s = await newSetup();
    // Listeners named by host name: binding them waits for a lookup, which gives the daemon's
    // event loop a turn during start-up (an address literal binds without one).
    fs.writeFileSync(s.configFile, fs.readFileSync(s.configFile, 'utf8').replaceAll('host: 127.0.0.1', 'host: localhost'));
    const lock = lockStore(s);
    const start = DaemonProcess.spawn(s.configFile);
    try {
        await start.until('"mailmule: using" on stderr', () => usingLine(start));
        start.child.kill('SIGTERM');
    } finally {
        lock.release();
    }
    assert.deepEqual(await start.exited(), { code: 0, signal: null }, start.output);
    const records = start.records();
    assert.ok(
        records.some(record => record.msg === 'stopping' && record.signal === 'SIGTERM' && record.duringStartUp === true),
        start.output
    );
    assert.ok(
        records.some(record => record.msg === 'mailmule stopped'),
        start.output
    );
    assert.ok(!records.some(record => record.msg === 'mailmule started'), start.output);
    // It stopped at the step after the IMAP listeners: SMTP was never bound.
    assert.ok(!start.stdout.includes('SMTP Server listening'), start.output);
    assertClosedCleanly(s, start.output);
});

test('a second signal while stopping exits at once with 128 + its number', { timeout: 60000 }, async () => {
    const s = await newSetup();
    const start = DaemonProcess.spawn(s.configFile);
    await start.until('"mailmule started"', () => start.stdout.includes('"msg":"mailmule started"'));
    // An IMAP client that ignores BYE and never closes its side: imap-core gives it 1 s, then
    // 1.5 s more before it destroys the socket, so the shutdown lasts about 2.5 s.
    const imap = net.connect({ port: s.imapPort, host: HOST, allowHalfOpen: true });
    imap.on('error', () => {});
    imap.on('data', () => {});
    await withTimeout(new Promise(resolve => imap.once('connect', resolve)), 5000, 'IMAP connect');
    try {
        start.child.kill('SIGTERM');
        await start.until('"stopping"', () => start.records().some(record => record.msg === 'stopping'));
        start.child.kill('SIGINT');
        assert.deepEqual(await start.exited(), { code: 130, signal: null }, start.output);
    } finally {
        imap.destroy();
    }
    const records = start.records();
    assert.ok(
        records.some(record => record.signal === 'SIGINT' && String(record.msg).includes('exiting at once')),
        start.output
    );
    assert.ok(!records.some(record => record.msg === 'mailmule stopped'), start.output);
});
