/**
 * BINARY (RFC 3516) over raw IMAP sessions: FETCH BINARY[part]<partial>, BINARY.PEEK and
 * BINARY.SIZE answer the decoded content of a part (base64, quoted-printable, identity), in a
 * literal8 when it holds NUL; an encoding the server cannot decode fails with NO [UNKNOWN-CTE];
 * APPEND takes a literal8, whose binary parts are stored base64 (RFC 3516 4.4, 6). Parts larger
 * than what is kept in memory are decoded as a stream.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startGateway, DEFAULT_USERS, type Gateway } from './support/gateway';
import { base64Lines } from './support/fixtures/mail-corpus';
import { RawImapConnection, appendRaw } from './support/raw-imap-connection';

const TEST_MS = 30_000;
const WAIT_MS = 10_000;
const user = DEFAULT_USERS[0];

let gateway: Gateway;
let mailboxes = 0;

before(async () => {
    gateway = await startGateway();
});
after(async () => {
    await gateway?.stop();
});

/** A session with `raw` stored as message 1 of a new mailbox, selected. */
async function withMessage(raw: Buffer): Promise<RawImapConnection> {
    const connection = await RawImapConnection.session(gateway.imapPort, user.name, user.password);
    const mailbox = `binary-${process.pid}-${++mailboxes}`;
    assert.match((await connection.command(`CREATE ${mailbox}`)).tagged, /OK/);
    assert.match(await appendRaw(connection, mailbox, raw), /OK/);
    assert.match((await connection.command(`SELECT ${mailbox}`)).tagged, /OK/);
    return connection;
}

function multipart(parts: { headers: string; body: string | Buffer }[]): Buffer {
    const chunks: Buffer[] = [Buffer.from('From: a@example.org\r\nTo: b@example.org\r\nSubject: binary\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n')];
    for (const part of parts) {
        chunks.push(Buffer.from(`--b1\r\n${part.headers}\r\n\r\n`), Buffer.from(part.body), Buffer.from('\r\n'));
    }
    chunks.push(Buffer.from('--b1--\r\n'));
    return Buffer.concat(chunks);
}

/** The untagged FETCH responses of `command`, with the tagged reply. */
async function fetch(connection: RawImapConnection, command: string, timeoutMs = WAIT_MS) {
    const reply = await connection.command(command, timeoutMs);
    const fetches = reply.untagged.filter(response => / FETCH /.test(response.text));
    return { tagged: reply.tagged, fetches };
}

const NUL_DATA = Buffer.from([0x00, 0x01, 0x02, 0xff, 0x0d, 0x0a, 0x00, 0x41, 0x42, 0x43]);

test('BINARY is advertised after login', { timeout: TEST_MS }, async () => {
    const connection = await RawImapConnection.session(gateway.imapPort, user.name, user.password);
    try {
        const capability = await connection.command('CAPABILITY');
        assert.match(capability.untagged.map(r => r.text).join(' '), /\bBINARY\b/);
    } finally {
        connection.destroy();
    }
});

