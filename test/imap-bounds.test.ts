/**
 * Every input bounded (issue 8, point 5): command line length, literal sizes, nesting, the
 * inflated size of COMPRESS=DEFLATE input, connections per user per client address, and time
 * (login and autologout timeouts). Each hostile client is cut off promptly; the daemon stays
 * responsive and other sessions keep working.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import zlib from 'node:zlib';
import { startGateway, type Gateway } from './support/gateway';
import { waitUntil } from './support/wait';
import { RawImapConnection } from './support/raw-imap-connection';

const USER = 'alice';
const PASS = 'alice-secret-pw';
const LINE_LIMIT = 64 * 1024;

let gateway: Gateway;

before(async () => {
    gateway = await startGateway({ plaintext: true });
});

after(async () => {
    await gateway?.stop();
});

/** Event-loop delay: how long a zero timer takes to fire (ms). */
async function loopDelay(): Promise<number> {
    const start = performance.now();
    await new Promise(resolve => setTimeout(resolve, 0));
    return performance.now() - start;
}

/** A fresh session logs in and answers NOOP: the daemon is alive and serving. */
async function stillServing(): Promise<void> {
    const session = await RawImapConnection.session(gateway.imapPort, USER, PASS);
    try {
        assert.match((await session.command('NOOP', 2000)).tagged, /^\S+ OK/);
    } finally {
        session.destroy();
    }
}

test('a 64 KiB command line is accepted, a longer one refused with a tagged BAD and the session goes on', async () => {
    const session = await RawImapConnection.session(gateway.imapPort, USER, PASS);
    try {
        // Just under the limit (tag, command and quotes included): an ordinary NO.
        const name = 'n'.repeat(LINE_LIMIT - 40);
        assert.match((await session.command(`EXAMINE "${name}"`)).tagged, /^\S+ NO/);
        // Over it: BAD with the command's tag, like Dovecot's "Too long argument".
        const over = await session.command(`EXAMINE "${'n'.repeat(LINE_LIMIT + 10)}"`);
        assert.match(over.tagged, /^\S+ BAD .*too long/i);
        assert.match((await session.command('SELECT INBOX')).tagged, /^\S+ OK/);
    } finally {
        session.destroy();
    }
});

test('before login an over-long line ends the connection (as Dovecot imap-login does)', async () => {
    const session = await RawImapConnection.connect(gateway.imapPort);
    try {
        const from = session.responses.length;
        session.write(`X1 ID ("name" "${'n'.repeat(LINE_LIMIT + 10)}")\r\n`);
        await session.waitFor(r => /^\* BYE/.test(r.text), 'BYE', 3000, from);
        await session.waitClosed(3000);
    } finally {
        session.destroy();
    }
});

test('literal sizes: over 1 KiB outside APPEND and over maxMessageSize in APPEND are refused before any byte is read', async () => {
    const session = await RawImapConnection.session(gateway.imapPort, USER, PASS);
    try {
        let from = session.responses.length;
        session.write('L1 SEARCH TEXT {2000}\r\n');
        assert.match((await session.waitFor(r => /^(L1 |\+)/.test(r.text), 'reply to L1', 3000, from)).text, /^L1 (NO|BAD)/);
        from = session.responses.length;
        session.write('L2 APPEND INBOX {26214401}\r\n');
        assert.match((await session.waitFor(r => /^(L2 |\+)/.test(r.text), 'reply to L2', 3000, from)).text, /^L2 NO \[TOOBIG\]/);
        from = session.responses.length;
        session.write('L3 APPEND INBOX {99999999999999999999}\r\n');
        assert.match((await session.waitFor(r => /^(L3 |\+)/.test(r.text), 'reply to L3', 3000, from)).text, /^L3 (NO|BAD)/);
        assert.match((await session.command('NOOP')).tagged, /^\S+ OK/);
    } finally {
        session.destroy();
    }
});

