/**
 * The uplink's IMAP session against real Dovecot (test/support/upstream.ts): the round trips the
 * imapflow patches take out (patches/imapflow+2.10.2+001 to +005), seen in the commands imapflow
 * writes (its debug log, sensitive values masked) and in the turns a link proxy counts
 * (test/support/link-proxy.ts: the round trips the client waited for):
 *
 *   - 001 sasl-ir-plain: where the server offers SASL-IR, AUTHENTICATE PLAIN carries its response
 *     on the command line (RFC 4959), no continuation; a wrong password still fails as a login failure;
 *   - 002 id-once-after-login: with `disableIdAfterLogin` ID is sent once (before login), where
 *     imapflow otherwise asks again after login when Dovecot's first answer is short;
 *   - 003 list-only-list-status: `list({ listOnly, statusQuery })` brings each folder's STATUS with
 *     the LIST (LIST-STATUS), and no STATUS command;
 *   - 004 pipelining, 005 session-setup-pipelined: with `pipelining`, connect + logout take three
 *     round trips instead of six, and a FETCH queued behind another is written at once; every
 *     row arrives once, whichever of the two commands imapflow hands it to.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ImapFlow } from 'imapflow';
import { startUpstream, type Upstream } from './support/upstream';
import { startLinkProxy } from './support/link-proxy';

const ALICE = { address: 'alice@upstream.test', password: 'alice-session-pw' };

let upstream: Upstream;

before(async () => {
    upstream = await startUpstream({ users: [ALICE] });
});

after(async () => {
    await upstream?.stop();
});

interface Written {
    msg: string;
    comment?: string;
}

/**
 * Logs in as alice (or with `password`), through a counting link proxy, runs `work`, logs out;
 * collects what imapflow wrote and the turns the session waited for.
 */
async function session(options: {
    password?: string;
    disableIdAfterLogin?: boolean;
    pipelining?: boolean;
    work?: (client: ImapFlow) => Promise<void>;
}): Promise<{ written: Written[]; capabilities: Set<string>; enabled: Set<string>; turns: number; error: unknown }> {
    // A little latency, as on the real link: what the client writes together reaches the proxy
    // before any answer comes back, whatever the order the proxy's reads happen in.
    const link = await startLinkProxy({ targetPort: upstream.imapPort, latencyMs: 20 });
    const written: Written[] = [];
    const record = (entry: { src?: string; msg?: string; comment?: string }) => {
        if (entry && entry.src === 'c' && typeof entry.msg === 'string') written.push({ msg: entry.msg, comment: entry.comment });
    };
    const noop = () => undefined;
    const client = new ImapFlow({
        host: '127.0.0.1',
        port: link.port,
        secure: false,
        doSTARTTLS: false,
        auth: { user: ALICE.address, pass: options.password ?? ALICE.password },
        logger: { debug: record, info: noop, warn: noop, error: noop },
        disableIdAfterLogin: options.disableIdAfterLogin,
        pipelining: options.pipelining,
        connectionTimeout: 10_000,
        greetingTimeout: 10_000,
        socketTimeout: 20_000
    });
    client.on('error', noop);
    let error: unknown = null;
    try {
        await client.connect();
        await options.work?.(client);
        await client.logout();
    } catch (err) {
        error = err;
    } finally {
        client.close();
        await link.close();
    }
    return { written, capabilities: new Set(client.capabilities.keys()), enabled: new Set(client.enabled), turns: link.stats().turns, error };
}

/** A short message for alice's INBOX. */
function note(i: number): Buffer {
    return Buffer.from(`From: carol@example.org\r\nTo: ${ALICE.address}\r\nSubject: note ${i}\r\nMessage-ID: <note-${i}@example.org>\r\n\r\n${'word '.repeat(50 * (i + 1))}\r\n`);
}

const commands = (written: Written[], name: string) => written.filter(w => new RegExp(`^\\S+ ${name}\\b`, 'i').test(w.msg));

test('AUTHENTICATE PLAIN sends its response with the command where Dovecot offers SASL-IR (patch 001)', { timeout: 30_000 }, async () => {
    const { written, capabilities, error } = await session({});
    assert.equal(error, null);
    assert.ok(capabilities.has('SASL-IR'), 'Dovecot offers SASL-IR');
    const auth = commands(written, 'AUTHENTICATE');
    assert.equal(auth.length, 1);
    assert.match(auth[0].msg, /^\S+ AUTHENTICATE PLAIN \S+/, 'the initial response is on the command line');
    assert.ok(!auth[0].msg.includes(Buffer.from(`\0${ALICE.address}\0${ALICE.password}`).toString('base64')), 'the response is masked in the log');
    assert.equal(written.filter(w => /AUTH=PLAIN/.test(w.comment ?? '')).length, 0, 'no continuation answered');
});

test('a wrong password over SASL-IR is a login failure (patch 001)', { timeout: 30_000 }, async () => {
    const { error } = await session({ password: 'not-the-password' });
    assert.ok(error, 'refused');
    assert.equal((error as { authenticationFailed?: boolean }).authenticationFailed, true);
});

