/**
 * A mailbox name that is not valid modified UTF-7 (RFC 3501 5.1.3) gets NO with the reason from
 * every command that names a mailbox, instead of being decoded into another name ("foo&" used to
 * create "foo", DELETE "foo&" to delete it, SELECT "foo&" to open it, APPEND "foo&" to file into
 * it). Dovecot 2.3 answers all of them `NO Mailbox name is not valid mUTF-7`. imap-core patches
 * 120 (CREATE, RENAME, DELETE) and 121 (the others); over real TCP with a raw client.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, DEFAULT_USERS, type Gateway } from './support/gateway';
import { RawImapConnection } from './support/raw-imap-connection';

const user = DEFAULT_USERS[0];
const REFUSED = /^\S+ NO \[CANNOT\] Mailbox name is not valid modified UTF-7 \(RFC 3501 5\.1\.3\): write "&" as "&-"$/;
let gateway: Gateway;

before(async () => {
    gateway = await startGateway();
});
after(async () => {
    await gateway?.stop();
});

async function names(connection: RawImapConnection): Promise<string[]> {
    const list = await connection.command('LIST "" "*"');
    return list.untagged.map(response => /^\* LIST \([^)]*\) "\/" (.+)$/.exec(response.text)?.[1] ?? '').map(name => name.replace(/^"(.*)"$/, '$1'));
}

test('CREATE, RENAME and DELETE refuse an invalid modified UTF-7 name and change nothing', async () => {
    const connection = await RawImapConnection.session(gateway.imapPort, user.name, user.password);
    try {
        const before = await names(connection);
        // An unterminated "&", a run that is not BASE64, printable ASCII encoded, a lone surrogate, bad padding.
        for (const name of ['foo&', 'foo&&-', 'foo&AGE-', 'x&2D0-', 'x&Jjp-', 'x&Jjo']) {
            assert.match((await connection.command(`CREATE "${name}"`)).tagged, REFUSED, name);
        }
        assert.deepEqual(await names(connection), before, 'nothing was created');

        assert.match((await connection.command('CREATE "foo"')).tagged, /^\S+ OK/);
        assert.match((await connection.command('DELETE "foo&"')).tagged, REFUSED);
        assert.match((await connection.command('RENAME "foo" "bar&"')).tagged, REFUSED);
        assert.match((await connection.command('RENAME "foo&" "bar"')).tagged, REFUSED);
        assert.ok((await names(connection)).includes('foo'), 'foo is still there, under its name');
    } finally {
        connection.destroy();
    }
});

test('SELECT, EXAMINE, STATUS, APPEND, COPY, MOVE, SUBSCRIBE, UNSUBSCRIBE, GETQUOTAROOT refuse an invalid name instead of acting on another mailbox', async () => {
    const connection = await RawImapConnection.session(gateway.imapPort, user.name, user.password);
    const message = 'From: a@example.org\r\nSubject: kept\r\n\r\nbody\r\n';
    const messages = async (mailbox: string) => /MESSAGES (\d+)/.exec((await connection.command(`STATUS "${mailbox}" (MESSAGES)`)).untagged.map(r => r.text).join(' '))?.[1];
    const subscribed = async () => (await connection.command('LSUB "" "*"')).untagged.map(r => r.text).sort();
    try {
        // "foo&" decoded leniently is "foo": the mailbox a wrong answer would act on.
        assert.match((await connection.command('CREATE "names-foo"')).tagged, /^\S+ OK/);
        assert.match((await connection.command(`APPEND "names-foo" {${message.length}+}\r\n${message}`)).tagged, /^\S+ OK/);
        assert.match((await connection.command('SUBSCRIBE "names-foo"')).tagged, /^\S+ OK/);
        assert.match((await connection.command('CREATE "names-bar"')).tagged, /^\S+ OK/);
        const lsubBefore = await subscribed();

        for (const name of ['names-foo&', 'names-foo&AGE-', 'names-foo&Jjo']) {
            assert.match((await connection.command(`STATUS "${name}" (MESSAGES)`)).tagged, REFUSED, `STATUS ${name}`);
            assert.match((await connection.command(`APPEND "${name}" {${message.length}+}\r\n${message}`)).tagged, REFUSED, `APPEND ${name}`);
            assert.match((await connection.command(`GETQUOTAROOT "${name}"`)).tagged, REFUSED, `GETQUOTAROOT ${name}`);
            assert.match((await connection.command(`UNSUBSCRIBE "${name}"`)).tagged, REFUSED, `UNSUBSCRIBE ${name}`);
            assert.match((await connection.command(`SUBSCRIBE "${name.replace('foo', 'bar')}"`)).tagged, REFUSED, `SUBSCRIBE ${name}`);
            assert.match((await connection.command(`EXAMINE "${name}"`)).tagged, REFUSED, `EXAMINE ${name}`);
            // A failed SELECT leaves no mailbox selected (RFC 3501 6.3.1), as Dovecot does.
            assert.match((await connection.command('SELECT "names-foo"')).tagged, /^\S+ OK/);
            assert.match((await connection.command(`SELECT "${name}"`)).tagged, REFUSED, `SELECT ${name}`);
            assert.match((await connection.command('FETCH 1 FLAGS')).tagged, /^\S+ BAD/, 'no mailbox selected after the failed SELECT');

            assert.match((await connection.command('SELECT "names-foo"')).tagged, /^\S+ OK/);
            for (const command of ['COPY', 'MOVE', 'UID COPY', 'UID MOVE']) {
                assert.match((await connection.command(`${command} 1:* "${name}"`)).tagged, REFUSED, `${command} ${name}`);
            }
            assert.match((await connection.command('CLOSE')).tagged, /^\S+ OK/);
        }
        assert.equal(await messages('names-foo'), '1', 'names-foo holds its one message: nothing appended, copied or moved');
        assert.deepEqual(await subscribed(), lsubBefore, 'subscriptions unchanged');
        assert.match((await connection.command('NOOP')).tagged, /^\S+ OK/);
    } finally {
        connection.destroy();
    }
});

test('valid modified UTF-7 names still work, and UTF8=ACCEPT names are not modified UTF-7', async () => {
    const connection = await RawImapConnection.session(gateway.imapPort, user.name, user.password);
    try {
        for (const name of ['AT&-T', 'Caf&AOk-', '&ZeVnLIqe-', 'Smile &2D3eAQ-']) {
            assert.match((await connection.command(`CREATE "${name}"`)).tagged, /^\S+ OK/, name);
        }
        for (const command of ['SELECT "&ZeVnLIqe-"', 'EXAMINE "Smile &2D3eAQ-"', 'STATUS "AT&-T" (MESSAGES)', 'SUBSCRIBE "Caf&AOk-"', 'UNSUBSCRIBE "Caf&AOk-"', 'GETQUOTAROOT "AT&-T"']) {
            assert.match((await connection.command(command)).tagged, /^\S+ OK/, command);
        }
        assert.match((await connection.command('RENAME "AT&-T" "AT&-T old"')).tagged, /^\S+ OK/);
        const listed = await names(connection);
        for (const name of ['AT&-T old', 'Caf&AOk-', '&ZeVnLIqe-', 'Smile &2D3eAQ-']) assert.ok(listed.includes(name), `${name} in ${listed.join(', ')}`);
        assert.match((await connection.command('DELETE "Caf&AOk-"')).tagged, /^\S+ OK/);

        // With UTF8=ACCEPT (RFC 6855) a name is UTF-8 and "&" is just a character.
        const utf8 = await RawImapConnection.session(gateway.imapPort, user.name, user.password);
        try {
            assert.match((await utf8.command('ENABLE UTF8=ACCEPT')).tagged, /^\S+ OK/);
            assert.match((await utf8.command('CREATE "R&D"')).tagged, /^\S+ OK/);
        } finally {
            utf8.destroy();
        }
        assert.ok((await names(connection)).includes('R&-D'), 'shown in modified UTF-7 to a legacy session');
    } finally {
        connection.destroy();
    }
});
