/**
 * CATENATE (RFC 4469) over raw IMAP sessions: messages appended from text parts and URLs naming
 * a message or a section in the same user's mailboxes (imap-core patch 131, src/imap/on-catenate.ts).
 * A URL part is the very bytes FETCH returns for it; the result is stored as a plain APPEND's is
 * (APPENDUID, EXISTS, literal8 handling); bad URLs, a missing target and the size limit are
 * refused with the response codes RFC 4469 names, and nothing is stored then.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, makeMessage, DEFAULT_USERS, type Gateway } from './support/gateway';
import { RawImapConnection, appendRaw } from './support/raw-imap-connection';

const TEST_MS = 30_000;
const users = [...DEFAULT_USERS, { name: 'carol', password: 'carol-secret-pw' }];

let gateway: Gateway;

before(async () => {
    gateway = await startGateway({ users, plaintext: true, imapExtraYaml: '  maxMessageSize: 1MB' });
});
after(async () => {
    await gateway?.stop();
});

async function session(user: { name: string; password: string }, mailbox?: string): Promise<RawImapConnection> {
    return RawImapConnection.session(gateway.imapPort, user.name, user.password, mailbox);
}

/** A non-synchronising literal (LITERAL+), or with `eight` a literal8 (RFC 3516), as part of a command. */
function literal(data: string | Buffer, eight = false): Buffer {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
    return Buffer.concat([Buffer.from(`${eight ? '~' : ''}{${bytes.length}+}\r\n`), bytes]);
}

/** Sends one command made of strings and literals (all in one write) and waits for its tagged reply. */
async function send(connection: RawImapConnection, ...pieces: (string | Buffer)[]) {
    return connection.command(Buffer.concat(pieces.map(piece => (typeof piece === 'string' ? Buffer.from(piece, 'latin1') : piece))));
}

/** The literal of the one FETCH response to a command for one item. */
async function fetchBytes(connection: RawImapConnection, command: string): Promise<Buffer> {
    const result = await connection.command(command);
    assert.match(result.tagged, /OK/, command);
    const line = result.untagged.find(r => / FETCH /.test(r.text));
    assert.ok(line && line.literals.length === 1, `one literal for ${command}: ${result.untagged.map(r => r.text).join(' | ')}`);
    return line.literals[0];
}

async function messageCount(connection: RawImapConnection, mailbox: string): Promise<number> {
    const status = await connection.command(`STATUS ${mailbox} (MESSAGES)`);
    const match = /MESSAGES (\d+)/.exec(status.untagged.map(r => r.text).join('\n'));
    assert.ok(match, `STATUS answered: ${status.tagged}`);
    return Number(match[1]);
}

const MULTIPART = Buffer.from(
    [
        'From: Carol <carol@example.org>',
        'Subject: parts',
        'MIME-Version: 1.0',
        'Content-Type: multipart/mixed; boundary="b1"',
        '',
        'preamble',
        '--b1',
        'Content-Type: text/plain',
        '',
        'first part',
        '--b1',
        'Content-Type: text/plain; name="second.txt"',
        'Content-Disposition: attachment',
        '',
        'second part',
        '--b1--',
        'epilogue',
        ''
    ].join('\r\n'),
    'latin1'
);

test('CATENATE is advertised', { timeout: TEST_MS }, async () => {
    const connection = await session(users[0]);
    try {
        const capability = await connection.command('CAPABILITY');
        assert.match(capability.untagged.map(r => r.text).join(' '), /\bCATENATE\b/);
    } finally {
        connection.destroy();
    }
});