test('disableIdAfterLogin: ID once, before login (patch 002); without it imapflow asks Dovecot twice', { timeout: 30_000 }, async () => {
    const once = await session({ disableIdAfterLogin: true });
    assert.equal(once.error, null);
    assert.equal(commands(once.written, 'ID').length, 1);
    const authAt = once.written.findIndex(w => /^\S+ AUTHENTICATE\b/i.test(w.msg));
    const idAt = once.written.findIndex(w => /^\S+ ID\b/i.test(w.msg));
    assert.ok(idAt >= 0 && idAt < authAt, 'the one ID goes before login');
    const twice = await session({});
    assert.equal(commands(twice.written, 'ID').length, 2, "imapflow's default, unchanged");
});

test("list({ listOnly, statusQuery }) brings each folder's STATUS with the LIST, no STATUS command (patch 003)", { timeout: 30_000 }, async () => {
    await upstream.deliver(ALICE.address, note(0));
    const expected = (await upstream.listMessages(ALICE.address)).length;
    let inbox: { status?: { messages?: number; uidNext?: number } } | undefined;
    let plain: { status?: unknown } | undefined;
    const { written, capabilities, error } = await session({
        work: async client => {
            inbox = (await client.list({ listOnly: true, statusQuery: { messages: true, uidNext: true } })).find(entry => entry.path === 'INBOX');
            plain = (await client.list({ listOnly: true })).find(entry => entry.path === 'INBOX');
        }
    });
    assert.equal(error, null);
    assert.ok(capabilities.has('LIST-STATUS'), 'Dovecot offers LIST-STATUS');
    assert.equal(inbox?.status?.messages, expected, 'the STATUS came with the listing');
    assert.ok(Number(inbox?.status?.uidNext) > expected);
    assert.equal(plain?.status, undefined, 'no statusQuery, no status');
    assert.equal(commands(written, 'STATUS').length, 0, 'no STATUS command');
    assert.match(commands(written, 'LIST')[0].msg, /RETURN \(STATUS \(/);
});

test('pipelining: connect + logout in three round trips instead of six, the same session (patches 004, 005)', { timeout: 30_000 }, async () => {
    const serial = await session({ disableIdAfterLogin: true });
    const pipelined = await session({ disableIdAfterLogin: true, pipelining: true });
    assert.equal(serial.error, null);
    assert.equal(pipelined.error, null);
    // ID, AUTHENTICATE, NAMESPACE, COMPRESS, ENABLE, LOGOUT, each waiting for the one before.
    assert.equal(serial.turns, 6);
    // ID + AUTHENTICATE; NAMESPACE + ENABLE + COMPRESS; LOGOUT.
    assert.equal(pipelined.turns, 3);
    const ahead = pipelined.written.filter(w => w.comment === 'pipelined').map(w => w.msg.split(' ')[1]);
    assert.deepEqual(ahead, ['AUTHENTICATE', 'ENABLE', 'COMPRESS']);
    assert.deepEqual([...pipelined.enabled].sort(), [...serial.enabled].sort(), 'the same extensions enabled');
    assert.ok(pipelined.enabled.has('CONDSTORE'));
});

test('pipelining: a FETCH queued behind another goes out at once; every row arrives once, matched by UID (patch 004)', { timeout: 30_000 }, async () => {
    for (let i = 1; i <= 6; i++) await upstream.deliver(ALICE.address, note(i));
    const uids = (await upstream.listMessages(ALICE.address)).map(m => m.uid).sort((a, b) => a - b);
    const half = uids[Math.floor(uids.length / 2)];
    const rows: number[] = [];
    let compressed = false;
    const { written, turns, error } = await session({
        disableIdAfterLogin: true,
        pipelining: true,
        work: async client => {
            // A command after COMPRESS goes out compressed: the listing works.
            compressed = (await client.list({ listOnly: true })).some(entry => entry.path === 'INBOX');
            const lock = await client.getMailboxLock('INBOX');
            try {
                const first = client.fetch(`1:${half - 1}`, { uid: true, source: true }, { uid: true });
                const firstRow = first.next();
                // The second goes in the queue once the first is there (imapflow reaches it in microtasks).
                await new Promise(resolve => setImmediate(resolve));
                const second = client.fetch(`${half}:*`, { uid: true, source: true }, { uid: true });
                const secondRow = second.next();
                for (let row = await firstRow; !row.done; row = await first.next()) rows.push(row.value.uid);
                for (let row = await secondRow; !row.done; row = await second.next()) rows.push(row.value.uid);
            } finally {
                lock.release();
            }
        }
    });
    assert.equal(error, null);
    assert.ok(compressed);
    assert.deepEqual(
        rows.sort((a, b) => a - b),
        uids,
        'every message once'
    );
    const fetches = written.filter(w => /^\S+ UID FETCH\b/.test(w.msg));
    assert.equal(fetches.length, 2);
    assert.equal(fetches[1].comment, 'pipelined', 'the second FETCH was written behind the first');
    // Session (3 with LOGOUT), LIST, SELECT, and one for both FETCHes: 6 on an idle machine. Under
    // load the client can stall between the two writes, or a compressed write can leave in two
    // segments with the server's answer in between, and the proxy counts 7 or 8 (seen in CI at load
    // 10). So only the floor is asserted here; that imapflow did not wait for the first answer is
    // checked above, by its 'pipelined' mark.
    assert.ok(turns >= 6, `${turns} turns`);
});
