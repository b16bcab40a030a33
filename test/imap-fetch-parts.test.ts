/**
 * FETCH of message parts the way clients that download on demand use it (K-9, Thunderbird for
 * large messages): a forwarded message (message/rfc822 inside multipart/mixed) fetched part by part
 * with imapflow and with raw commands, and every section compared with the bytes of the message as
 * appended. Each test names the imap-core patch (patches/…+02x+…) whose behaviour it pins down.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ImapFlow } from 'imapflow';
import { startGateway, type Gateway } from './support/gateway';
import { RawImapConnection, appendRaw } from './support/raw-imap-connection';

const USER = 'alice';
const PASS = 'alice-secret-pw';
const TEST_MS = 30_000;

let gateway: Gateway;

/** Lines joined with CRLF, as a message on the wire. */
function crlf(lines: string[]): string {
    return lines.join('\r\n');
}

// A forwarded message with a preamble and an epilogue at both levels, and an attachment inside the
// forwarded message large enough to be served from the message file (DETACH_THRESHOLD).
const ATTACHMENT = Buffer.alloc(30_000, 'forwarded attachment bytes ').toString('base64').replace(/.{76}/g, '$&\r\n').replace(/\r\n$/, '');
const INNER_BODY = crlf([
    'Inner preamble',
    '--alt',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'Hello from the original',
    '',
    '--alt',
    'Content-Type: application/octet-stream; name="data.bin"',
    'Content-Transfer-Encoding: base64',
    '',
    ATTACHMENT,
    '--alt--',
    'Inner epilogue',
    ''
]);
const INNER_HEADER = crlf(['From: Bob <bob@example.org>', 'Subject: original', 'Date: Mon, 2 Feb 2026 10:00:00 +0000', 'Content-Type: multipart/mixed; boundary="alt"', '', '']);
const INNER = INNER_HEADER + INNER_BODY;
const FORWARD_TEXT = crlf(['Outer preamble', '', '--outer', 'Content-Type: text/plain', '', 'See below.', '', '--outer', 'Content-Type: message/rfc822', '', INNER, '--outer--', 'Outer epilogue', '']);
const FORWARD = Buffer.from(
    crlf([
        'From: Alice <alice@example.org>',
        'To: Carol <carol@example.org>',
        'Subject: Fwd: original',
        'Date: Mon, 2 Feb 2026 11:00:00 +0000',
        'MIME-Version: 1.0',
        'Content-Type: multipart/mixed; boundary="outer"',
        '',
        ''
    ]) + FORWARD_TEXT,
    'latin1'
);

// A message whose whole body is a forwarded message that is not multipart: its part 1.1 is the body
// of the message inside.
const SINGLE = Buffer.from(
    crlf(['From: Alice <alice@example.org>', 'Subject: bounce', 'Content-Type: message/rfc822', '', 'From: Dave <dave@example.org>', 'Subject: inner', 'X-Other: yes', '', 'Inner text', '']),
    'latin1'
);

// No Subject field, a group with a comment for a member, and a source route.
const ODD_ADDRESSES = Buffer.from(crlf(['From: <@route.example:eve@example.org>', 'To: friends: (nobody) ;', 'Date: Mon, 2 Feb 2026 12:00:00 +0000', '', 'body', '']), 'latin1');

// A digest whose parts have no Content-Type (so message/rfc822, RFC 2046 5.1.5), one without any
// header line, and boundary lines with transport padding (trailing spaces and a tab).
const DIGEST_TEXT = crlf([
    'preamble',
    '',
    '--dig  ',
    '',
    'From: m1@example.org',
    'Subject: m1',
    '',
    'm1 body',
    '',
    '--dig\t',
    'X-Part: two',
    '',
    'From: m2@example.org',
    'Subject: m2',
    '',
    'm2 body',
    '',
    '--dig-- ',
    'epilogue',
    ''
]);
const DIGEST = Buffer.from(crlf(['From: list@example.org', 'Subject: digest', 'MIME-Version: 1.0', 'Content-Type: multipart/digest; boundary="dig"', '', '']) + DIGEST_TEXT, 'latin1');