test('URL parts are the bytes FETCH gives for them, between text parts; flags, date and APPENDUID as APPEND', { timeout: TEST_MS }, async () => {
    const connection = await session(users[0]);
    try {
        assert.match((await connection.command('CREATE cat-source')).tagged, /OK/);
        assert.match((await connection.command('CREATE cat-target')).tagged, /OK/);
        assert.match(await appendRaw(connection, 'cat-source', MULTIPART), /OK \[APPENDUID \d+ 1\]/);
        const validity = /UIDVALIDITY (\d+)/.exec((await connection.command('STATUS cat-source (UIDVALIDITY)')).untagged.map(r => r.text).join(' '))![1];
        assert.match((await connection.command('EXAMINE cat-source')).tagged, /OK/);
        const sections = ['HEADER', 'TEXT', '1', '2', '2.MIME', 'HEADER.FIELDS (Subject From)'];
        const expected = new Map<string, Buffer>();
        for (const section of sections) expected.set(section, await fetchBytes(connection, `UID FETCH 1 BODY.PEEK[${section}]`));
        const whole = await fetchBytes(connection, 'UID FETCH 1 BODY.PEEK[]');
        assert.match((await connection.command('CLOSE')).tagged, /OK/);

        let uid = 0;
        for (const section of sections) {
            const url = `/cat-source;UIDVALIDITY=${validity}/;UID=1/;SECTION=${encodeURIComponent(section).replace(/%2E/gi, '.')}`;
            const result = await send(
                connection,
                `APPEND cat-target (\\Flagged $Label1) "02-Jan-2020 10:00:00 +0000" CATENATE (TEXT `,
                literal('X-Before: 1\r\n'),
                ` URL "${url}" TEXT `,
                literal('\r\nafter\r\n'),
                ')'
            );
            assert.match(result.tagged, new RegExp(`OK \\[APPENDUID \\d+ ${++uid}\\]`), `${section}: ${result.tagged}`);
        }
        // The whole message, and a range of it (past its end: nothing).
        assert.match((await send(connection, 'APPEND cat-target CATENATE (URL "/cat-source/;uid=1")')).tagged, /OK \[APPENDUID \d+ 7\]/);
        assert.match((await send(connection, 'APPEND cat-target CATENATE (URL "/cat-source/;uid=1/;partial=10.20" URL "/cat-source/;uid=1/;partial=100000.1")')).tagged, /OK \[APPENDUID \d+ 8\]/);
        assert.match((await send(connection, 'APPEND cat-target CATENATE (URL "/cat-source/;uid=1/;section=2/;partial=7")')).tagged, /OK \[APPENDUID \d+ 9\]/);

        assert.match((await connection.command('SELECT cat-target')).tagged, /OK/);
        for (let index = 0; index < sections.length; index++) {
            const stored = await fetchBytes(connection, `UID FETCH ${index + 1} BODY.PEEK[]`);
            assert.deepEqual(
                stored.toString('latin1'),
                Buffer.concat([Buffer.from('X-Before: 1\r\n'), expected.get(sections[index])!, Buffer.from('\r\nafter\r\n')]).toString('latin1'),
                sections[index]
            );
        }
        assert.deepEqual(await fetchBytes(connection, 'UID FETCH 7 BODY.PEEK[]'), whole);
        assert.deepEqual(await fetchBytes(connection, 'UID FETCH 8 BODY.PEEK[]'), whole.subarray(10, 30));
        assert.deepEqual(await fetchBytes(connection, 'UID FETCH 9 BODY.PEEK[]'), expected.get('2')!.subarray(7));
        const meta = await connection.command('UID FETCH 1 (FLAGS INTERNALDATE)');
        assert.match(meta.untagged[0].text, /FLAGS \([^)]*\\Flagged \$Label1/);
        assert.match(meta.untagged[0].text, /INTERNALDATE "02-Jan-2020 10:00:00 \+0000"/);
    } finally {
        connection.destroy();
    }
});

