/**
 * Mailbox state as each session sees it, across commands and sessions: addresses found as
 * parsed, no EXPUNGE during a non-UID SEARCH, new keywords announced in FLAGS before use, MOVE's
 * COPYUID and MOVE into the same mailbox, and \Recent (one session per message).
 *
 * Raw sessions over TCP, so the order of untagged responses is what the test sees.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, makeMessage, type Gateway } from './helpers';
import { RawImap, appendRaw } from './raw-imap';

const TEST_MS = 30_000;
const USER = 'alice';
const PASSWORD = 'alice-secret-pw';

let gateway: Gateway;
const open: RawImap[] = [];

before(async () => {
    gateway = await startGateway({ plaintext: true });
}, { timeout: TEST_MS });

after(async () => {
    for (const connection of open) connection.destroy();
    await gateway.stop();
}, { timeout: TEST_MS });

let mailboxCounter = 0;
/** A fresh mailbox per test, so tests do not see each other's messages. */
async function freshMailbox(connection: RawImap): Promise<string> {
    const name = `state-${++mailboxCounter}`;
    const created = await connection.command(`CREATE ${name}`);
    assert.match(created.tagged, /^\S+ OK/);
    return name;
}

async function session(mailbox?: string): Promise<RawImap> {
    const connection = await RawImap.session(gateway.imapPort, USER, PASSWORD, mailbox);
    open.push(connection);
    return connection;
}

function texts(reply: { untagged: { text: string }[] }): string[] {
    return reply.untagged.map(response => response.text);
}

function ok(reply: { tagged: string }): void {
    assert.match(reply.tagged, /^\S+ OK/, reply.tagged);
}

test('SEARCH FROM finds an address written with comments inside it', { timeout: TEST_MS }, async () => {
    const a = await session();
    const mailbox = await freshMailbox(a);
    await appendRaw(a, mailbox, makeMessage({ from: '<user-from (comment)@ (comment) domain.org>' }));
    await appendRaw(a, mailbox, makeMessage({ from: 'Other <other@domain.org>' }));
    await appendRaw(a, mailbox, makeMessage({ from: 'user-from@domain.org (RealFrom)' }));
    ok(await a.command(`SELECT ${mailbox}`));
    const search = await a.command('SEARCH FROM user-from@domain.org');
    ok(search);
    assert.deepEqual(texts(search).filter(line => line.startsWith('* SEARCH')), ['* SEARCH 1 3']);
});

test('a plain SEARCH sends no EXPUNGE (RFC 3501 7.4.1); the next NOOP does', { timeout: TEST_MS }, async () => {
    const a = await session();
    const mailbox = await freshMailbox(a);
    for (let i = 0; i < 3; i++) await appendRaw(a, mailbox, makeMessage({ subject: `m${i}` }));
    ok(await a.command(`SELECT ${mailbox}`));
    const b = await session(mailbox);
    ok(await a.command('STORE 1 +FLAGS (\\Deleted)'));
    ok(await a.command('EXPUNGE'));
    // The expunge has reached b's queue once a command of b's that may carry it answers it;
    // a plain SEARCH must not.
    const search = await b.command('SEARCH ALL');
    ok(search);
    assert.ok(!texts(search).some(line => / EXPUNGE$/.test(line)), texts(search).join('\n'));
    const noop = await b.command('NOOP');
    assert.ok(texts(noop).includes('* 1 EXPUNGE'), texts(noop).join('\n'));
});