// 8-bit UTF-8 text (fewer characters than bytes) beside an attachment served from the message file.
const EIGHT_BIT_ATTACHMENT = Buffer.alloc(20_000, 'attachment bytes ').toString('base64').replace(/.{76}/g, '$&\r\n').replace(/\r\n$/, '');
const EIGHT_BIT = Buffer.from(
    crlf([
        'From: Alice <alice@example.org>',
        'Subject: 8-bit',
        'MIME-Version: 1.0',
        'Content-Type: multipart/mixed; boundary="b"',
        '',
        '--b',
        'Content-Type: text/plain; charset=utf-8',
        'Content-Transfer-Encoding: 8bit',
        '',
        Buffer.from('café crème brûlée äöü').toString('latin1'),
        '--b',
        'Content-Type: application/octet-stream',
        'Content-Transfer-Encoding: base64',
        '',
        EIGHT_BIT_ATTACHMENT,
        '--b--',
        ''
    ]),
    'latin1'
);

let uids: { forward: number; single: number; odd: number; digest: number; eightBit: number };

before(
    async () => {
        gateway = await startGateway({ plaintext: true });
        const session = await RawImapConnection.session(gateway.imapPort, USER, PASS);
        try {
            assert.match(await session.command('CREATE Parts').then(r => r.tagged), /OK/);
            const appended = [];
            for (const raw of [FORWARD, SINGLE, ODD_ADDRESSES, DIGEST, EIGHT_BIT]) {
                const tagged = await appendRaw(session, 'Parts', raw);
                const match = /APPENDUID \d+ (\d+)/.exec(tagged);
                assert.ok(match, tagged);
                appended.push(Number(match[1]));
            }
            uids = { forward: appended[0], single: appended[1], odd: appended[2], digest: appended[3], eightBit: appended[4] };
        } finally {
            session.destroy();
        }
    },
    { timeout: TEST_MS }
);

after(
    async () => {
        await gateway?.stop();
    },
    { timeout: TEST_MS }
);

/** One section of one message by UID FETCH over a raw session: the literal's bytes. */
async function section(session: RawImapConnection, uid: number, item: string): Promise<string> {
    const reply = await session.command(`UID FETCH ${uid} (${item})`);
    assert.match(reply.tagged, /OK/, `${item}: ${reply.tagged}`);
    const fetch = reply.untagged.find(response => / FETCH /.test(response.text));
    assert.ok(fetch, `no FETCH response for ${item}`);
    assert.equal(fetch.literals.length, 1, `${item} is not one literal: ${fetch.text}`);
    return fetch.literals[0].toString('latin1');
}

/** The untagged FETCH line of a fetch whose items are all non-literal. */
async function fetchLine(session: RawImapConnection, uid: number, items: string): Promise<string> {
    const reply = await session.command(`UID FETCH ${uid} (${items})`);
    assert.match(reply.tagged, /OK/);
    const fetch = reply.untagged.find(response => / FETCH /.test(response.text));
    assert.ok(fetch);
    return fetch.text;
}

async function withSession<T>(run: (session: RawImapConnection) => Promise<T>, mailbox = 'Parts'): Promise<T> {
    const session = await RawImapConnection.session(gateway.imapPort, USER, PASS, mailbox);
    try {
        return await run(session);
    } finally {
        session.destroy();
    }
}

test('020 multipart-epilogue: TEXT of a multipart keeps preamble and epilogue where they are', { timeout: TEST_MS }, async () => {
    await withSession(async session => {
        assert.equal(await section(session, uids.forward, 'BODY.PEEK[]'), FORWARD.toString('latin1'));
        assert.equal(await section(session, uids.forward, 'BODY.PEEK[TEXT]'), FORWARD_TEXT);
        // The forwarded message whole, and its own text: the inner epilogue ends it.
        assert.equal(await section(session, uids.forward, 'BODY.PEEK[2]'), INNER);
        assert.equal(await section(session, uids.forward, 'BODY.PEEK[2.TEXT]'), INNER_BODY);
        // A range inside the epilogue.
        const offset = FORWARD_TEXT.indexOf('Outer epilogue');
        assert.equal(await section(session, uids.forward, `BODY.PEEK[TEXT]<${offset}.5>`), 'Outer');
    });
});

test('027 embedded-text-attachment-map: TEXT of a forwarded message includes its attachment served from the file', { timeout: TEST_MS }, async () => {
    await withSession(async session => {
        const text = await section(session, uids.forward, 'BODY.PEEK[2.TEXT]');
        assert.ok(text.includes(ATTACHMENT), 'the attachment is missing from BODY[2.TEXT]');
        assert.equal(text, INNER_BODY);
    });
});

