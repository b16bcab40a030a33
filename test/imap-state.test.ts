/**
 * Mailbox state as each session sees it, across commands and sessions: addresses found as
 * parsed, no EXPUNGE during a non-UID SEARCH, new keywords announced in FLAGS before use, MOVE's
 * COPYUID and MOVE into the same mailbox, and \Recent (one session per message).
 *
 * Raw sessions over TCP, so the order of untagged responses is what the test sees.
 */
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, makeMessage, type Gateway } from './support/gateway';
import { RawImapConnection, appendRaw } from './support/raw-imap-connection';

const TEST_MS = 30_000;
const USER = 'alice';
const PASSWORD = 'alice-secret-pw';

let gateway: Gateway;
const open: RawImapConnection[] = [];

before(
    async () => {
        gateway = await startGateway({ plaintext: true });
    },
    { timeout: TEST_MS }
);

after(
    async () => {
        for (const connection of open) connection.destroy();
        await gateway.stop();
    },
    { timeout: TEST_MS }
);

// Each test logs its sessions out, and waits for the server to close them: the gateway allows
// 10 sessions per user and address (as Dovecot's mail_max_userip_connections).
afterEach(async () => {
    for (const connection of open.splice(0)) {
        if (connection.closed) continue;
        connection.write('Z1 LOGOUT\r\n');
        await connection.waitClosed();
    }
});

let mailboxCounter = 0;
/** A fresh mailbox per test, so tests do not see each other's messages. */
async function freshMailbox(connection: RawImapConnection): Promise<string> {
    const name = `state-${++mailboxCounter}`;
    const created = await connection.command(`CREATE ${name}`);
    assert.match(created.tagged, /^\S+ OK/);
    return name;
}