test('deeply nested parenthesised lists (as deep as a line allows) are refused or answered, never a crash', async () => {
    const session = await RawImapConnection.session(gateway.imapPort, USER, PASS, 'INBOX');
    try {
        const depth = Math.floor((LINE_LIMIT - 100) / 2);
        for (const line of [
            `SEARCH ${'('.repeat(depth)}ALL${')'.repeat(depth)}`,
            `SEARCH ${'NOT '.repeat(Math.floor((LINE_LIMIT - 100) / 4))}ALL`,
            `FETCH 1 ${'('.repeat(depth)}FLAGS${')'.repeat(depth)}`,
            `STORE 1 +FLAGS ${'('.repeat(depth)}${')'.repeat(depth)}`
        ]) {
            const started = performance.now();
            const reply = await session.command(line, 5000);
            assert.match(reply.tagged, /^\S+ (OK|NO|BAD)/, line.slice(0, 30));
            assert.ok(performance.now() - started < 5000, `${line.slice(0, 20)}… answered in ${Math.round(performance.now() - started)} ms`);
        }
    } finally {
        session.destroy();
    }
    await stillServing();
});

/** A raw client that logs in, turns on COMPRESS=DEFLATE and returns the two zlib streams. */
async function compressedSession(): Promise<{ socket: net.Socket; deflate: zlib.DeflateRaw; text: () => string; ended: Promise<number> }> {
    const socket = net.connect({ host: '127.0.0.1', port: gateway.imapPort });
    let plain = '';
    let inflated = '';
    let inflate: zlib.InflateRaw | null = null;
    const ended = new Promise<number>(resolve => {
        socket.on('end', () => resolve(performance.now()));
        socket.on('close', () => resolve(performance.now()));
    });
    socket.on('error', () => {});
    const waitPlain = (re: RegExp) =>
        new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`no ${re} in ${JSON.stringify(plain.slice(-200))}`)), 5000);
            const check = () => {
                if (re.test(plain)) {
                    clearTimeout(timer);
                    socket.off('data', onData);
                    resolve();
                }
            };
            const onData = (chunk: Buffer) => {
                plain += chunk.toString('latin1');
                check();
            };
            socket.on('data', onData);
            check();
        });
    await waitPlain(/^\* OK/);
    socket.write(`A LOGIN ${USER} ${PASS}\r\n`);
    await waitPlain(/\r\nA OK/);
    socket.write('B COMPRESS DEFLATE\r\n');
    await waitPlain(/\r\nB OK/);
    inflate = zlib.createInflateRaw();
    inflate.on('data', (chunk: Buffer) => (inflated += chunk.toString('latin1')));
    inflate.on('error', () => {});
    socket.on('data', chunk => inflate.write(chunk));
    const deflate = zlib.createDeflateRaw();
    deflate.pipe(socket);
    return { socket, deflate, text: () => inflated, ended };
}

test('a deflate bomb (256 MB of "A" without CRLF, ~256 KB on the wire) is cut off at the line limit within a second', async () => {
    // Build the bomb first, so that the time measured is the server's.
    const bomb: Buffer[] = [];
    {
        const deflate = zlib.createDeflateRaw({ level: 9 });
        deflate.on('data', chunk => bomb.push(chunk));
        const block = Buffer.alloc(1024 * 1024, 'A');
        for (let i = 0; i < 256; i++) deflate.write(block);
        await new Promise<void>(resolve => deflate.end(resolve));
    }
    const wire = bomb.reduce((sum, chunk) => sum + chunk.length, 0);

    const rssBefore = process.memoryUsage().rss;
    const client = await compressedSession();
    const { socket, deflate } = client;
    try {
        // A proper command through compression works first.
        deflate.write('C NOOP\r\n');
        deflate.flush();
        await waitUntil(() => /C OK/.test(client.text()), 'NOOP through COMPRESS');

        const started = performance.now();
        deflate.unpipe(socket);
        for (const chunk of bomb) socket.write(chunk);
        const closedAt = await Promise.race([client.ended, new Promise<number>(resolve => setTimeout(() => resolve(-1), 3000))]);
        assert.ok(closedAt > 0, 'the server closed the connection');
        const seconds = (closedAt - started) / 1000;
        assert.ok(seconds < 1, `closed after ${seconds.toFixed(3)} s`);
        await waitUntil(() => /\* BYE/.test(client.text()), 'BYE through COMPRESS').catch(() => {
            // The BYE is best effort: the connection closing is what matters.
        });

        // After it: the event loop is free and the daemon serves others.
        await new Promise(resolve => setTimeout(resolve, 200));
        const cpuStart = process.cpuUsage();
        const wallStart = performance.now();
        await new Promise(resolve => setTimeout(resolve, 1000));
        const cpu = process.cpuUsage(cpuStart);
        const cpuShare = (cpu.user + cpu.system) / 1000 / (performance.now() - wallStart);
        const delay = await loopDelay();
        const rssAfter = process.memoryUsage().rss;
        console.log(
            `# deflate bomb: ${(wire / 1024).toFixed(0)} KB on the wire (256 MB inflated); closed after ${seconds.toFixed(3)} s; ` +
                `CPU in the next second ${(cpuShare * 100).toFixed(1)} %; loop delay ${delay.toFixed(1)} ms; RSS ${((rssAfter - rssBefore) / 1048576).toFixed(1)} MB over before`
        );
        assert.ok(cpuShare < 0.2, `CPU ${(cpuShare * 100).toFixed(1)} % in the second after the client left`);
        assert.ok(delay < 50, `event loop delay ${delay.toFixed(1)} ms`);
        assert.ok(rssAfter - rssBefore < 64 * 1048576, `RSS grew by ${((rssAfter - rssBefore) / 1048576).toFixed(1)} MB`);
    } finally {
        socket.destroy();
    }
    await stillServing();
});