test('021 message-rfc822-part-numbers: parts inside a forwarded message, raw commands', { timeout: TEST_MS }, async () => {
    await withSession(async session => {
        assert.equal(await section(session, uids.forward, 'BODY.PEEK[1]'), 'See below.\r\n');
        assert.equal(await section(session, uids.forward, 'BODY.PEEK[2.1]'), 'Hello from the original\r\n');
        assert.equal(await section(session, uids.forward, 'BODY.PEEK[2.2]'), ATTACHMENT);
        assert.equal(await section(session, uids.forward, 'BODY.PEEK[2.2]<100.50>'), ATTACHMENT.slice(100, 150));
        assert.equal(await section(session, uids.forward, 'BODY.PEEK[2.2.MIME]'), 'Content-Type: application/octet-stream; name="data.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n');
        assert.equal(await section(session, uids.forward, 'BODY.PEEK[2.HEADER]'), INNER_HEADER);
        assert.equal(await section(session, uids.forward, 'BODY.PEEK[2.HEADER.FIELDS (SUBJECT FROM)]'), 'From: Bob <bob@example.org>\r\nSubject: original\r\n\r\n');
        assert.equal(
            await section(session, uids.forward, 'BODY.PEEK[2.HEADER.FIELDS.NOT (SUBJECT FROM)]'),
            'Date: Mon, 2 Feb 2026 10:00:00 +0000\r\nContent-Type: multipart/mixed; boundary="alt"\r\n\r\n'
        );
        // A forwarded message that is not multipart: 1 is the message inside, 1.1 its body.
        assert.equal(await section(session, uids.single, 'BODY.PEEK[1.1]'), 'Inner text\r\n');
        assert.equal(await section(session, uids.single, 'BODY.PEEK[1.HEADER.FIELDS (SUBJECT)]'), 'Subject: inner\r\n\r\n');
        assert.equal(await section(session, uids.single, 'BODY.PEEK[1.HEADER.FIELDS.NOT (FROM SUBJECT)]'), 'X-Other: yes\r\n\r\n');
    });
});

test('021 message-rfc822-part-numbers: imapflow downloads each part of a forwarded message', { timeout: TEST_MS }, async () => {
    const client = new ImapFlow({ host: '127.0.0.1', port: gateway.imapPort, secure: false, auth: { user: USER, pass: PASS }, logger: false, doSTARTTLS: false });
    await client.connect();
    try {
        const lock = await client.getMailboxLock('Parts');
        try {
            const message = await client.fetchOne(String(uids.forward), { bodyStructure: true, bodyParts: ['1', '2.1', '2.HEADER'] }, { uid: true });
            assert.ok(message);
            assert.equal(message.bodyParts?.get('1')?.toString(), 'See below.\r\n');
            assert.equal(message.bodyParts?.get('2.1')?.toString(), 'Hello from the original\r\n');
            assert.equal(message.bodyParts?.get('2.header')?.toString() ?? message.bodyParts?.get('2.HEADER')?.toString(), INNER_HEADER);
            // The structure names the attachment inside the forwarded message as part 2.2.
            const forwarded = message.bodyStructure?.childNodes?.[1];
            assert.equal(forwarded?.type, 'message/rfc822');
            assert.equal(forwarded?.childNodes?.[0]?.childNodes?.[1]?.part, '2.2');
            // download() decodes the transfer encoding of the attachment.
            const { content } = await client.download(String(uids.forward), '2.2', { uid: true });
            const chunks: Buffer[] = [];
            for await (const chunk of content!) chunks.push(chunk as Buffer);
            assert.deepEqual(Buffer.concat(chunks), Buffer.from(ATTACHMENT.replace(/\r\n/g, ''), 'base64'));
        } finally {
            lock.release();
        }
    } finally {
        await client.logout();
    }
});

test('022 body-without-extension-data: BODY of a multipart carries no parameter list', { timeout: TEST_MS }, async () => {
    await withSession(async session => {
        const line = await fetchLine(session, uids.forward, 'BODY');
        assert.doesNotMatch(line, /BOUNDARY/i, line);
        assert.match(line, /"MIXED"\) UID \d+\)$/, line);
        // BODYSTRUCTURE still has it.
        assert.match(await fetchLine(session, uids.forward, 'BODYSTRUCTURE'), /\("BOUNDARY" "outer"\)/);
    });
});

