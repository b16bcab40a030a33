/**
 * Operability (issue 8, point 7): one debug line per IMAP command without secrets, no reverse
 * DNS, our own greeting and LOGOUT texts, client resets at info, no AUTH= mechanism offered
 * where LOGIN is disabled, and a CLI writer that waits its turn while the daemon writes.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dns from 'node:dns';
import fs from 'node:fs';
import path from 'node:path';
import { startGateway, makeMessage, type Gateway } from './support/gateway';
import { waitUntil } from './support/wait';
import { RawImapConnection, appendRaw } from './support/raw-imap-connection';
import { runProcess, describeRun } from './support/run-process';

const USER = 'alice';
const PASS = 'alice-secret-pw';
const CLI = path.join(__dirname, '..', 'src', 'cli', 'main.js');

let gateway: Gateway;

before(async () => {
    gateway = await startGateway({ plaintext: true });
});

after(async () => {
    await gateway?.stop();
});

interface LogEntry {
    level: number;
    msg: string;
    tag?: string;
    command?: string;
    result?: string;
    [key: string]: unknown;
}

const entries = (from = 0): LogEntry[] => gateway.logLines.slice(from).map(line => JSON.parse(line) as LogEntry);

test('at debug level, one line per command: user, tag, command, mailbox, result, duration; never arguments', async () => {
    const from = gateway.logLines.length;
    const session = await RawImapConnection.session(gateway.imapPort, USER, PASS, 'INBOX');
    try {
        await appendRaw(session, 'INBOX', makeMessage({ subject: 'literal-secret-subject', body: 'literal-secret-body' }));
        assert.match((await session.command('SEARCH TEXT "search-secret-word"')).tagged, /^\S+ OK/);
        assert.match((await session.command('XYZZY unknown-secret-arg')).tagged, /^\S+ BAD/);
        const plain = Buffer.from(`\0${USER}\0${PASS}`).toString('base64');
        assert.match((await session.command(`AUTHENTICATE PLAIN ${plain}`)).tagged, /^\S+ (BAD|NO)/);
        assert.match((await session.command('LOGOUT')).tagged, /^\S+ OK/);
    } finally {
        session.destroy();
    }
    await waitUntil(() => entries(from).some(e => e.msg === 'IMAP command' && e.command === 'LOGOUT'), 'the LOGOUT line');
    const commands = entries(from).filter(e => e.msg === 'IMAP command');
    assert.deepEqual(
        commands.map(e => `${e.tag} ${e.command} ${e.result}`),
        ['T1 LOGIN OK', 'T2 SELECT OK', 'T3 APPEND OK', 'T4 SEARCH OK', 'T5 XYZZY UNKNOWNCOMMAND', 'T6 AUTHENTICATE PLAIN INVALIDSTATE', 'T7 LOGOUT OK']
    );
    for (const entry of commands) {
        assert.equal(entry.level, 20, 'debug level');
        assert.equal(typeof entry.ms, 'number');
        assert.ok('mailbox' in entry && 'user' in entry && 'session' in entry);
    }
    assert.equal(commands[0].user, USER);
    assert.equal(commands[3].mailbox, 'INBOX');
    const all = gateway.logLines.slice(from).join('\n');
    for (const secret of [PASS, Buffer.from(`\0${USER}\0${PASS}`).toString('base64'), 'literal-secret', 'search-secret-word', 'unknown-secret-arg']) {
        assert.ok(!all.includes(secret), `the log must not contain ${secret}`);
    }
});

test('no reverse DNS lookup on connect; our own greeting and LOGOUT texts', async t => {
    const reverse = t.mock.method(dns, 'reverse');
    const from = gateway.logLines.length;
    const session = await RawImapConnection.connect(gateway.imapPort);
    try {
        assert.equal(session.responses[0].text, '* OK mailmule ready');
        const login = await session.command(`LOGIN ${USER} ${PASS}`);
        assert.match(login.tagged, /^\S+ OK/);
        const logout = await session.command('LOGOUT');
        assert.deepEqual(
            logout.untagged.map(r => r.text),
            ['* BYE Logout requested']
        );
        assert.match(logout.tagged, /^\S+ OK Logged out$/);
        await session.waitClosed(3000);
    } finally {
        session.destroy();
    }
    assert.equal(reverse.mock.callCount(), 0, 'dns.reverse called');
    await waitUntil(() => entries(from).some(e => /Connection closed/.test(e.msg)), 'the close line');
    const lines = entries(from).map(e => e.msg);
    assert.ok(
        lines.some(msg => /Connection from \[127\.0\.0\.1\]/.test(msg)),
        lines.join('\n')
    );
    assert.ok(
        lines.some(msg => /Connection closed to \[127\.0\.0\.1\]/.test(msg)),
        lines.join('\n')
    );
});

test('client resets and time-outs are logged at info, not as errors', async t => {
    const from = gateway.logLines.length;
    // Plain listener: reset before and after login.
    for (const login of [false, true]) {
        const session = login ? await RawImapConnection.session(gateway.imapPort, USER, PASS, 'INBOX') : await RawImapConnection.connect(gateway.imapPort);
        session.socket.resetAndDestroy();
    }
    // TLS listener: reset in the middle of the handshake, and after it.
    {
        const net = await import('node:net');
        const socket = net.connect({ host: '127.0.0.1', port: gateway.imapsPort });
        socket.on('error', () => {});
        await new Promise<void>(resolve => socket.once('connect', () => resolve()));
        socket.write(Buffer.from('160301', 'hex'));
        await new Promise(resolve => setTimeout(resolve, 50));
        socket.resetAndDestroy();
        // A TLS socket cannot send a reset itself; destroy it without close_notify.
        const session = await RawImapConnection.connect(gateway.imapsPort, { tls: true });
        session.socket.destroy();
    }
    // A time-out on a gateway with a short login timeout.
    const timed = await startGateway({ plaintext: true, imapExtraYaml: '  loginTimeout: 0.3' });
    t.after(() => timed.stop());
    const idle = await RawImapConnection.connect(timed.imapPort);
    await idle.waitClosed(3000);
    // Each of the four connections ends in a log line: "Connection closed", or, for the TLS
    // handshake cut short, imap-core's TLS client error (which of the two depends on how far
    // the handshake got when the reset arrived).
    await waitUntil(() => entries(from).filter(e => /Connection closed|IMAP connection error/.test(e.msg)).length >= 4, 'four ended connections');
    await new Promise(resolve => setTimeout(resolve, 200));
    const loud = [...entries(from), ...timed.logLines.map(line => JSON.parse(line) as LogEntry)].filter(e => e.level >= 40);
    assert.deepEqual(
        loud.map(e => e.msg),
        [],
        'nothing at warn or error'
    );
    assert.ok(timed.logLines.some(line => /Login TIMEOUT/.test(line)));
});

test('before STARTTLS, a listener that refuses plaintext login offers no AUTH= mechanism', async t => {
    const strict = await startGateway({ plaintext: false });
    t.after(() => strict.stop());
    const session = await RawImapConnection.connect(strict.imapPort);
    try {
        const capability = (await session.command('CAPABILITY')).untagged.find(r => r.text.startsWith('* CAPABILITY'))!.text;
        assert.match(capability, / STARTTLS/);
        assert.match(capability, / LOGINDISABLED/);
        assert.doesNotMatch(capability, /AUTH=/);
    } finally {
        session.destroy();
    }
    // A listener that allows it still offers AUTH=PLAIN.
    const open = await RawImapConnection.connect(gateway.imapPort);
    try {
        const capability = (await open.command('CAPABILITY')).untagged.find(r => r.text.startsWith('* CAPABILITY'))!.text;
        assert.match(capability, /AUTH=PLAIN/);
        assert.doesNotMatch(capability, /LOGINDISABLED/);
    } finally {
        open.destroy();
    }
});

test('mailmule import while the daemon writes: both wait their turn, nobody sees "database is locked"', { timeout: 120_000 }, async () => {
    // A Maildir big enough that the import holds the write lock many times over.
    const maildir = path.join(gateway.dir, 'Maildir');
    for (const sub of ['cur', 'new', 'tmp']) fs.mkdirSync(path.join(maildir, sub), { recursive: true });
    for (let i = 0; i < 600; i++) {
        fs.writeFileSync(path.join(maildir, 'cur', `17674${String(i).padStart(5, '0')}.M${i}P1.pi:2,S`), makeMessage({ subject: `imported ${i}`, body: 'x'.repeat(2000) }));
    }
    const from = gateway.logLines.length;
    const session = await RawImapConnection.session(gateway.imapPort, 'bob', 'bob-secret-pw', 'INBOX');
    let writing = true;
    const replies: string[] = [];
    const writer = (async () => {
        let n = 0;
        while (writing) {
            replies.push(await appendRaw(session, 'INBOX', makeMessage({ subject: `daemon write ${n++}` })));
            replies.push((await session.command('STORE 1:* +FLAGS (\\Flagged)')).tagged);
        }
    })();
    let result;
    try {
        result = await runProcess(process.execPath, [CLI, 'import', USER, maildir, '-c', gateway.configFile], { timeoutMs: 100_000 });
    } finally {
        writing = false;
        await writer;
        session.destroy();
    }
    assert.equal(result.code, 0, describeRun('mailmule import', result));
    assert.doesNotMatch(result.stdout + result.stderr, /locked|busy/i);
    assert.ok(replies.length > 2, 'the daemon wrote meanwhile');
    const errors = gateway.logLines.slice(from).filter(line => (JSON.parse(line) as LogEntry).level >= 50);
    assert.deepEqual(
        replies.filter(reply => !/^\S+ OK/.test(reply)),
        [],
        `every daemon write succeeded; errors logged: ${errors.join('\n').slice(0, 1500)}`
    );
    assert.ok(!gateway.logLines.slice(from).some(line => /locked|SQLITE_BUSY/i.test(line)), 'the daemon logged no lock error');
});

test('imap-core runs standalone: WildDuck config, GELF reporter and metrics are never loaded', async () => {
    // A bad command and a reset both go through imap-core's error reporting paths.
    const client = await RawImapConnection.connect(gateway.imapPort);
    await client.command('NOSUCHCOMMAND');
    await client.command(`LOGIN ${USER} ${PASS}`);
    await client.command('SELECT INBOX');
    client.destroy();
    const loaded = Object.keys(require.cache).filter(file => /[\\/](wild-config|prom-client|npmlog|gelf)[\\/]|[\\/]wildduck[\\/]lib[\\/]/.test(file));
    assert.deepEqual(loaded, [], 'no WildDuck application module in this process');
});
