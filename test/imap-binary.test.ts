/**
 * BINARY (RFC 3516) over raw IMAP sessions: FETCH BINARY[part]<partial>, BINARY.PEEK and
 * BINARY.SIZE answer the decoded content of a part (base64, quoted-printable, identity), in a
 * literal8 when it holds NUL; an encoding the server cannot decode fails with NO [UNKNOWN-CTE];
 * APPEND takes a literal8. Parts larger than what is kept in memory are decoded as a stream.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startGateway, DEFAULT_USERS, type Gateway } from './support/gateway';
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
    const chunks: Buffer[] = [
        Buffer.from('From: a@example.org\r\nTo: b@example.org\r\nSubject: binary\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n')
    ];
    for (const part of parts) {
        chunks.push(Buffer.from(`--b1\r\n${part.headers}\r\n\r\n`), Buffer.from(part.body), Buffer.from('\r\n'));
    }
    chunks.push(Buffer.from('--b1--\r\n'));
    return Buffer.concat(chunks);
}

function base64Lines(data: Buffer): string {
    return (data.toString('base64').match(/.{1,76}/g) ?? []).join('\r\n');
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
    const connection = await withMessage(
        multipart([{ headers: 'Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: x-uuencode', body: 'begin 644 a\r\n`\r\nend' }])
    );
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

test('APPEND takes a literal8 (RFC 3516 4.4); the binary part comes back as it was', { timeout: TEST_MS }, async () => {
    const connection = await RawImapConnection.session(gateway.imapPort, user.name, user.password);
    try {
        const mailbox = `binary-${process.pid}-append`;
        assert.match((await connection.command(`CREATE ${mailbox}`)).tagged, /OK/);
        const raw = Buffer.concat([
            Buffer.from('From: a@example.org\r\nSubject: literal8\r\nMIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n'),
            NUL_DATA
        ]);
        const tag = connection.nextTag();
        const start = connection.responses.length;
        connection.write(`${tag} APPEND ${mailbox} ~{${raw.length}}\r\n`);
        const next = await connection.waitFor(r => r.text.startsWith('+') || r.text.startsWith(`${tag} `), 'continuation', WAIT_MS, start);
        assert.match(next.text, /^\+/);
        connection.write(Buffer.concat([raw, Buffer.from('\r\n')]));
        const tagged = await connection.waitFor(r => r.text.startsWith(`${tag} `), 'tagged APPEND reply', WAIT_MS, start);
        assert.match(tagged.text, /OK/);

        assert.match((await connection.command(`SELECT ${mailbox}`)).tagged, /OK/);
        const parts = await fetch(connection, 'FETCH 1 (BINARY.SIZE[1] BINARY.PEEK[1])');
        assert.match(parts.fetches[0].text, new RegExp(`BINARY\\.SIZE\\[1\\] ${NUL_DATA.length} BINARY\\[1\\] ~\\{${NUL_DATA.length}\\}`));
        assert.deepEqual(parts.fetches[0].literals, [NUL_DATA]);
    } finally {
        connection.destroy();
    }
});