test('023 envelope-subject-nil, 024 envelope-group-comments-and-routes', { timeout: TEST_MS }, async () => {
    await withSession(async session => {
        const line = await fetchLine(session, uids.odd, 'ENVELOPE');
        assert.match(line, /ENVELOPE \("Mon, 2 Feb 2026 12:00:00 \+0000" NIL /, line);
        assert.match(line, /\(\(NIL "@route\.example" "eve" "example\.org"\)\)/, line);
        assert.match(line, /\(\(NIL NIL "friends" NIL\)\(NIL NIL NIL NIL\)\)/, line);
    });
});

test('025 rfc822-text-sets-seen: RFC822.TEXT answers with the new FLAGS', { timeout: TEST_MS }, async () => {
    await withSession(async session => {
        const before = await fetchLine(session, uids.single, 'FLAGS');
        assert.doesNotMatch(before, /\\Seen/);
        const reply = await session.command(`UID FETCH ${uids.single} RFC822.TEXT`);
        const fetch = reply.untagged.find(response => / FETCH /.test(response.text));
        assert.ok(fetch);
        assert.match(fetch.text, /FLAGS \(\\Seen\)/, fetch.text);
        // And it is not announced a second time to the session that read it.
        const noop = await session.command('NOOP');
        assert.equal(noop.untagged.filter(response => / FETCH /.test(response.text)).length, 0);
    });
});

test('026 empty-header-section: no field matched is the empty line alone', { timeout: TEST_MS }, async () => {
    await withSession(async session => {
        assert.equal(await section(session, uids.forward, 'BODY.PEEK[HEADER.FIELDS (X-NOT-THERE)]'), '\r\n');
        assert.equal(await section(session, uids.forward, 'BODY.PEEK[2.HEADER.FIELDS (X-NOT-THERE)]'), '\r\n');
        assert.equal(await section(session, uids.forward, 'BODY.PEEK[1.MIME]'), 'Content-Type: text/plain\r\n\r\n');
    });
});

test('028 digest-default-message-rfc822: a digest part without Content-Type is a message', { timeout: TEST_MS }, async () => {
    await withSession(async session => {
        assert.equal(await section(session, uids.digest, 'BODY.PEEK[1.HEADER]'), 'From: m1@example.org\r\nSubject: m1\r\n\r\n');
        assert.equal(await section(session, uids.digest, 'BODY.PEEK[2.TEXT]'), 'm2 body\r\n');
        assert.equal(await section(session, uids.digest, 'BODY.PEEK[2.HEADER.FIELDS (SUBJECT)]'), 'Subject: m2\r\n\r\n');
        assert.match(await fetchLine(session, uids.digest, 'BODYSTRUCTURE'), /\("MESSAGE" "RFC822" NIL NIL NIL "7BIT" \d+ \(NIL "m1"/);
    });
});

test('029 boundary-padding-and-headerless-parts: padded boundaries and a part without header lines', { timeout: TEST_MS }, async () => {
    await withSession(async session => {
        assert.equal(await section(session, uids.digest, 'BODY.PEEK[TEXT]'), DIGEST_TEXT);
        assert.equal(await section(session, uids.digest, 'BODY.PEEK[1]'), 'From: m1@example.org\r\nSubject: m1\r\n\r\nm1 body\r\n');
        assert.equal(await section(session, uids.digest, 'BODY.PEEK[1.MIME]'), '\r\n');
        assert.equal(await section(session, uids.digest, 'BODY.PEEK[2.MIME]'), 'X-Part: two\r\n\r\n');
    });
});

test('102 compile-stream-buffer-literal-length: beside a streamed part, an 8-bit literal is announced in bytes', { timeout: TEST_MS }, async () => {
    await withSession(async session => {
        // BODY[2] is streamed from the message file; BODY[] (the whole message, read at once) and
        // BINARY[1] are byte buffers written in the same response.
        const reply = await session.command(`UID FETCH ${uids.eightBit} (BODY.PEEK[2] BODY.PEEK[] BINARY.PEEK[1])`);
        assert.match(reply.tagged, /OK/);
        const fetch = reply.untagged.find(response => / FETCH /.test(response.text));
        assert.ok(fetch);
        const text = Buffer.from('café crème brûlée äöü');
        assert.match(fetch.text, new RegExp(`BODY\\[2\\] \\{${EIGHT_BIT_ATTACHMENT.length}\\} BODY\\[\\] \\{${EIGHT_BIT.length}\\} BINARY\\[1\\] \\{${text.length}\\} UID`), fetch.text.slice(0, 200));
        assert.ok(fetch.literals[0].equals(Buffer.from(EIGHT_BIT_ATTACHMENT, 'latin1')), 'BODY[2]');
        assert.ok(fetch.literals[1].equals(EIGHT_BIT), 'BODY[]');
        assert.ok(fetch.literals[2].equals(text), 'BINARY[1]');
        // The session is still in step: the next command is answered.
        assert.match((await session.command('NOOP')).tagged, /OK/);
    });
});
