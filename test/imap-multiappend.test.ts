/**
 * MULTIAPPEND (RFC 3502) over raw IMAP sessions: several messages in one APPEND, stored all or
 * none, answered with APPENDUID and a UID set (RFC 4315); the literals of one command are
 * bounded together as a single APPEND's literal is.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, makeMessage, DEFAULT_USERS, type Gateway } from './support/gateway';
import { RawImapConnection } from './support/raw-imap-connection';

const TEST_MS = 30_000;
const WAIT_MS = 10_000;
/** Small enough that two 250 KB messages on top of a 600 KB one overflow it. */
const QUOTA_BYTES = 1000 * 1024;
const users = [...DEFAULT_USERS, { name: 'carol', password: 'carol-secret-pw' }];

let gateway: Gateway;

before(async () => {
    gateway = await startGateway({ users, imapExtraYaml: `  quota: ${QUOTA_BYTES}\n  maxMessageSize: 1MB` });
});
after(async () => {
    await gateway?.stop();
});

async function session(user: { name: string; password: string }, mailbox?: string): Promise<RawImapConnection> {
    return RawImapConnection.session(gateway.imapPort, user.name, user.password, mailbox);
}

interface Part {
    raw: Buffer;
    /** What goes before the literal: flags and date, e.g. `(\Seen) "01-Jan-2020 10:00:00 +0000"`. */
    head?: string;
}

/**
 * Sends `APPEND mailbox <part> <part> ...` with synchronizing literals, waiting for each `+`.
 * Returns the tagged reply, and the untagged responses before it; stops at the first reply
 * that is not a continuation (the server refused a literal).
 */
async function multiAppend(connection: RawImapConnection, mailbox: string, parts: Part[]): Promise<{ tagged: string; untagged: string[] }> {
    const tag = connection.nextTag();
    const start = connection.responses.length;
    let prefix = `${tag} APPEND ${JSON.stringify(mailbox)}`;
    for (const part of parts) {
        const from = connection.responses.length;
        connection.write(`${prefix}${part.head ? ` ${part.head}` : ''} {${part.raw.length}}\r\n`);
        const next = await connection.waitFor(r => r.text.startsWith('+') || r.text.startsWith(`${tag} `), `continuation for ${tag}`, WAIT_MS, from);
        if (!next.text.startsWith('+')) {
            return { tagged: next.text, untagged: [] };
        }
        connection.write(part.raw);
        prefix = '';
    }
    connection.write('\r\n');
    const tagged = await connection.waitFor(r => r.text.startsWith(`${tag} `), `tagged reply to ${tag}`, WAIT_MS, start);
    const untagged = connection.responses
        .slice(start, connection.responses.indexOf(tagged))
        .map(r => r.text)
        .filter(text => text.startsWith('* '));
    return { tagged: tagged.text, untagged };
}

async function messageCount(connection: RawImapConnection, mailbox: string): Promise<number> {
    const status = await connection.command(`STATUS ${JSON.stringify(mailbox)} (MESSAGES)`);
    assert.match(status.tagged, /OK/);
    const match = /MESSAGES (\d+)/.exec(status.untagged.map(r => r.text).join('\n'));
    assert.ok(match, 'STATUS answered MESSAGES');
    return Number(match[1]);
}

test('MULTIAPPEND is advertised', { timeout: TEST_MS }, async () => {
    const connection = await session(users[1]);
    try {
        const capability = await connection.command('CAPABILITY');
        assert.match(capability.untagged.map(r => r.text).join(' '), /\bMULTIAPPEND\b/);
    } finally {
        connection.destroy();
    }
});

test('several messages in one APPEND: each keeps its flags and date, APPENDUID names every UID', { timeout: TEST_MS }, async () => {
    const connection = await session(users[1]);
    try {
        assert.match((await connection.command('CREATE multi1')).tagged, /OK/);
        const result = await multiAppend(connection, 'multi1', [
            { raw: makeMessage({ subject: 'first of three' }), head: '(\\Seen) "02-Jan-2020 10:00:00 +0000"' },
            { raw: makeMessage({ subject: 'second of three' }) },
            { raw: makeMessage({ subject: 'third of three' }), head: '(\\Flagged $Label1)' }
        ]);
        const appendUid = /OK \[APPENDUID (\d+) (\d+):(\d+)\]/.exec(result.tagged);
        assert.ok(appendUid, `APPENDUID with a UID range: ${result.tagged}`);
        assert.equal(Number(appendUid[3]) - Number(appendUid[2]), 2);

        const select = await connection.command('SELECT multi1');
        assert.match(select.untagged.map(r => r.text).join('\n'), /\* 3 EXISTS/);
        assert.match(select.untagged.map(r => r.text).join('\n'), new RegExp(`UIDVALIDITY ${appendUid[1]}\\]`));
        const fetch = await connection.command('UID FETCH 1:* (UID FLAGS INTERNALDATE BODY.PEEK[HEADER.FIELDS (SUBJECT)])');
        const lines = fetch.untagged.filter(r => / FETCH /.test(r.text));
        assert.equal(lines.length, 3);
        const subjects = lines.map(r =>
            r.literals
                .map(l => l.toString())
                .join('')
                .trim()
        );
        assert.deepEqual(subjects, ['Subject: first of three', 'Subject: second of three', 'Subject: third of three']);
        assert.deepEqual(
            lines.map(r => Number(/UID (\d+)/.exec(r.text)![1])),
            [Number(appendUid[2]), Number(appendUid[2]) + 1, Number(appendUid[3])]
        );
        // The stored flags; \Recent is this session's (it selected the mailbox and added them, RFC 3501 2.3.2).
        const flags = (line: string) =>
            /FLAGS \(([^)]*)\)/
                .exec(line)![1]
                .split(' ')
                .filter(flag => flag && flag !== '\\Recent');
        assert.deepEqual(flags(lines[0].text), ['\\Seen']);
        assert.match(lines[0].text, /INTERNALDATE "02-Jan-2020 10:00:00 \+0000"/);
        assert.deepEqual(flags(lines[1].text), []);
        assert.deepEqual(flags(lines[2].text), ['\\Flagged', '$Label1']);
    } finally {
        connection.destroy();
    }
});

