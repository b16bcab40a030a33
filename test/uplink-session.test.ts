/**
 * The uplink's IMAP session set-up against real Dovecot (test/support/upstream.ts): the round
 * trips the imapflow patches take out (patches/imapflow+2.10.2+001 and +002), seen in the
 * commands imapflow writes (its debug log, sensitive values masked):
 *
 *   - 001 sasl-ir-plain: where the server offers SASL-IR, AUTHENTICATE PLAIN carries its response
 *     on the command line (RFC 4959), no continuation; a wrong password still fails as a login failure;
 *   - 002 id-once-after-login: with `disableIdAfterLogin` ID is sent once (before login), where
 *     imapflow otherwise asks again after login when Dovecot's first answer is short.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ImapFlow } from 'imapflow';
import { startUpstream, type Upstream } from './support/upstream';

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

/** Logs in as alice (or with `password`), collecting what imapflow wrote; logs out. */
async function session(options: { password?: string; disableIdAfterLogin?: boolean }): Promise<{ written: Written[]; capabilities: Set<string>; error: unknown }> {
    const written: Written[] = [];
    const record = (entry: { src?: string; msg?: string; comment?: string }) => {
        if (entry && entry.src === 'c' && typeof entry.msg === 'string') written.push({ msg: entry.msg, comment: entry.comment });
    };
    const noop = () => undefined;
    const client = new ImapFlow({
        host: '127.0.0.1',
        port: upstream.imapPort,
        secure: false,
        doSTARTTLS: false,
        auth: { user: ALICE.address, pass: options.password ?? ALICE.password },
        logger: { debug: record, info: noop, warn: noop, error: noop },
        disableIdAfterLogin: options.disableIdAfterLogin,
        connectionTimeout: 10_000,
        greetingTimeout: 10_000,
        socketTimeout: 20_000
    });
    client.on('error', noop);
    let error: unknown = null;
    try {
        await client.connect();
        await client.logout();
    } catch (err) {
        error = err;
    } finally {
        client.close();
    }
    return { written, capabilities: new Set(client.capabilities.keys()), error };
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