test('base64, quoted-printable and 7bit parts are decoded; NUL comes in a literal8; ranges name their origin', { timeout: TEST_MS }, async () => {
    const connection = await withMessage(
        multipart([
            { headers: 'Content-Type: text/plain', body: 'plain text' },
            { headers: 'Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64', body: base64Lines(NUL_DATA) },
            { headers: 'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable', body: 'caf=C3=A9 =\r\nau lait  \r\nend' }
        ])
    );
    try {
        const sizes = await fetch(connection, 'FETCH 1 (BINARY.SIZE[1] BINARY.SIZE[2] BINARY.SIZE[3])');
        assert.match(sizes.tagged, /OK/);
        assert.match(sizes.fetches[0].text, /BINARY\.SIZE\[1\] 10 BINARY\.SIZE\[2\] 10 BINARY\.SIZE\[3\] 18\)/);

        const parts = await fetch(connection, 'FETCH 1 (BINARY.PEEK[1] BINARY.PEEK[2] BINARY.PEEK[3])');
        assert.match(parts.tagged, /OK/);
        assert.match(parts.fetches[0].text, /BINARY\[1\] \{10\} BINARY\[2\] ~\{10\} BINARY\[3\] \{18\}\)/);
        assert.deepEqual(parts.fetches[0].literals, [Buffer.from('plain text'), NUL_DATA, Buffer.from('café au lait\r\nend')]);
        assert.doesNotMatch(parts.fetches[0].text, /FLAGS/, 'BINARY.PEEK does not set \\Seen');

        const range = await fetch(connection, 'FETCH 1 (BINARY.PEEK[2]<3.4>)');
        assert.match(range.fetches[0].text, /BINARY\[2\]<3> ~\{4\}\)/);
        assert.deepEqual(range.fetches[0].literals, [NUL_DATA.subarray(3, 7)]);

        const seen = await fetch(connection, 'FETCH 1 (BINARY[1])');
        assert.match(seen.tagged, /OK/);
        assert.match(seen.fetches[0].text, /\\Seen/, 'BINARY[...] sets \\Seen (RFC 3516 4.1)');
    } finally {
        connection.destroy();
    }
});

test('a content-transfer-encoding the server cannot decode: NO [UNKNOWN-CTE]; sections other than part numbers: BAD', { timeout: TEST_MS }, async () => {
    const connection = await withMessage(multipart([{ headers: 'Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: x-uuencode', body: 'begin 644 a\r\n`\r\nend' }]));
    try {
        const unknown = await connection.command('FETCH 1 (BINARY.PEEK[1])');
        assert.match(unknown.tagged, /^\S+ NO \[UNKNOWN-CTE\]/);
        const size = await connection.command('FETCH 1 (BINARY.SIZE[1])');
        assert.match(size.tagged, /^\S+ NO \[UNKNOWN-CTE\]/);
        for (const item of ['BINARY.PEEK[1.HEADER]', 'BINARY.PEEK[TEXT]', 'BINARY.SIZE[1]<0.5>', 'BINARY']) {
            const bad = await connection.command(`FETCH 1 (${item})`);
            assert.match(bad.tagged, /^\S+ BAD/, item);
        }
        // Still usable after the refusals.
        assert.match((await connection.command('NOOP')).tagged, /OK/);
    } finally {
        connection.destroy();
    }
});

test('a large base64 part is decoded as a stream: whole, sized and ranged', { timeout: TEST_MS }, async () => {
    const data = crypto.randomBytes(600 * 1024);
    data[1000] = 0;
    const connection = await withMessage(
        multipart([
            { headers: 'Content-Type: text/plain', body: 'see attachment' },
            { headers: 'Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64', body: base64Lines(data) }
        ])
    );
    try {
        const size = await fetch(connection, 'FETCH 1 (BINARY.SIZE[2])');
        assert.match(size.fetches[0].text, new RegExp(`BINARY\\.SIZE\\[2\\] ${data.length}\\)`));
        const whole = await fetch(connection, 'FETCH 1 (BINARY.PEEK[2])');
        assert.match(whole.fetches[0].text, new RegExp(`BINARY\\[2\\] ~\\{${data.length}\\}`));
        assert.ok(whole.fetches[0].literals[0].equals(data), 'decoded bytes are the attachment');
        const range = await fetch(connection, 'FETCH 1 (BINARY.PEEK[2]<300000.200000>)');
        assert.match(range.fetches[0].text, /BINARY\[2\]<300000> ~\{200000\}/);
        assert.ok(range.fetches[0].literals[0].equals(data.subarray(300000, 500000)));
    } finally {
        connection.destroy();
    }
});

