/**
 * Every phase of an SMTP session has a deadline (issue 10, item 6; smtp-server patch 002): a
 * command line, and the message after DATA, must arrive within smtp.timeout of the reply that
 * invited it, each byte received adding 1/minDataRate s. A client that trickles bytes (which
 * resets an idle timer every time) is cut with 421; one that sends at a real rate is not,
 * however long its message takes; time the server spends (the login penalty) is not charged.
 *
 * Over real TCP with a hand-driven client. The deadlines are scaled down (timeout 2 s,
 * minDataRate 1000 bytes/s); the client paces its bytes with timers, which is the behaviour
 * under test, not synchronisation.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type Gateway, type TestUser } from './support/gateway';
import { RawSmtpConnection, authPlain, loggedIn, type SmtpReply } from './support/raw-smtp';
import { sleep } from './support/wait';

const ALICE_PW = 'alice-deadline-pw';
const FROM = 'alice@mailmule.lan';
const USERS: TestUser[] = [
    { name: 'alice', password: ALICE_PW },
    { name: 'bob', password: 'bob-deadline-pw' }
];
const TIMEOUT_S = 2;
const MIN_RATE = 1000;
/** Login failures are answered after this long: longer than the deadline. */
const PENALTY_MS = 3000;

/** Sends `bytes` in `chunk`-byte pieces, one every `everyMs`, until done or the server closes; returns the milliseconds taken. */
async function trickle(client: RawSmtpConnection, bytes: Buffer, chunk: number, everyMs: number): Promise<number> {
    const started = Date.now();
    for (let at = 0; at < bytes.length && !client.closed; at += chunk) {
        await client.write(bytes.subarray(at, at + chunk)).catch(() => {});
        await sleep(everyMs);
    }
    return Date.now() - started;
}

async function startData(client: RawSmtpConnection): Promise<void> {
    for (const [line, code] of [
        [`MAIL FROM:<${FROM}>`, 250],
        ['RCPT TO:<bob@mailmule.lan>', 250],
        ['DATA', 354]
    ] as const) {
        const reply = await client.cmd(line);
        assert.equal(reply.code, code, `${line}: ${reply.text}`);
    }
}

/** The reply the server sends while the client is still trickling, and how long after `since`. */
async function cutOff(client: RawSmtpConnection, since: number): Promise<{ reply: SmtpReply; afterMs: number }> {
    const reply = await client.reply((TIMEOUT_S + 8) * 1000);
    return { reply, afterMs: Date.now() - since };
}

describe(`SMTP deadlines (timeout ${TIMEOUT_S} s, minDataRate ${MIN_RATE} bytes/s)`, () => {
    let gw: Gateway;

    before(async () => {
        gw = await startGateway({
            users: USERS,
            smtpExtraYaml: `  timeout: ${TIMEOUT_S}\n  minDataRate: ${MIN_RATE}`,
            authPenalty: { baseDelayMs: PENALTY_MS, maxDelayMs: PENALTY_MS }
        });
    });
    after(async () => {
        await gw?.stop();
    });

    test('a message trickled at 10 bytes/s is cut with 421 after about the timeout, and nothing is stored', async () => {
        const queued = gw.daemon.store.queue.list().length;
        const logged = gw.logLines.length;
        const client = await loggedIn(gw.smtpPort, 'alice', ALICE_PW);
        try {
            await startData(client);
            const since = Date.now();
            const sending = trickle(client, Buffer.from(`From: ${FROM}\r\nSubject: slow\r\n\r\n` + 'z'.repeat(500)), 1, 100);
            const { reply, afterMs } = await cutOff(client, since);
            assert.equal(reply.code, 421, reply.text);
            assert.ok(afterMs >= TIMEOUT_S * 1000 && afterMs < (TIMEOUT_S + 3) * 1000, `cut after ${afterMs} ms`);
            await client.closedPromise;
            await sending;
        } finally {
            client.destroy();
        }
        const deadline = Date.now() + 10_000;
        while (!gw.logLines.slice(logged).some(line => line.includes('message not received in full'))) {
            assert.ok(Date.now() < deadline, 'the server dropped the message');
            await sleep(20);
        }
        assert.equal(gw.daemon.store.queue.list().length, queued);
    });

    test('a command line trickled a byte at a time is cut with 421', async () => {
        const client = await loggedIn(gw.smtpPort, 'alice', ALICE_PW);
        try {
            const since = Date.now();
            const sending = trickle(client, Buffer.from(`NOOP ${'x'.repeat(100)}\r\n`), 1, 100);
            const { reply, afterMs } = await cutOff(client, since);
            assert.equal(reply.code, 421, reply.text);
            assert.ok(afterMs < (TIMEOUT_S + 3) * 1000, `cut after ${afterMs} ms`);
            await client.closedPromise;
            await sending;
        } finally {
            client.destroy();
        }
    });

    test('a message sent at four times the minimum rate is accepted though it takes longer than the timeout', async () => {
        const client = await loggedIn(gw.smtpPort, 'alice', ALICE_PW);
        try {
            await startData(client);
            // 16 KB at about 4,000 bytes/s: some 4 s, twice the timeout.
            const body = Buffer.from(`From: ${FROM}\r\nSubject: steady\r\n\r\n` + ('s'.repeat(78) + '\r\n').repeat(200));
            const tookMs = await trickle(client, body, 400, 100);
            assert.ok(tookMs > TIMEOUT_S * 1000, `took ${tookMs} ms`);
            await client.write('\r\n.\r\n');
            const reply = await client.reply();
            assert.equal(reply.code, 250, reply.text);
            assert.equal((await client.cmd('NOOP')).code, 250, 'the session goes on');
        } finally {
            await client.quit();
        }
    });

    test('time the server takes is not charged: a login answered after 3 s (the penalty) leaves the session open', async () => {
        const { client } = await RawSmtpConnection.connect(gw.smtpPort);
        try {
            assert.equal((await client.cmd('EHLO laptop.lan')).code, 250);
            const since = Date.now();
            const wrong = await client.cmd(authPlain('alice', 'not-the-password'), PENALTY_MS + 5000);
            assert.equal(wrong.code, 535, wrong.text);
            assert.ok(Date.now() - since >= PENALTY_MS - 100, 'the penalty applied');
            assert.equal((await client.cmd('NOOP')).code, 250);
        } finally {
            await client.quit();
        }
    });

    test('silence longer than the timeout is cut with 421', async () => {
        const client = await loggedIn(gw.smtpPort, 'alice', ALICE_PW);
        try {
            const since = Date.now();
            const { reply, afterMs } = await cutOff(client, since);
            assert.equal(reply.code, 421, reply.text);
            assert.ok(afterMs >= TIMEOUT_S * 1000 - 100 && afterMs < (TIMEOUT_S + 3) * 1000, `cut after ${afterMs} ms`);
            await client.closedPromise;
        } finally {
            client.destroy();
        }
    });
});