test('MULTIAPPEND into the selected mailbox announces every new message before the tagged OK', { timeout: TEST_MS }, async () => {
    const connection = await session(users[1]);
    const other = await session(users[1]);
    try {
        assert.match((await connection.command('CREATE multi2')).tagged, /OK/);
        assert.match((await connection.command('SELECT multi2')).tagged, /OK/);
        assert.match((await other.command('SELECT multi2')).tagged, /OK/);
        const result = await multiAppend(connection, 'multi2', [{ raw: makeMessage({ subject: 'a' }) }, { raw: makeMessage({ subject: 'b' }) }]);
        assert.match(result.tagged, /OK \[APPENDUID \d+ 1:2\]/);
        assert.ok(result.untagged.includes('* 2 EXISTS'), `EXISTS before the tagged OK: ${result.untagged.join(' | ')}`);
        // Another session sees both at its next command.
        const noop = await other.command('NOOP');
        assert.ok(
            noop.untagged.some(r => r.text === '* 2 EXISTS'),
            `the other session is told: ${noop.untagged.map(r => r.text).join(' | ')}`
        );
    } finally {
        connection.destroy();
        other.destroy();
    }
});

test('MULTIAPPEND is all or nothing: over quota or into a missing mailbox, none is stored', { timeout: TEST_MS }, async () => {
    const connection = await session(users[0]);
    try {
        assert.match((await connection.command('CREATE multi3')).tagged, /OK/);
        const filler = makeMessage({ subject: 'filler', body: 'x'.repeat(600 * 1024) });
        const single = await multiAppend(connection, 'multi3', [{ raw: filler }]);
        assert.match(single.tagged, /OK \[APPENDUID \d+ 1\]/);
        // 600 + 250 fits the quota, 600 + 250 + 250 does not: the first of the two must not be kept.
        const part = (subject: string) => makeMessage({ subject, body: 'y'.repeat(250 * 1024) });
        const refused = await multiAppend(connection, 'multi3', [{ raw: part('one') }, { raw: part('two') }]);
        assert.match(refused.tagged, /NO \[OVERQUOTA\]/);
        assert.equal(await messageCount(connection, 'multi3'), 1);

        const missing = await multiAppend(connection, 'no-such-folder', [{ raw: makeMessage() }, { raw: makeMessage() }]);
        assert.match(missing.tagged, /NO \[TRYCREATE\]/);

        // A malformed second message (bad date) refuses the whole command.
        const bad = await multiAppend(connection, 'multi3', [{ raw: makeMessage() }, { raw: makeMessage(), head: '"not a date"' }]);
        assert.match(bad.tagged, /BAD/);
        assert.equal(await messageCount(connection, 'multi3'), 1);
    } finally {
        connection.destroy();
    }
});

test('the literals of one MULTIAPPEND are limited together, like one APPEND', { timeout: TEST_MS }, async () => {
    const connection = await session(users[2]);
    try {
        assert.match((await connection.command('CREATE multi4')).tagged, /OK/);
        // The limit is max(maxMessageSize, 1 MiB): three 400 KB literals pass one by one but not together.
        const big = (subject: string) => makeMessage({ subject, body: 'z'.repeat(400 * 1024) });
        const result = await multiAppend(connection, 'multi4', [{ raw: big('1') }, { raw: big('2') }, { raw: big('3') }]);
        assert.match(result.tagged, /NO \[TOOBIG\]/);
        // The session is still usable and nothing was stored.
        assert.equal(await messageCount(connection, 'multi4'), 0);
        const ok = await multiAppend(connection, 'multi4', [{ raw: big('1') }, { raw: big('2') }]);
        assert.match(ok.tagged, /OK \[APPENDUID \d+ 1:2\]/);
    } finally {
        connection.destroy();
    }
});

test('many tiny literals in one command are refused before they tie up memory', { timeout: TEST_MS }, async () => {
    const connection = await session(users[2]);
    try {
        assert.match((await connection.command('CREATE multi5')).tagged, /OK/);
        // Each literal counts as at least 1 KiB against the 1 MiB total, so the 1025th is refused.
        // Sent in one write: the server reads each literal from what is already buffered.
        const tag = connection.nextTag();
        const start = connection.responses.length;
        const parts = Array.from({ length: 1025 }, () => '{1}\r\nx').join(' ');
        connection.write(`${tag} APPEND multi5 ${parts}\r\n`);
        const tagged = await connection.waitFor(r => r.text.startsWith(`${tag} `), `tagged reply to ${tag}`, WAIT_MS, start);
        assert.match(tagged.text, /NO \[TOOBIG\]/);
        assert.equal(await messageCount(connection, 'multi5'), 0);
    } finally {
        connection.destroy();
    }
});
