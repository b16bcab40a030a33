/**
 * LIST-EXTENDED (RFC 5258) and LIST-STATUS (RFC 5819) over raw IMAP sessions and imapflow:
 * selection and return options, several patterns, subscriptions that outlive their mailbox
 * (\NonExistent), RECURSIVEMATCH with CHILDINFO, and STATUS lines after LIST lines.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ImapFlow } from 'imapflow';
import { startGateway, makeMessage, DEFAULT_USERS, type Gateway } from './support/gateway';
import { RawImapConnection, appendRaw } from './support/raw-imap-connection';

const TEST_MS = 30_000;
const [alice] = DEFAULT_USERS;

let gateway: Gateway;

before(async () => {
    gateway = await startGateway();
});
after(async () => {
    await gateway?.stop();
});

async function session(): Promise<RawImapConnection> {
    return RawImapConnection.session(gateway.imapPort, alice.name, alice.password);
}

async function ok(connection: RawImapConnection, text: string): Promise<string[]> {
    const result = await connection.command(text);
    assert.match(result.tagged, /^\S+ OK/, `${text} -> ${result.tagged}`);
    return result.untagged.map(r => r.text);
}

/** LIST lines as { name, flags (lower-case), extra } in the order received. */
function parseList(lines: string[]): { name: string; flags: string[]; extra: string }[] {
    return lines
        .map(line => /^\* LIST \(([^)]*)\) "\/" "((?:[^"\\]|\\.)*)"(.*)$/.exec(line))
        .filter((m): m is RegExpExecArray => !!m)
        .map(m => ({
            name: m[2],
            flags: m[1]
                .split(' ')
                .filter(Boolean)
                .map(f => f.toLowerCase()),
            extra: m[3].trim()
        }));
}

test('LIST-EXTENDED and LIST-STATUS are advertised; LIST "" "" answers the root name ""', { timeout: TEST_MS }, async () => {
    const connection = await session();
    try {
        const capability = (await ok(connection, 'CAPABILITY')).join(' ');
        assert.match(capability, /\bLIST-EXTENDED\b/);
        assert.match(capability, /\bLIST-STATUS\b/);
        // RFC 3501 6.3.8: the delimiter and the root name, which is "" for reference "".
        assert.deepEqual(await ok(connection, 'LIST "" ""'), ['* LIST (\\Noselect) "/" ""']);
    } finally {
        connection.destroy();
    }
});

test('several patterns in one LIST; bad options are refused', { timeout: TEST_MS }, async () => {
    const connection = await session();
    try {
        await ok(connection, 'CREATE "multi/a2"');
        await ok(connection, 'CREATE "multi/b"');
        await ok(connection, 'CREATE "multi/c/a2"');
        const listed = parseList(await ok(connection, 'LIST "" ("INBOX" "Sent" "multi/*2")')).map(entry => entry.name);
        assert.deepEqual(listed.sort(), ['INBOX', 'Sent', 'multi/a2', 'multi/c/a2'].sort());
        for (const bad of ['LIST (BOGUS) "" "*"', 'LIST (RECURSIVEMATCH) "" "*"', 'LIST (RECURSIVEMATCH REMOTE) "" "*"', 'LIST "" "*" RETURN (BOGUS)', 'LIST "" "*" RETURN (STATUS (BOGUS))']) {
            assert.match((await connection.command(bad)).tagged, /^\S+ BAD/, bad);
        }
        // REMOTE alone is accepted (there are no remote mailboxes).
        assert.ok(parseList(await ok(connection, 'LIST (REMOTE) "" "multi/%"')).some(entry => entry.name === 'multi/b'));
    } finally {
        connection.destroy();
    }
});

