/**
 * A mailbox name that is not valid modified UTF-7 (RFC 3501 5.1.3) gets NO with the reason from
 * CREATE, RENAME and DELETE, instead of being decoded into another name ("foo&" used to create
 * "foo", and DELETE "foo&" to delete it). imap-core patch 120; over real TCP with a raw client.
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

test('valid modified UTF-7 names still work, and UTF8=ACCEPT names are not modified UTF-7', async () => {
    const connection = await RawImapConnection.session(gateway.imapPort, user.name, user.password);
    try {
        for (const name of ['AT&-T', 'Caf&AOk-', '&ZeVnLIqe-', 'Smile &2D3eAQ-']) {
            assert.match((await connection.command(`CREATE "${name}"`)).tagged, /^\S+ OK/, name);
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