async function session(mailbox?: string): Promise<RawImapConnection> {
    const connection = await RawImapConnection.session(gateway.imapPort, USER, PASSWORD, mailbox);
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
    assert.deepEqual(
        texts(search).filter(line => line.startsWith('* SEARCH')),
        ['* SEARCH 1 3']
    );
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

test('MOVE sends COPYUID untagged before its EXPUNGEs; MOVE into the same mailbox gives new UIDs', { timeout: TEST_MS }, async () => {
    const a = await session();
    const mailbox = await freshMailbox(a);
    const other = await freshMailbox(a);
    for (let i = 0; i < 3; i++) await appendRaw(a, mailbox, makeMessage({ subject: `m${i}` }));
    const selected = await a.command(`SELECT ${mailbox}`);
    const validity = /UIDVALIDITY (\d+)/.exec(texts(selected).join('\n'))![1];

    const move = await a.command(`MOVE 1 ${other}`);
    ok(move);
    const lines = texts(move);
    const copyuid = lines.findIndex(line => /^\* OK \[COPYUID \d+ 1 1\]/.test(line));
    assert.ok(copyuid >= 0, lines.join('\n'));
    assert.ok(copyuid < lines.indexOf('* 1 EXPUNGE'), lines.join('\n'));

    const self = await a.command(`MOVE 1 ${mailbox}`);
    ok(self);
    assert.deepEqual(
        texts(self).filter(line => !line.startsWith('* FLAGS') && !line.includes('PERMANENTFLAGS') && !/RECENT$/.test(line)),
        [`* OK [COPYUID ${validity} 2 4] Moved UIDs.`, '* 1 EXPUNGE', '* 2 EXISTS']
    );
    const uids = await a.command('FETCH 1:* UID');
    assert.deepEqual(texts(uids), ['* 1 FETCH (UID 3)', '* 2 FETCH (UID 4)']);
});

test("APPEND announces others' new messages too, and their later EXPUNGE still arrives", { timeout: TEST_MS }, async () => {
    const a = await session();
    const mailbox = await freshMailbox(a);
    await appendRaw(a, mailbox, makeMessage({ subject: 'first' }));
    ok(await a.command(`SELECT ${mailbox}`));
    const b = await session(mailbox);
    // b adds a message and removes it again; a has not been told of either yet.
    await appendRaw(b, mailbox, makeMessage({ subject: 'from b' }));
    // a's APPEND announces b's message (still there) and its own.
    ok(await b.command('NOOP'));
    const appended = await appendRaw(a, mailbox, makeMessage({ subject: 'from a' }));
    assert.match(appended, /OK/);
    ok(await b.command('STORE 2 +FLAGS (\\Deleted)'));
    ok(await b.command('EXPUNGE'));
    const noop = await a.command('NOOP');
    assert.ok(texts(noop).includes('* 2 EXPUNGE'), texts(noop).join('\n'));
    const uids = await a.command('FETCH 1:* UID');
    assert.equal(texts(uids).length, 2, texts(uids).join('\n'));
});

/** Index of the first line matching, failing when there is none. */
function indexOf(lines: string[], pattern: RegExp): number {
    const index = lines.findIndex(line => pattern.test(line));
    assert.ok(index >= 0, `no line matches ${pattern}:\n${lines.join('\n')}`);
    return index;
}

test('a new keyword is announced in FLAGS and PERMANENTFLAGS before a FETCH shows it (RFC 3501 7.2.6)', { timeout: TEST_MS }, async () => {
    const a = await session();
    const mailbox = await freshMailbox(a);
    for (let i = 0; i < 2; i++) await appendRaw(a, mailbox, makeMessage({ subject: `m${i}` }));
    ok(await a.command(`SELECT ${mailbox}`));
    const b = await session(mailbox);
    const c = await session(mailbox);

    // The session that stores it: FLAGS, PERMANENTFLAGS, then its FETCH.
    const store = texts(await a.command('STORE 1 +FLAGS ($Fresh)'));
    const flags = indexOf(store, /^\* FLAGS \(.*\$Fresh/);
    const permanent = indexOf(store, /^\* OK \[PERMANENTFLAGS \(.*\$Fresh.*\\\*\)\]/);
    const fetch = indexOf(store, /^\* 1 FETCH \(FLAGS \(\$Fresh[^)]*\)\)/);
    assert.ok(flags < fetch && permanent < fetch, store.join('\n'));
    // Told once: the next keyword-bearing FETCH has no FLAGS before it.
    const again = texts(await a.command('FETCH 1 FLAGS'));
    assert.ok(!again.some(line => line.startsWith('* FLAGS')), again.join('\n'));

    // Another session, from the change notification.
    const noop = texts(await b.command('NOOP'));
    assert.ok(indexOf(noop, /^\* FLAGS \(.*\$Fresh/) < indexOf(noop, /^\* 1 FETCH \(FLAGS \(\$Fresh[^)]*\)\)/), noop.join('\n'));

    // A session that FETCHes the flags itself before its notification arrives (FETCH carries none).
    ok(await a.command('STORE 2 +FLAGS ($Later)'));
    const fetched = texts(await c.command('FETCH 2 FLAGS'));
    assert.ok(indexOf(fetched, /^\* FLAGS \(.*\$Later/) < indexOf(fetched, /^\* 2 FETCH \(FLAGS \(\$Later[^)]*\)\)/), fetched.join('\n'));
});

function recentCount(lines: string[]): number | null {
    const line = lines.find(text => /^\* \d+ RECENT$/.test(text));
    return line ? Number(line.split(' ')[1]) : null;
}

test('\\Recent: EXAMINE and STATUS only look, the first SELECT takes them, and no one else sees them', { timeout: TEST_MS }, async () => {
    const a = await session();
    const mailbox = await freshMailbox(a);
    await appendRaw(a, mailbox, makeMessage({ subject: 'one' }));
    await appendRaw(a, mailbox, makeMessage({ subject: 'two' }), '\\Seen');

    const examine = texts(await a.command(`EXAMINE ${mailbox}`));
    assert.equal(recentCount(examine), 2, examine.join('\n'));
    assert.ok(examine.includes('* OK [UNSEEN 1] First unseen'), examine.join('\n'));
    ok(await a.command('CLOSE'));
    const status = texts(await a.command(`STATUS ${mailbox} (MESSAGES RECENT)`));
    assert.deepEqual(status, [`* STATUS ${mailbox} (MESSAGES 2 RECENT 2)`]);

    const select = texts(await a.command(`SELECT ${mailbox}`));
    assert.equal(recentCount(select), 2, select.join('\n'));
    const flags = texts(await a.command('FETCH 1:2 FLAGS'));
    assert.deepEqual(flags, ['* 1 FETCH (FLAGS (\\Recent))', '* 2 FETCH (FLAGS (\\Seen \\Recent))']);
    assert.deepEqual(texts(await a.command('SEARCH RECENT')), ['* SEARCH 1 2']);
    assert.deepEqual(texts(await a.command('SEARCH NEW')), ['* SEARCH 1']);
    assert.deepEqual(texts(await a.command('SEARCH OLD')), ['* SEARCH']);
    // A flag change keeps \Recent in the FETCH that reports it.
    assert.deepEqual(texts(await a.command('STORE 1 +FLAGS (\\Flagged)')), ['* 1 FETCH (FLAGS (\\Flagged \\Recent))']);

    const b = await session();
    const other = texts(await b.command(`SELECT ${mailbox}`));
    assert.equal(recentCount(other), 0, other.join('\n'));
    assert.deepEqual(texts(await b.command('SEARCH RECENT')), ['* SEARCH']);
    const after = texts(await b.command(`STATUS ${mailbox} (RECENT)`));
    assert.deepEqual(after, [`* STATUS ${mailbox} (RECENT 0)`]);
});

test('\\Recent: a message that arrives while two sessions have the mailbox selected is recent in exactly one', { timeout: TEST_MS }, async () => {
    const a = await session();
    const mailbox = await freshMailbox(a);
    ok(await a.command(`SELECT ${mailbox}`));
    const b = await session(mailbox);
    const c = await session();
    await appendRaw(c, mailbox, makeMessage({ subject: 'new' }));
    const noopA = texts(await a.command('NOOP'));
    const noopB = texts(await b.command('NOOP'));
    assert.ok(noopA.includes('* 1 EXISTS') && noopB.includes('* 1 EXISTS'), [...noopA, ...noopB].join('\n'));
    const counts = [recentCount(noopA) ?? 0, recentCount(noopB) ?? 0].sort();
    assert.deepEqual(counts, [0, 1], [...noopA, '--', ...noopB].join('\n'));
    const flags = [...texts(await a.command('FETCH 1 FLAGS')), ...texts(await b.command('FETCH 1 FLAGS'))];
    assert.deepEqual(flags.filter(line => line.includes('\\Recent')).length, 1, flags.join('\n'));

    // The appending session itself, when it has the mailbox selected, takes its own message.
    const appended = await appendRaw(a, mailbox, makeMessage({ subject: 'mine' }));
    assert.match(appended, /OK/);
    assert.deepEqual(
        texts(await a.command('SEARCH RECENT'))
            .concat(texts(await b.command('SEARCH RECENT')))
            .filter(line => / 2( |$)/.test(line)).length,
        1
    );
});
