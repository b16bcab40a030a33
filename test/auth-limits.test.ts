/**
 * The login penalty end to end, over IMAP and SMTP (shared): guesses against one user from one
 * address are capped however they are interleaved with good logins as someone else; a client
 * retrying a stale password does not lock anyone out; an honest user on the same address logs
 * in at once; every failure is answered, later each time. Timings are scaled down (base 100 ms,
 * at most 1.2 s) so the test runs quickly; the policy's own tests cover the real ones.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startGateway, type Gateway } from './support/gateway';

const ALICE = 'alice-secret-pw';
const BOB = 'bob-secret-pw';
const BASE_DELAY_MS = 100;
const MAX_DELAY_MS = 1200;
/** A good login's time: the password hash only, well under the longest penalty. */
const PROMPT_MS = 700;

/**
 * Whether a good login that took `ms` was answered at once rather than after a penalty: under
 * PROMPT_MS, or (on a loaded machine, where the password hash alone can take a second) at least
 * half the longest penalty sooner than a penalised failure measured just before it, which pays
 * the same hash plus its delay.
 */
function prompt(ms: number, penalisedMs: number): boolean {
    return ms < Math.max(PROMPT_MS, penalisedMs - MAX_DELAY_MS / 2);
}

let gateway: Gateway;

before(async () => {
    gateway = await startGateway({ authPenalty: { baseDelayMs: BASE_DELAY_MS, maxDelayMs: MAX_DELAY_MS } });
});

after(async () => {
    await gateway?.stop();
});

/** Reads lines from a socket until one matches; rejects after a bound (a hung reply fails). */
function lineReader(socket: net.Socket) {
    let buffer = '';
    const waiters: Array<() => void> = [];
    socket.on('data', chunk => {
        buffer += chunk.toString('latin1');
        waiters.splice(0).forEach(wake => wake());
    });
    socket.on('error', () => {});
    return (pattern: RegExp, timeoutMs = 5000): Promise<string> =>
        new Promise((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`no reply matching ${pattern} within ${timeoutMs} ms; got ${JSON.stringify(buffer.slice(-200))}`)), timeoutMs);
            const check = () => {
                const lines = buffer.split('\r\n');
                const index = lines.findIndex(line => pattern.test(line));
                if (index >= 0 && index < lines.length - 1) {
                    buffer = lines.slice(index + 1).join('\r\n');
                    clearTimeout(timer);
                    resolve(lines[index]);
                } else {
                    waiters.push(check);
                }
            };
            check();
        });
}

function connect(port: number, localAddress: string): { socket: net.Socket; next: ReturnType<typeof lineReader> } {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress });
    const next = lineReader(socket);
    return { socket, next };
}

/** One IMAP LOGIN on a fresh connection: the tagged reply and how long it took. */
async function imapLogin(user: string, pass: string, localAddress = '127.0.0.1'): Promise<{ reply: string; ms: number }> {
    const { socket, next } = connect(gateway.imapPort, localAddress);
    try {
        await next(/^\* OK/);
        const started = Date.now();
        socket.write(`a1 LOGIN ${user} "${pass}"\r\n`);
        const reply = await next(/^a1 /);
        return { reply, ms: Date.now() - started };
    } finally {
        socket.destroy();
    }
}

/** One SMTP AUTH PLAIN on a fresh connection: the reply and how long it took. */
async function smtpAuth(user: string, pass: string, localAddress = '127.0.0.1'): Promise<{ reply: string; ms: number }> {
    const { socket, next } = connect(gateway.smtpPort, localAddress);
    try {
        await next(/^220 /);
        socket.write('EHLO laptop.lan\r\n');
        await next(/^250 /);
        const started = Date.now();
        socket.write(`AUTH PLAIN ${Buffer.from(`\0${user}\0${pass}`).toString('base64')}\r\n`);
        const reply = await next(/^\d{3} /);
        return { reply, ms: Date.now() - started };
    } finally {
        socket.destroy();
    }
}