test('into the selected mailbox, with MULTIAPPEND: EXISTS before the tagged OK, a UID set', { timeout: TEST_MS }, async () => {
    const connection = await session(users[1]);
    const other = await session(users[1]);
    try {
        assert.match(await appendRaw(connection, 'INBOX', makeMessage({ subject: 'source', body: 'source body' })), /OK/);
        assert.match((await connection.command('SELECT INBOX')).tagged, /OK/);
        assert.match((await other.command('SELECT INBOX')).tagged, /OK/);
        const result = await send(
            connection,
            'APPEND INBOX CATENATE (URL "/INBOX/;uid=1/;section=HEADER" TEXT ',
            literal('one\r\n'),
            ') (\\Seen) ',
            literal(makeMessage({ subject: 'plain' })),
            ' CATENATE (URL "/inbox/;uid=1")'
        );
        assert.match(result.tagged, /OK \[APPENDUID \d+ 2:4\]/);
        assert.ok(
            result.untagged.some(r => r.text === '* 4 EXISTS'),
            `EXISTS before the tagged OK: ${result.untagged.map(r => r.text).join(' | ')}`
        );
        assert.ok((await other.command('NOOP')).untagged.some(r => r.text === '* 4 EXISTS'));
        assert.match((await fetchBytes(connection, 'UID FETCH 2 BODY.PEEK[]')).toString(), /Subject: source\r\n[^]*\r\n\r\none\r\n$/);
        assert.deepEqual(await fetchBytes(connection, 'UID FETCH 4 BODY.PEEK[]'), await fetchBytes(connection, 'UID FETCH 1 BODY.PEEK[]'));
    } finally {
        connection.destroy();
        other.destroy();
    }
});

test('bad URLs: NO [BADURL url] with the URL as sent; another user cannot be reached; nothing is stored', { timeout: TEST_MS }, async () => {
    const bob = await session(users[1]);
    const carol = await session(users[2]);
    try {
        // Bob has a message at UID 1 of cat-private; Carol has no such mailbox and no message there.
        assert.match((await bob.command('CREATE cat-private')).tagged, /OK/);
        assert.match(await appendRaw(bob, 'cat-private', makeMessage({ subject: 'bob only' })), /OK/);
        assert.match(await appendRaw(carol, 'INBOX', makeMessage({ subject: 'carol' })), /OK/);
        const validity = /UIDVALIDITY (\d+)/.exec((await carol.command('STATUS INBOX (UIDVALIDITY)')).untagged.map(r => r.text).join(' '))![1];
        const before = await messageCount(carol, 'INBOX');
        for (const url of [
            '/cat-private/;uid=1',
            `imap://bob@127.0.0.1/cat-private/;uid=1`,
            `imap://carol@127.0.0.1/INBOX/;uid=1`,
            '/INBOX/;uid=99',
            `/INBOX;UIDVALIDITY=${Number(validity) + 1}/;UID=1/;SECTION=HEADER`,
            '/INBOX/;uid=1/;section=9',
            '/INBOX/;uid=1/;section=NOPE',
            '/INBOX/;uid=1;urlauth=anonymous:internal:0123456789abcdef0123456789abcdef'
        ]) {
            const result = await send(carol, 'APPEND INBOX CATENATE (TEXT ', literal('X: 1\r\n\r\n'), ` URL "${url}")`);
            assert.equal(result.tagged, `${result.tag} NO [BADURL ${url}] Message part cannot be read`, url);
        }
        // "]" cannot end the response code early.
        const bracket = await send(carol, 'APPEND INBOX CATENATE (URL "/IN]BOX/;uid=1")');
        assert.match(bracket.tagged, /NO \[BADURL \/IN%5DBOX\/;uid=1\] /);
        // With MULTIAPPEND, one bad URL refuses every message.
        const multi = await send(carol, 'APPEND INBOX CATENATE (URL "/INBOX/;uid=1") CATENATE (URL "/INBOX/;uid=42")');
        assert.match(multi.tagged, /NO \[BADURL \/INBOX\/;uid=42\]/);
        assert.equal(await messageCount(carol, 'INBOX'), before);
        assert.equal(await messageCount(bob, 'cat-private'), 1);
    } finally {
        bob.destroy();
        carol.destroy();
    }
});