/** One APPEND of one or more messages (MULTIAPPEND), each in a synchronizing literal or literal8; the tagged reply. */
async function appendLiterals(connection: RawImapConnection, mailbox: string, messages: { raw: Buffer; literal8: boolean }[]): Promise<string> {
    const tag = connection.nextTag();
    const start = connection.responses.length;
    let head = `${tag} APPEND ${mailbox}`;
    let from = start;
    for (const message of messages) {
        connection.write(`${head} ${message.literal8 ? '~' : ''}{${message.raw.length}}\r\n`);
        const next = await connection.waitFor(r => r.text.startsWith('+') || r.text.startsWith(`${tag} `), 'continuation', WAIT_MS, from);
        assert.match(next.text, /^\+/);
        from = connection.responses.indexOf(next) + 1;
        connection.write(message.raw);
        head = '';
    }
    connection.write('\r\n');
    return (await connection.waitFor(r => r.text.startsWith(`${tag} `), 'tagged APPEND reply', WAIT_MS, start)).text;
}

/** The body of the imaptest script append-binary: NUL, an 8-bit byte, a bare LF, a CRLF and another bare LF. */
const IMAPTEST_BODY = Buffer.from([0x00, 0x2d, 0xe4, 0x0a, 0x0d, 0x0a, 0x0a]);