test('an endless line before login: BYE, closed at once, and memory does not grow with it', async () => {
    const rssBefore = process.memoryUsage().rss;
    const socket = net.connect({ host: '127.0.0.1', port: gateway.imapPort });
    socket.on('error', () => {});
    let received = '';
    socket.on('data', chunk => (received += chunk.toString('latin1')));
    // The server's FIN (or a reset) ends it for the client.
    const closed = new Promise<number>(resolve => {
        socket.on('end', () => resolve(performance.now()));
        socket.on('close', () => resolve(performance.now()));
    });
    await waitUntil(() => received.startsWith('* OK'), 'greeting');
    const started = performance.now();
    // 32 MB offered without a CRLF; the server must not read it all.
    const block = Buffer.alloc(1024 * 1024, 'a');
    socket.write('X ');
    for (let i = 0; i < 32 && !socket.destroyed; i++) socket.write(block);
    const closedAt = await Promise.race([closed, new Promise<number>(resolve => setTimeout(() => resolve(-1), 5000))]);
    socket.destroy();
    assert.ok(closedAt > 0, 'closed by the server');
    assert.match(received, /\* BYE/);
    const rssAfter = process.memoryUsage().rss;
    console.log(`# endless line before login: closed after ${((closedAt - started) / 1000).toFixed(3)} s; RSS ${((rssAfter - rssBefore) / 1048576).toFixed(1)} MB over before`);
    assert.ok(closedAt - started < 2000);
    await stillServing();
});

test('at most 10 sessions per user per client address; other users and other addresses are unaffected', async t => {
    // A gateway of its own: sessions the other tests closed may still be closing on the shared one.
    const gateway = await startGateway({ plaintext: true });
    t.after(() => gateway.stop());
    const sessions: RawImapConnection[] = [];
    try {
        for (let i = 0; i < 10; i++) sessions.push(await RawImapConnection.session(gateway.imapPort, USER, PASS));
        const eleventh = await RawImapConnection.connect(gateway.imapPort);
        sessions.push(eleventh);
        const refused = await eleventh.command(`LOGIN ${USER} ${PASS}`);
        assert.match(refused.tagged, /^\S+ NO \[LIMIT\] Too many connections/);
        // AUTHENTICATE PLAIN is refused the same way.
        const plain = Buffer.from(`\0${USER}\0${PASS}`).toString('base64');
        assert.match((await eleventh.command(`AUTHENTICATE PLAIN ${plain}`)).tagged, /^\S+ NO .*Too many connections/);
        // Another user from the same address.
        sessions.push(await RawImapConnection.session(gateway.imapPort, 'bob', 'bob-secret-pw'));
        // The same user from another address (127.0.0.2 is loopback too on Linux).
        const other = await new Promise<net.Socket>((resolve, reject) => {
            const socket = net.connect({ host: '127.0.0.1', port: gateway.imapPort, localAddress: '127.0.0.2' }, () => resolve(socket));
            socket.on('error', reject);
        });
        let text = '';
        other.on('data', chunk => (text += chunk.toString('latin1')));
        try {
            other.write(`O LOGIN ${USER} ${PASS}\r\n`);
            await waitUntil(() => /\r\nO (OK|NO|BAD)/.test(text), 'login from 127.0.0.2');
            assert.match(text, /\r\nO OK/);
        } finally {
            other.destroy();
        }
        // One session leaves: a new one may log in.
        const first = sessions.shift()!;
        assert.match((await first.command('LOGOUT')).tagged, /^\S+ OK/);
        await first.waitClosed(3000);
        assert.match((await eleventh.command(`LOGIN ${USER} ${PASS}`)).tagged, /^\S+ OK/);
    } finally {
        sessions.forEach(session => session.destroy());
    }
});