test('guesses at one user are capped, however interleaved with good logins as someone else (IMAP and SMTP share the count)', async () => {
    const from = '127.0.0.3';
    let guesses = 0;
    // Nine wrong passwords for alice, alternating IMAP and SMTP, each followed by a good login as bob.
    for (let n = 0; n < 9; n++) {
        const failure = n % 2 ? await smtpAuth('alice', `guess-${n}`, from) : await imapLogin('alice', `guess-${n}`, from);
        assert.match(failure.reply, n % 2 ? /^535 / : /^a1 NO/);
        guesses++;
        const good = await imapLogin('bob', BOB, from);
        assert.match(good.reply, /^a1 OK/, 'bob logs in at once');
        // Where alice's failure paid the longest penalty, the same penalty on bob would show.
        if (BASE_DELAY_MS * 2 ** n >= MAX_DELAY_MS) assert.ok(prompt(good.ms, failure.ms), `bob waited ${good.ms} ms, alice's failure before it ${failure.ms} ms`);
    }
    // The tenth try, even with alice's real password, is refused from this address: it would be a tenth guess.
    const imap = await imapLogin('alice', ALICE, from);
    assert.match(imap.reply, /^a1 NO/);
    const smtp = await smtpAuth('alice', ALICE, from);
    assert.match(smtp.reply, /^535 /);
    assert.equal(guesses, 9);
    // Refused, not hung: answered within the longest delay (plus slack).
    assert.ok(imap.ms <= MAX_DELAY_MS + 1000 && smtp.ms <= MAX_DELAY_MS + 1000, `${imap.ms} / ${smtp.ms} ms`);
    // bob on the same address (a shared PC, a NAT) still logs in at once, over both.
    assert.match((await imapLogin('bob', BOB, from)).reply, /^a1 OK/);
    assert.match((await smtpAuth('bob', BOB, from)).reply, /^235 /);
    // alice from her own address is unaffected.
    assert.match((await imapLogin('alice', ALICE, '127.0.0.4')).reply, /^a1 OK/);
});

test('a client retrying a stale saved password counts once and locks nobody out', async () => {
    const from = '127.0.0.5';
    for (let n = 0; n < 11; n++) {
        const attempt = n % 2 ? await smtpAuth('alice', 'last-years-password', from) : await imapLogin('alice', 'last-years-password', from);
        assert.match(attempt.reply, n % 2 ? /^535 / : /^a1 NO/);
    }
    assert.match((await imapLogin('alice', ALICE, from)).reply, /^a1 OK/, 'alice, her password fixed, logs in');
    assert.match((await smtpAuth('bob', BOB, from)).reply, /^235 /, 'bob was never locked out');
});

test('each failure is answered, after a growing delay; a success is never delayed', async () => {
    const from = '127.0.0.6';
    const delays: number[] = [];
    for (let n = 0; n < 5; n++) delays.push((await imapLogin('bob', `wrong-${n}`, from)).ms);
    // Penalties of 100, 200, 400, 800, 1200 ms (capped), each on top of the password check.
    assert.ok(delays[2] - delays[0] >= 250, `third failure after ${delays[2]} ms, first after ${delays[0]}`);
    assert.ok(delays[4] - delays[0] >= MAX_DELAY_MS - 200, `fifth failure after ${delays[4]} ms, first after ${delays[0]}`);
    assert.ok(delays[4] < MAX_DELAY_MS + 1000, `fifth failure after ${delays[4]} ms`);
    const good = await imapLogin('alice', ALICE, from);
    assert.match(good.reply, /^a1 OK/);
    assert.ok(prompt(good.ms, delays[4]), `a good login waited ${good.ms} ms, the fifth failure ${delays[4]} ms`);
    // A success for bob clears his count only.
    assert.match((await imapLogin('bob', BOB, from)).reply, /^a1 OK/);
    // His count started over; alice's good login never counted: the next failure is penalised by the address's others only.
    assert.match((await imapLogin('bob', 'wrong-again', from)).reply, /^a1 NO/);
});

test('no password reaches the log', () => {
    const secrets = [ALICE, BOB, 'last-years-password', 'guess-1', 'wrong-again'];
    for (const line of gateway.logLines) {
        for (const secret of secrets) assert.ok(!line.includes(secret), `a password in the log: ${line.slice(0, 200)}`);
    }
    assert.ok(gateway.logLines.some(line => line.includes('login failed')));
});