test('APPEND in a literal8 (RFC 3516 4.4): a binary part is stored base64, BODY[1] is the base64, BINARY[1] the bytes appended', { timeout: TEST_MS }, async () => {
    const connection = await RawImapConnection.session(gateway.imapPort, user.name, user.password);
    try {
        const mailbox = `binary-${process.pid}-append`;
        assert.match((await connection.command(`CREATE ${mailbox}`)).tagged, /OK/);
        const header = 'From: a@example.org\r\nSubject: literal8\r\nMIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n';
        assert.match(await appendLiterals(connection, mailbox, [{ raw: Buffer.concat([Buffer.from(header), IMAPTEST_BODY]), literal8: true }]), /OK/);

        assert.match((await connection.command(`SELECT ${mailbox}`)).tagged, /OK/);
        const parts = await fetch(connection, 'FETCH 1 (BINARY.SIZE[1] BINARY.PEEK[1] BODY.PEEK[1] BODYSTRUCTURE)');
        assert.match(parts.fetches[0].text, /BINARY\.SIZE\[1\] 7 BINARY\[1\] ~\{7\} BODY\[1\] \{12\} BODYSTRUCTURE \("APPLICATION" "OCTET-STREAM" NIL NIL NIL "BASE64" 12 /);
        assert.deepEqual(parts.fetches[0].literals, [IMAPTEST_BODY, Buffer.from(IMAPTEST_BODY.toString('base64'))]);
        // Only the encoding changed: the other header fields are as appended.
        const whole = await fetch(connection, 'FETCH 1 (BODY.PEEK[])');
        assert.equal(whole.fetches[0].literals[0].toString('latin1'), header.replace('binary', 'base64') + IMAPTEST_BODY.toString('base64'));
    } finally {
        connection.destroy();
    }
});

test('MULTIAPPEND: the literal8 message has its binary parts encoded, inside message/rfc822 too; the plain literal is kept as sent', { timeout: TEST_MS }, async () => {
    const connection = await RawImapConnection.session(gateway.imapPort, user.name, user.password);
    try {
        const mailbox = `binary-${process.pid}-multiappend`;
        assert.match((await connection.command(`CREATE ${mailbox}`)).tagged, /OK/);
        const inner = Buffer.concat([Buffer.from('From: c@example.org\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n'), NUL_DATA]);
        const mixed = Buffer.concat([
            Buffer.from('From: a@example.org\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\npreamble\r\n--b1\r\nContent-Type: text/plain\r\n\r\nplain text\r\n'),
            Buffer.from('--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n'),
            IMAPTEST_BODY,
            Buffer.from('\r\n--b1\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: binary\r\n\r\n'),
            inner,
            Buffer.from('\r\n--b1--\r\nepilogue\r\n')
        ]);
        const plain = Buffer.from('From: a@example.org\r\nMIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n8-bit \xe4 data\r\n', 'latin1');
        assert.match(
            await appendLiterals(connection, mailbox, [
                { raw: mixed, literal8: true },
                { raw: plain, literal8: false }
            ]),
            /OK/
        );

        assert.match((await connection.command(`SELECT ${mailbox}`)).tagged, /OK/);
        const structure = await fetch(connection, 'FETCH 1:2 (BODYSTRUCTURE)');
        const [first, second] = structure.fetches.map(f => f.text);
        assert.match(first, /^\* 1 FETCH \(BODYSTRUCTURE \(\("TEXT" "PLAIN" NIL NIL NIL "7BIT" 10 0 NIL NIL NIL NIL\)\("APPLICATION" "OCTET-STREAM" NIL NIL NIL "BASE64" 12 /);
        // message/rfc822 is never base64 (RFC 2046 5.2.1): its label stays, the part inside is encoded.
        assert.match(first, /\("MESSAGE" "RFC822" NIL NIL NIL "BINARY" \d+ .*\("APPLICATION" "OCTET-STREAM" NIL NIL NIL "BASE64" 16 /);
        assert.match(second, /^\* 2 FETCH \(BODYSTRUCTURE \("APPLICATION" "OCTET-STREAM" NIL NIL NIL "BINARY" 14 /);

        const parts = await fetch(connection, 'FETCH 1 (BINARY.PEEK[1] BINARY.PEEK[2] BINARY.PEEK[3.1] BODY.PEEK[])');
        assert.deepEqual(parts.fetches[0].literals.slice(0, 3), [Buffer.from('plain text'), IMAPTEST_BODY, NUL_DATA]);
        const stored = parts.fetches[0].literals[3].toString('latin1');
        assert.ok(stored.startsWith('From: a@example.org\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\npreamble\r\n--b1\r\n'), stored);
        assert.ok(stored.endsWith(`Content-Transfer-Encoding: base64\r\n\r\n${NUL_DATA.toString('base64')}\r\n--b1--\r\nepilogue\r\n`), stored);

        const kept = await fetch(connection, 'FETCH 2 (BODY.PEEK[])');
        assert.deepEqual(kept.fetches[0].literals, [plain]);
    } finally {
        connection.destroy();
    }
});

test('a binary part in a plain literal is kept byte for byte: a bare LF or CR is not made a CRLF (patch 103)', { timeout: TEST_MS }, async () => {
    // Past DETACH_THRESHOLD (src/store/mime.ts) the body is served from the message file, below it from the stored tree.
    const large = Buffer.from(crypto.randomBytes(20 * 1024).map(byte => byte || 0x0a));
    const small = Buffer.from('8-bit \xe4\nline\r\nlone\rCR\n\n', 'latin1');
    const raw = multipart([
        { headers: 'Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary', body: small },
        { headers: 'Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary', body: large }
    ]);
    const connection = await withMessage(raw);
    try {
        const sizes = await fetch(connection, 'FETCH 1 (BINARY.SIZE[1] BINARY.SIZE[2] BODYSTRUCTURE)');
        assert.match(sizes.fetches[0].text, new RegExp(`BINARY\\.SIZE\\[1\\] ${small.length} BINARY\\.SIZE\\[2\\] ${large.length} `));
        assert.match(sizes.fetches[0].text, new RegExp(`"BINARY" ${small.length} NIL NIL NIL NIL\\)\\("APPLICATION" "OCTET-STREAM" NIL NIL NIL "BINARY" ${large.length} `));
        const parts = await fetch(connection, 'FETCH 1 (BODY.PEEK[1] BODY.PEEK[2] BINARY.PEEK[1] BINARY.PEEK[2] BODY.PEEK[])');
        // Compared with equals: a failing deepEqual of 20 KB buffers takes minutes to describe.
        const expected = [small, large, small, large, raw];
        assert.equal(parts.fetches[0].literals.length, expected.length, parts.fetches[0].text.slice(0, 200));
        expected.forEach((bytes, index) => assert.ok(parts.fetches[0].literals[index].equals(bytes), `literal ${index + 1}`));
    } finally {
        connection.destroy();
    }
});