test('a missing target is TRYCREATE, whatever the URLs; malformed CATENATE is BAD', { timeout: TEST_MS }, async () => {
    const connection = await session(users[2]);
    try {
        assert.match(await appendRaw(connection, 'INBOX', makeMessage()), /OK/);
        assert.match((await send(connection, 'APPEND cat-missing CATENATE (URL "/INBOX;UIDVALIDITY=1/;UID=1" TEXT ', literal('x'), ')')).tagged, /NO \[TRYCREATE\]/);
        for (const command of [
            'APPEND INBOX CATENATE ()',
            'APPEND INBOX CATENATE (TEXT "quoted text")',
            'APPEND INBOX CATENATE (URL)',
            'APPEND INBOX CATENATE (URL "")',
            'APPEND INBOX CATENATE (FILE "/etc/passwd")',
            'APPEND INBOX CATENATE URL "/INBOX/;uid=1"'
        ]) {
            assert.match((await connection.command(command)).tagged, / BAD /, command);
        }
        // The session goes on.
        assert.match((await connection.command('NOOP')).tagged, /OK/);
    } finally {
        connection.destroy();
    }
});

test('the whole command is held to the APPEND size limit: NO [TOOBIG], nothing stored', { timeout: TEST_MS }, async () => {
    const connection = await session(users[0]);
    try {
        assert.match((await connection.command('CREATE cat-big')).tagged, /OK/);
        assert.match(await appendRaw(connection, 'cat-big', makeMessage({ subject: 'big', body: 'b'.repeat(400 * 1024) })), /OK/);
        // 1 MiB is the limit (maxMessageSize 1MB): two copies fit, three do not, in one message or across a MULTIAPPEND.
        assert.match((await send(connection, 'APPEND cat-big CATENATE (URL "/cat-big/;uid=1" URL "/cat-big/;uid=1")')).tagged, /OK \[APPENDUID \d+ 2\]/);
        assert.match((await send(connection, 'APPEND cat-big CATENATE (URL "/cat-big/;uid=1" URL "/cat-big/;uid=1/;section=TEXT" URL "/cat-big/;uid=1")')).tagged, /NO \[TOOBIG\]/);
        assert.match(
            (await send(connection, 'APPEND cat-big CATENATE (URL "/cat-big/;uid=1") CATENATE (URL "/cat-big/;uid=1") CATENATE (TEXT ', literal('x'.repeat(300 * 1024)), ')')).tagged,
            /NO \[TOOBIG\]/
        );
        assert.match((await send(connection, 'APPEND cat-big CATENATE (URL "/cat-big/;uid=2" URL "/cat-big/;uid=1/;section=1")')).tagged, /NO \[TOOBIG\]/);
        assert.equal(await messageCount(connection, 'cat-big'), 2);
    } finally {
        connection.destroy();
    }
});

test('a TEXT part in a literal8 is stored as an APPEND in a literal8 is (binary parts base64-encoded)', { timeout: TEST_MS }, async () => {
    const connection = await session(users[1]);
    try {
        assert.match((await connection.command('CREATE cat-binary')).tagged, /OK/);
        const head = 'From: a@example.org\r\nSubject: binary\r\nMIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n';
        const body = Buffer.from([0, 1, 2, 0xff, 13, 10, 0, 0x80]);
        assert.match((await send(connection, 'APPEND cat-binary ', literal(Buffer.concat([Buffer.from(head), body]), true))).tagged, /OK/);
        assert.match((await send(connection, 'APPEND cat-binary CATENATE (TEXT ', literal(head), ' TEXT ', literal(body, true), ')')).tagged, /OK/);
        assert.match((await connection.command('EXAMINE cat-binary')).tagged, /OK/);
        const plain = await fetchBytes(connection, 'UID FETCH 1 BODY.PEEK[]');
        assert.match(plain.toString('latin1'), /Content-Transfer-Encoding: base64/);
        assert.deepEqual(await fetchBytes(connection, 'UID FETCH 2 BODY.PEEK[]'), plain);
    } finally {
        connection.destroy();
    }
});