test('subscriptions: CREATE does not subscribe, a deleted mailbox stays subscribed as \\NonExistent, RENAME moves them', { timeout: TEST_MS }, async () => {
    const connection = await session();
    try {
        for (const name of ['subs/kept', 'subs/gone', 'subs/plain', 'subs/moving/child']) {
            await ok(connection, `CREATE "${name}"`);
        }
        const subscribedOf = async (command: string) => new Map(parseList(await ok(connection, command)).map(entry => [entry.name, entry.flags]));

        // A freshly created folder is not subscribed (RFC 3501 6.3.6: subscribing is the client's choice).
        let listed = await subscribedOf('LIST "" "subs/*" RETURN (SUBSCRIBED)');
        assert.equal([...listed.values()].filter(flags => flags.includes('\\subscribed')).length, 0);

        for (const name of ['subs/kept', 'subs/gone', 'subs/moving/child']) {
            await ok(connection, `SUBSCRIBE "${name}"`);
        }
        await ok(connection, 'DELETE "subs/gone"');

        listed = await subscribedOf('LIST (SUBSCRIBED) "" "subs/*"');
        assert.deepEqual([...listed.keys()].sort(), ['subs/gone', 'subs/kept', 'subs/moving/child']);
        assert.ok(listed.get('subs/kept')!.includes('\\subscribed'));
        assert.ok(listed.get('subs/gone')!.includes('\\subscribed') && listed.get('subs/gone')!.includes('\\nonexistent'), String(listed.get('subs/gone')));
        assert.ok(!listed.get('subs/gone')!.includes('\\noselect'));

        // LSUB keeps the name too; UNSUBSCRIBE removes it although the mailbox is gone.
        const lsub = await ok(connection, 'LSUB "" "subs/*"');
        assert.ok(
            lsub.some(line => line.endsWith('"subs/gone"')),
            lsub.join(' | ')
        );
        await ok(connection, 'UNSUBSCRIBE "subs/gone"');
        assert.ok(!(await subscribedOf('LIST (SUBSCRIBED) "" "subs/*"')).has('subs/gone'));

        // RETURN (SUBSCRIBED) marks without filtering.
        listed = await subscribedOf('LIST "" "subs/*" RETURN (SUBSCRIBED CHILDREN)');
        assert.ok(listed.get('subs/kept')!.includes('\\subscribed'));
        assert.ok(listed.has('subs/plain') && !listed.get('subs/plain')!.includes('\\subscribed'));
        assert.ok(listed.get('subs/moving')!.includes('\\haschildren'));

        await ok(connection, 'RENAME "subs/moving" "subs/moved"');
        listed = await subscribedOf('LIST (SUBSCRIBED) "" "subs/*"');
        assert.ok(listed.has('subs/moved/child') && !listed.has('subs/moving/child'), [...listed.keys()].join(', '));
    } finally {
        connection.destroy();
    }
});