test('time: unauthenticated connections close after loginTimeout, idle sessions after autologoutTimeout; IDLE stays', async t => {
    const timed = await startGateway({ plaintext: true, imapExtraYaml: '  loginTimeout: 1\n  autologoutTimeout: 2\n  idleKeepalive: 0.5' });
    t.after(() => timed.stop());
    // Not logged in: closed after 1 s although it keeps talking.
    const anonymous = await RawImapConnection.connect(timed.imapPort);
    const started = performance.now();
    try {
        const chatter = setInterval(() => anonymous.closed || anonymous.write('N NOOP\r\n'), 200);
        try {
            await anonymous.waitFor(r => /^\* BYE/.test(r.text), 'BYE for the login timeout', 3000);
            await anonymous.waitClosed(3000);
        } finally {
            clearInterval(chatter);
        }
        const seconds = (performance.now() - started) / 1000;
        assert.ok(seconds >= 0.9 && seconds < 2.5, `closed after ${seconds.toFixed(2)} s`);
    } finally {
        anonymous.destroy();
    }
    // Logged in and silent: closed after 2 s. Logged in and in IDLE: still there after 4 s.
    const silent = await RawImapConnection.session(timed.imapPort, USER, PASS);
    const idling = await RawImapConnection.session(timed.imapPort, USER, PASS, 'INBOX');
    try {
        const idleFrom = idling.responses.length;
        idling.write('I IDLE\r\n');
        await idling.waitFor(r => r.text.startsWith('+'), 'IDLE continuation', 3000, idleFrom);
        await silent.waitFor(r => /^\* BYE/.test(r.text), 'BYE for the autologout', 4000);
        await silent.waitClosed(3000);
        await new Promise(resolve => setTimeout(resolve, 2000));
        assert.ok(!idling.closed, 'the IDLE session is still open');
        // Its keep-alives came every half second, not once per autologout period.
        const keepalives = idling.responses.slice(idleFrom).filter(r => /^\* OK Still here/.test(r.text)).length;
        assert.ok(keepalives >= 4, `${keepalives} keep-alives in IDLE`);
        idling.write('DONE\r\n');
        await idling.waitFor(r => /^I OK/.test(r.text), 'IDLE ends with OK', 3000, idleFrom);
    } finally {
        silent.destroy();
        idling.destroy();
    }
});

test('a client that vanishes in IDLE leaves no timer (and no connection) behind', async () => {
    const timers = () => process.getActiveResourcesInfo().filter(kind => kind === 'Timeout').length;
    const from = gateway.logLines.length;
    const baseline = timers();
    const session = await RawImapConnection.session(gateway.imapPort, USER, PASS, 'INBOX');
    const idleFrom = session.responses.length;
    session.write('I IDLE\r\n');
    await session.waitFor(r => r.text.startsWith('+'), 'IDLE continuation', 3000, idleFrom);
    session.socket.resetAndDestroy();
    await waitUntil(() => gateway.logLines.slice(from).some(line => /Connection closed/.test(line)), 'the server to see the close');
    await new Promise(resolve => setTimeout(resolve, 50));
    assert.ok(timers() <= baseline, `${timers()} timers now, ${baseline} before`);
});
