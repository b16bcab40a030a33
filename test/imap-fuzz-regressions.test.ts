/**
 * Cases the protocol fuzzer (test/imap-fuzz.test.ts) found, each kept as a fixed regression.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type Gateway } from './support/gateway';
import { RawImapConnection } from './support/raw-imap-connection';

let gateway: Gateway;

before(async () => {
    gateway = await startGateway();
});

after(async () => {
    await gateway?.stop();
});

test('an unknown command that ends like a literal announcement gets a reply a client can read', async () => {
    const connection = await RawImapConnection.session(gateway.imapPort, 'alice', 'alice-secret-pw');
    try {
        // imap-core echoed the name: `T2 BAD Unknown command: SUB{1}` reads as a literal to follow.
        const reply = await connection.command('SUB{1}', 3000);
        assert.match(reply.tagged, /^\S+ BAD /);
        assert.doesNotMatch(reply.tagged, /\{\d+\+?\}$/);
        assert.match((await connection.command('NOOP', 3000)).tagged, /^\S+ OK /);
    } finally {
        connection.destroy();
    }
});

test('NIL where a command expects a name is the word NIL; a list there is BAD (LOGIN, APPEND)', async () => {
    const anonymous = await RawImapConnection.connect(gateway.imapPort);
    const session = await RawImapConnection.session(gateway.imapPort, 'alice', 'alice-secret-pw');
    try {
        // `LOGIN NIL NIL` threw in imap-core (null.value); it is a login as the user "NIL", which fails.
        assert.match((await anonymous.command('LOGIN NIL NIL', 20_000)).tagged, /^\S+ NO /);
        assert.match((await anonymous.command('LOGIN (a) b', 3000)).tagged, /^\S+ BAD /);
        session.write('A1 APPEND (x) {3}\r\n');
        await session.waitFor(r => r.text.startsWith('+'), 'continuation', 3000);
        session.write('abc\r\n');
        assert.match((await session.waitFor(r => r.text.startsWith('A1 '), 'APPEND reply', 3000)).text, /^A1 BAD /);
        assert.match((await session.command('SELECT NIL', 3000)).tagged, /^\S+ NO /);
        assert.match((await session.command('NOOP', 3000)).tagged, /^\S+ OK /);
    } finally {
        anonymous.destroy();
        session.destroy();
    }
    assert.ok(!gateway.logLines.some(line => /"level":50/.test(line) && /LOGIN|APPEND|SELECT/.test(line)), 'no contained exception was logged');
});

test('LSUB with an empty name answers the hierarchy delimiter, as LIST does', async () => {
    const session = await RawImapConnection.session(gateway.imapPort, 'alice', 'alice-secret-pw');
    try {
        const lsub = await session.command('LSUB "" ""', 3000);
        assert.match(lsub.tagged, /^\S+ OK /);
        assert.deepEqual(
            lsub.untagged.map(r => r.text),
            ['* LSUB (\\Noselect) "/" ""']
        );
    } finally {
        session.destroy();
    }
});

test('an empty search group is a term, not a failure', async () => {
    const session = await RawImapConnection.session(gateway.imapPort, 'alice', 'alice-secret-pw', 'INBOX');
    try {
        assert.match((await session.command('SEARCH OR () ALL', 3000)).tagged, /^\S+ OK /);
        assert.match((await session.command('UID SEARCH NOT (()) OR () ()', 3000)).tagged, /^\S+ OK /);
    } finally {
        session.destroy();
    }
});

test('ENABLE without a capability name is BAD', async () => {
    const session = await RawImapConnection.session(gateway.imapPort, 'alice', 'alice-secret-pw');
    try {
        assert.match((await session.command('ENABLE', 3000)).tagged, /^\S+ BAD /);
        assert.match((await session.command('ENABLE CONDSTORE', 3000)).tagged, /^\S+ OK /);
    } finally {
        session.destroy();
    }
    assert.ok(!gateway.logLines.some(line => /"level":50/.test(line) && /ENABLE/.test(line)), 'no contained exception was logged');
});

test('APPEND with something other than a literal as the message is BAD', async () => {
    const session = await RawImapConnection.session(gateway.imapPort, 'alice', 'alice-secret-pw');
    try {
        session.write('A2 APPEND INBOX {3}\r\n');
        await session.waitFor(r => r.text.startsWith('+'), 'continuation', 3000);
        session.write('abc NIL\r\n');
        assert.match((await session.waitFor(r => r.text.startsWith('A2 '), 'APPEND reply', 3000)).text, /^A2 BAD /);
        assert.match((await session.command('APPEND INBOX NIL', 3000)).tagged, /^\S+ BAD /);
        // NIL inside the flag list is the keyword NIL, not a hole to read from.
        session.write('A3 APPEND INBOX (NIL) {3}\r\n');
        await session.waitFor(r => r.text.startsWith('+'), 'continuation', 3000);
        session.write('abc\r\n');
        assert.match((await session.waitFor(r => r.text.startsWith('A3 '), 'APPEND reply', 3000)).text, /^A3 OK /);
    } finally {
        session.destroy();
    }
    assert.ok(!gateway.logLines.some(line => /"level":50/.test(line) && /APPEND/.test(line)), 'no contained exception was logged');
});

test('ID with NIL keys or values is answered', async () => {
    const connection = await RawImapConnection.connect(gateway.imapPort);
    try {
        assert.match((await connection.command('ID ("name" NIL NIL "x")', 3000)).tagged, /^\S+ OK /);
        assert.match((await connection.command('NOOP', 3000)).tagged, /^\S+ OK /);
    } finally {
        connection.destroy();
    }
    assert.ok(!gateway.logLines.some(line => /"level":50/.test(line) && /"command":"ID"/.test(line)), 'no contained exception was logged');
});