test('RECURSIVEMATCH: a parent is returned with CHILDINFO when a subscribed child is not matched itself', { timeout: TEST_MS }, async () => {
    const connection = await session();
    try {
        await ok(connection, 'CREATE "rec/p/child"');
        await ok(connection, 'CREATE "rec/q/q"');
        await ok(connection, 'SUBSCRIBE "rec/p/child"');
        await ok(connection, 'SUBSCRIBE "rec/q/q"');

        let listed = parseList(await ok(connection, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" "rec/%" RETURN (CHILDREN)'));
        assert.deepEqual(
            listed.map(entry => [entry.name, entry.extra]),
            [
                ['rec/p', '(CHILDINFO ("SUBSCRIBED"))'],
                ['rec/q', '(CHILDINFO ("SUBSCRIBED"))']
            ]
        );
        assert.ok(!listed[0].flags.includes('\\subscribed'));
        assert.ok(listed[0].flags.includes('\\haschildren'));

        // When the subscribed child matches the pattern itself, the parent is not added.
        listed = parseList(await ok(connection, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" "rec*q"'));
        assert.deepEqual(
            listed.map(entry => entry.name),
            ['rec/q/q']
        );
        // Without RECURSIVEMATCH only subscribed names match.
        listed = parseList(await ok(connection, 'LIST (SUBSCRIBED) "" "rec/%"'));
        assert.deepEqual(listed, []);
    } finally {
        connection.destroy();
    }
});

test('LIST-STATUS: a STATUS line follows the LIST line of each selectable mailbox', { timeout: TEST_MS }, async () => {
    const connection = await session();
    try {
        await ok(connection, 'CREATE "stat/one"');
        await ok(connection, 'CREATE "stat/Entw&APw-rfe"');
        assert.match(await appendRaw(connection, 'stat/one', makeMessage({ subject: 'unseen' })), /OK/);
        assert.match(await appendRaw(connection, 'stat/one', makeMessage({ subject: 'seen' }), '\\Seen'), /OK/);
        await ok(connection, 'SUBSCRIBE "stat/one"');
        await ok(connection, 'DELETE "stat/one"');
        await ok(connection, 'CREATE "stat/one"');
        assert.match(await appendRaw(connection, 'stat/one', makeMessage({ subject: 'again' })), /OK/);

        const lines = await ok(connection, 'LIST "" "stat/*" RETURN (STATUS (MESSAGES UNSEEN UIDNEXT))');
        assert.deepEqual(lines, [
            '* LIST (\\HasNoChildren) "/" "stat/Entw&APw-rfe"',
            '* STATUS "stat/Entw&APw-rfe" (MESSAGES 0 UNSEEN 0 UIDNEXT 1)',
            '* LIST (\\HasNoChildren) "/" "stat/one"',
            '* STATUS "stat/one" (MESSAGES 1 UNSEEN 1 UIDNEXT 2)'
        ]);
        // No STATUS for a \NonExistent name.
        await ok(connection, 'SUBSCRIBE "stat/Entw&APw-rfe"');
        await ok(connection, 'DELETE "stat/Entw&APw-rfe"');
        const subscribed = await ok(connection, 'LIST (SUBSCRIBED) "" "stat/*" RETURN (STATUS (MESSAGES))');
        assert.equal(subscribed.length, 3, subscribed.join(' | '));
        assert.ok(subscribed.includes('* LIST (\\NonExistent \\Subscribed) "/" "stat/Entw&APw-rfe"'), subscribed.join(' | '));
        const one = subscribed.indexOf('* LIST (\\HasNoChildren \\Subscribed) "/" "stat/one"');
        assert.ok(one >= 0 && subscribed[one + 1] === '* STATUS "stat/one" (MESSAGES 1)', subscribed.join(' | '));
    } finally {
        connection.destroy();
    }
});

test('LSUB with % returns an unsubscribed parent of a subscribed child as \\Noselect (RFC 3501 6.3.9)', { timeout: TEST_MS }, async () => {
    const connection = await session();
    try {
        await ok(connection, 'CREATE "lsubp/sub/leaf"');
        await ok(connection, 'CREATE "lsubp/own"');
        await ok(connection, 'SUBSCRIBE "lsubp/sub/leaf"');
        await ok(connection, 'SUBSCRIBE "lsubp/own"');
        const lines = (await ok(connection, 'LSUB "" "lsubp/%"')).sort();
        assert.deepEqual(lines, ['* LSUB (\\HasNoChildren) "/" "lsubp/own"', '* LSUB (\\Noselect) "/" "lsubp/sub"']);
        // With * the child itself matches, and no parent is added.
        assert.deepEqual((await ok(connection, 'LSUB "" "lsubp/s*"')).sort(), ['* LSUB (\\HasNoChildren) "/" "lsubp/sub/leaf"']);
    } finally {
        connection.destroy();
    }
});

test('imapflow lists with RETURN (SUBSCRIBED) and inline STATUS', { timeout: TEST_MS }, async () => {
    const client = new ImapFlow({ host: '127.0.0.1', port: gateway.imapPort, secure: false, tls: { rejectUnauthorized: false }, auth: { user: alice.name, pass: alice.password }, logger: false });
    await client.connect();
    try {
        await client.mailboxCreate('flow/box');
        await client.append('flow/box', makeMessage({ subject: 'flow' }));
        await client.mailboxSubscribe('flow/box');
        const list = await client.list({ statusQuery: { messages: true, unseen: true } });
        const box = list.find(entry => entry.path === 'flow/box');
        assert.ok(box, 'listed');
        assert.equal(box.subscribed, true);
        assert.equal(box.status?.messages, 1);
        assert.equal(box.status?.unseen, 1);
        assert.equal(list.find(entry => entry.path === 'Sent')?.specialUse, '\\Sent');
        assert.equal(list.find(entry => entry.path === 'flow')?.subscribed ?? false, false);
    } finally {
        await client.logout();
    }
});
