/**
 * Bad input over IMAP: malformed mail, malformed commands, and clients that hang up at the
 * worst moment. Everything here must get a tagged BAD or NO (or, where the protocol says so,
 * an OK with empty data), never a crash, a hang, or a half-stored message; meanwhile a
 * well-behaved imapflow session keeps working and new connections are accepted.
 *
 * Commands are sent over raw sockets (test/support/raw-imap-connection.ts): client libraries refuse to send most
 * of this.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ImapFlow } from 'imapflow';
import { startGateway, makeMessage, type Gateway } from './support/gateway';
import { RawImapConnection, appendRaw, type Response } from './support/raw-imap-connection';
import { oddMessages } from './support/fixtures/malformed-mime';
import { blobCount, blobUsage, foreignKeyViolations, messageBytes, messageFiles } from './support/store';

const USER = 'alice';
const PASS = 'alice-secret-pw';

let gateway: Gateway;
/** The well-behaved session: Archive selected, fetched before, during and after the abuse. */
let watcher: ImapFlow;
const ARCHIVE = [1, 2, 3].map(n => makeMessage({ subject: `archived ${n}`, messageId: `<archived-${n}@example.org>`, body: `Archived message ${n}.` }));
/** Messages in INBOX for the garbage commands to work on. */
const INBOX = [1, 2, 3].map(n => makeMessage({ subject: `inbox ${n}`, messageId: `<inbox-${n}@example.org>` }));

function client(): ImapFlow {
    return new ImapFlow({
        host: '127.0.0.1',
        port: gateway.imapPort,
        secure: false,
        auth: { user: USER, pass: PASS },
        logger: false,
        tls: { ca: fs.readFileSync(path.join(gateway.dir, 'data', 'tls', 'cert.pem')) }
    });
}

/** The watcher's FETCH: every Archive message whole and unchanged. */
async function watcherFetch(): Promise<void> {
    const messages = await watcher.fetchAll('1:*', { source: true, uid: true });
    assert.equal(messages.length, ARCHIVE.length, 'watcher sees every Archive message');
    messages.forEach((message, index) => assert.ok(message.source?.equals(ARCHIVE[index]), `watcher: Archive message ${index + 1} intact`));
}

/** STATUS through imapflow (which types a failure as `false`). */
async function statusOf(imap: ImapFlow, mailbox: string): Promise<{ messages: number; uidNext: number }> {
    const status = await imap.status(mailbox, { messages: true, uidNext: true });
    assert.ok(status, `STATUS ${mailbox}`);
    return { messages: status.messages!, uidNext: status.uidNext! };
}

/** A brand-new connection logs in and reads a mailbox. */
async function newConnectionWorks(): Promise<void> {
    const imap = client();
    await imap.connect();
    assert.equal((await statusOf(imap, 'Archive')).messages, ARCHIVE.length);
    await imap.logout();
}

/** The literal that follows `label` (e.g. "BODY[]") in a FETCH response, or null. */
function literalAfter(response: Response, label: string): Buffer | null {
    const at = response.text.indexOf(`${label} {`);
    if (at < 0) return null;
    const before = response.text.slice(0, at).match(/\{\d+\}/g) ?? [];
    return response.literals[before.length] ?? null;
}

before(async () => {
    gateway = await startGateway();
    const setup = client();
    await setup.connect();
    for (const raw of ARCHIVE) await setup.append('Archive', raw);
    for (const raw of INBOX) await setup.append('INBOX', raw);
    await setup.mailboxCreate('Odd');
    await setup.mailboxCreate('Zero');
    await setup.append('Zero', makeMessage({ subject: 'zero' }));
    await setup.logout();
    watcher = client();
    await watcher.connect();
    await watcher.mailboxOpen('Archive');
});

after(async () => {
    await watcher?.logout().catch(() => undefined);
    await gateway?.stop();
});

/** UID of each odd message, for the BODYSTRUCTURE check further down. */
const oddUids = new Map<string, number>();

test('malformed MIME is stored, then FETCH (BODYSTRUCTURE ENVELOPE BODY[] BODY[1]) and SEARCH answer', async () => {
    const odd = oddMessages();
    const session = await RawImapConnection.session(gateway.imapPort, USER, PASS);
    try {
        for (const message of odd) {
            const reply = await appendRaw(session, 'Odd', message.raw);
            const appended = /^\S+ OK \[APPENDUID \d+ (\d+)\]/.exec(reply);
            assert.ok(appended, `${message.name}: APPEND accepted (${reply})`);
            oddUids.set(message.name, Number(appended[1]));
        }
        assert.match((await session.command('SELECT Odd')).tagged, /^\S+ OK/);

        for (const message of odd) {
            const uid = oddUids.get(message.name)!;
            const fetch = await session.command(`UID FETCH ${uid} (BODYSTRUCTURE ENVELOPE BODY[] BODY[1] RFC822.SIZE)`);
            assert.match(fetch.tagged, /^\S+ OK/, `${message.name}: FETCH completes`);
            const response = fetch.untagged.find(r => /^\* \d+ FETCH /.test(r.text));
            assert.ok(response, `${message.name}: a FETCH response`);
            assert.match(response.text, /BODYSTRUCTURE \(/, `${message.name}: BODYSTRUCTURE present`);
            assert.match(response.text, /ENVELOPE \(/, `${message.name}: ENVELOPE present`);
            assert.match(response.text, /BODY\[1\] (\{\d+\}|NIL|"")/, `${message.name}: BODY[1] present`);
            // The whole message comes back exactly as appended, malformed or not, and its size says so.
            const body = literalAfter(response, 'BODY[]');
            assert.ok(body?.equals(message.raw), `${message.name}: BODY[] is the appended bytes`);
            assert.match(response.text, new RegExp(`RFC822\\.SIZE ${message.raw.length}\\b`), `${message.name}: RFC822.SIZE is the appended size`);

            const messageId = /Message-ID: <([^>]+)>/.exec(message.raw.toString('latin1'))![1];
            const byId = await session.command(`UID SEARCH HEADER Message-ID "${messageId}"`);
            assert.match(byId.tagged, /^\S+ OK/);
            assert.ok(
                byId.untagged.some(r => r.text.split(' ').slice(2).includes(String(uid))),
                `${message.name}: found by its Message-ID`
            );
        }
        for (const needle of ['part', 'nul', 'a'.repeat(200), 'qapla', 'Gr']) {
            const search = await session.command(`UID SEARCH TEXT "${needle}"`);
            assert.match(search.tagged, /^\S+ OK/, `SEARCH TEXT "${needle.slice(0, 20)}" completes`);
        }
        const utf8 = Buffer.from('Grüße', 'utf8');
        session.write(`C1 UID SEARCH CHARSET UTF-8 TEXT {${utf8.length}}\r\n`);
        await session.waitFor(r => r.text.startsWith('+'), 'literal continuation');
        const from = session.responses.length;
        session.write(Buffer.concat([utf8, Buffer.from('\r\n')]));
        const tagged = await session.waitFor(r => r.text.startsWith('C1 '), 'SEARCH CHARSET UTF-8', undefined, from);
        assert.match(tagged.text, /^C1 OK/);
        await session.command('LOGOUT');
    } finally {
        session.destroy();
    }
    await watcherFetch();
});

test('BODYSTRUCTURE of a multipart with no parts is valid IMAP syntax', {}, async () => {
    const session = await RawImapConnection.session(gateway.imapPort, USER, PASS, 'Odd');
    try {
        for (const name of ['boundary-absent', 'multipart-without-boundary-param']) {
            const fetch = await session.command(`UID FETCH ${oddUids.get(name)} (BODYSTRUCTURE)`);
            const text = fetch.untagged.map(r => r.text).join('\n');
            assert.doesNotMatch(text, /BODYSTRUCTURE \(\(\)/, `${name}: no empty body list`);
            assert.doesNotMatch(text, /\) NIL NIL NIL NIL NIL\)\)$/, `${name}: multipart subtype present`);
        }
    } finally {
        session.destroy();
    }
});

test('garbage, truncated and oversized commands get BAD or NO while another session keeps working', async () => {
    await watcherFetch();
    const session = await RawImapConnection.session(gateway.imapPort, USER, PASS, 'INBOX');
    let abuseDone = false;
    // The watcher FETCHes again and again while the abuse goes on.
    const watching = (async () => {
        let rounds = 0;
        while (!abuseDone || rounds === 0) {
            await watcherFetch();
            rounds++;
        }
        return rounds;
    })();
    // Awaited below; this only keeps an early failure of the abuse from leaving it unhandled.
    watching.catch(() => undefined);
    try {
        const cases: { name: string; command: string | Buffer; expect: RegExp }[] = [
            { name: 'binary garbage', command: Buffer.from([0x00, 0x01, 0xff, 0xfe, 0x20, 0x41]), expect: /^\S+ BAD/ },
            { name: 'unknown command', command: 'FROBNICATE now', expect: /^\S+ BAD/ },
            { name: 'truncated FETCH', command: 'FETCH 1:*', expect: /^\S+ BAD/ },
            { name: 'truncated UID', command: 'UID', expect: /^\S+ BAD/ },
            { name: 'SELECT without a name', command: 'SELECT', expect: /^\S+ BAD/ },
            { name: 'unterminated quoted string', command: 'SELECT "INBOX', expect: /^\S+ BAD/ },
            { name: 'unclosed parenthesis', command: 'FETCH 1 (FLAGS UID', expect: /^\S+ BAD/ },
            { name: 'extra closing parenthesis', command: 'FETCH 1 FLAGS)', expect: /^\S+ BAD/ },
            { name: 'nested unclosed parentheses', command: 'FETCH 1 ((FLAGS)', expect: /^\S+ BAD/ },
            { name: 'unbalanced SEARCH', command: 'SEARCH (FROM a', expect: /^\S+ BAD/ },
            { name: 'unclosed STORE flag list', command: 'STORE 1 +FLAGS (\\Seen', expect: /^\S+ BAD/ },
            { name: 'sequence set 1:x', command: 'FETCH 1:x FLAGS', expect: /^\S+ BAD/ },
            { name: 'sequence set 1,,2', command: 'FETCH 1,,2 FLAGS', expect: /^\S+ BAD/ },
            { name: 'sequence set -1', command: 'FETCH -1 FLAGS', expect: /^\S+ BAD/ },
            { name: 'sequence set abc', command: 'UID FETCH abc FLAGS', expect: /^\S+ BAD/ },
            { name: 'unknown FETCH section', command: 'FETCH 1 (BODY[FOO])', expect: /^\S+ BAD/ },
            { name: 'unknown SEARCH key', command: 'SEARCH FROBNICATE', expect: /^\S+ BAD/ },
            { name: 'invalid SEARCH date', command: 'SEARCH SINCE 99-Foo-2020', expect: /^\S+ BAD/ },
            { name: 'unknown STATUS item', command: 'STATUS INBOX (FOO)', expect: /^\S+ BAD/ },
            // LITERAL+ is offered (RFC 7888): `{5+}` is a literal whose 5 bytes follow at once; a bare
            // `+` inside the braces without a CRLF after is still a syntax error.
            { name: 'LITERAL+ marker not ending the line', command: 'SELECT {5+} INBOX', expect: /^\S+ BAD/ },
            { name: 'COPY without destination', command: 'COPY 1', expect: /^\S+ BAD/ }
        ];
        for (const { name, command, expect } of cases) {
            const reply = await session.command(command);
            assert.match(reply.tagged, expect, name);
            assert.ok(!reply.untagged.some(r => /^\* \d+ FETCH/.test(r.text)), `${name}: no data returned`);
        }

        // NIL in a search key is the word "NIL" (RFC 3501 9, astring), not a missing value: imap-core
        // read it as null and the uncaught TypeError ended the whole process.
        for (const command of ['SEARCH SUBJECT NIL', 'UID SEARCH OR BODY NIL HEADER NIL NIL', 'SEARCH NOT TEXT NIL']) {
            assert.match((await session.command(command)).tagged, /^\S+ OK/, command);
        }

        // A part that does not exist is not an error (RFC 3501 6.4.5): every message answers with empty data.
        const missingPart = await session.command('FETCH 1:* (BODY[999])');
        assert.match(missingPart.tagged, /^\S+ OK/);
        const parts = missingPart.untagged.filter(r => /^\* \d+ FETCH/.test(r.text));
        assert.equal(parts.length, INBOX.length);
        for (const response of parts) assert.match(response.text, /BODY\[999\] (\{0\}|NIL|"")/);

        // Sequence numbers past the end select nothing.
        for (const command of ['FETCH 50 FLAGS', 'UID FETCH 50:60 FLAGS', 'FETCH 99999999999999999999 FLAGS']) {
            const reply = await session.command(command);
            assert.match(reply.tagged, /^\S+ (OK|NO|BAD)/, command);
            assert.ok(!reply.untagged.some(r => /^\* \d+ FETCH/.test(r.text)), `${command}: no data`);
        }

        // Lines without a tag, or empty, get an untagged BAD.
        for (const line of ['NOOP\r\n', '\r\n']) {
            const from = session.responses.length;
            session.write(line);
            const reply = await session.waitFor(() => true, `reply to ${JSON.stringify(line)}`, undefined, from);
            assert.match(reply.text, /^\* BAD/, JSON.stringify(line));
        }

        // A literal over the APPEND limit is refused before any data is sent: no "+" continuation.
        {
            const from = session.responses.length;
            session.write('BIG APPEND INBOX {30000000}\r\n');
            const reply = await session.waitFor(r => r.text.startsWith('+') || r.text.startsWith('BIG '), 'reply to the oversized APPEND', undefined, from);
            assert.match(reply.text, /^BIG (NO|BAD)/, 'oversized APPEND literal refused');
            assert.match(reply.text, /TOOBIG/);
        }
        // A non-APPEND literal over 1024 bytes likewise.
        {
            const from = session.responses.length;
            session.write('LIT SEARCH TEXT {2000}\r\n');
            const reply = await session.waitFor(r => r.text.startsWith('+') || r.text.startsWith('LIT '), 'reply to the large SEARCH literal', undefined, from);
            assert.match(reply.text, /^LIT (NO|BAD)/, 'large non-APPEND literal refused');
        }
        // The connection is back in command mode, not waiting for 30 MB of literal.
        assert.match((await session.command('NOOP')).tagged, /^\S+ OK/);
        const stillSelected = await session.command('FETCH 1:* (FLAGS)');
        assert.match(stillSelected.tagged, /^\S+ OK/);
        assert.equal(stillSelected.untagged.filter(r => /^\* \d+ FETCH/.test(r.text)).length, INBOX.length);

        // Last, because a failed SELECT leaves no mailbox selected (RFC 3501 6.3.1).
        // A line that long is over the line limit: refused as a whole, tagged or not.
        const from = session.responses.length;
        session.write(`H1 SELECT "${'a'.repeat(200_000)}"\r\n`);
        await session.waitFor(r => /^(H1 (NO|BAD)|\* (BAD|BYE))/.test(r.text), 'refusal of a 200 KB mailbox name', undefined, from);
        assert.match((await session.command('LOGOUT')).tagged, /^\S+ OK/);
    } finally {
        abuseDone = true;
        session.destroy();
    }
    assert.ok((await watching) >= 1);
    await watcherFetch();
    await newConnectionWorks();
});

test('sequence number 0 is BAD, not message 1', {}, async () => {
    const session = await RawImapConnection.session(gateway.imapPort, USER, PASS, 'Zero');
    try {
        const fetch = await session.command('FETCH 0 (FLAGS)');
        assert.match(fetch.tagged, /^\S+ BAD/, 'FETCH 0');
        const store = await session.command('UID STORE 0 +FLAGS (\\Flagged)');
        assert.match(store.tagged, /^\S+ BAD/, 'UID STORE 0');
        const flags = await session.command('UID FETCH 1 (FLAGS)');
        assert.doesNotMatch(flags.untagged.map(r => r.text).join('\n'), /\\Flagged/, 'UID 1 untouched');
    } finally {
        session.destroy();
    }
});

test('an endless command line is cut off instead of buffered, before login too', async () => {
    // Unauthenticated: anyone on the LAN can open this connection. Past the 64 KiB line limit
    // the server says BYE and closes at once, without waiting for a CRLF that never comes.
    {
        const session = await RawImapConnection.connect(gateway.imapPort);
        try {
            const from = session.responses.length;
            session.write('X1 NOOP ' + 'a'.repeat(4 * 1024 * 1024));
            await session.waitFor(r => /^\* BYE/.test(r.text), 'BYE for the endless line', 3000, from);
            await session.waitClosed(3000);
        } finally {
            session.destroy();
        }
    }
    // Logged in: a tagged BAD as soon as the line passes the limit; the rest of the line is
    // skipped and the session carries on after its CRLF.
    {
        const session = await RawImapConnection.session(gateway.imapPort, USER, PASS);
        try {
            const from = session.responses.length;
            session.write('X2 NOOP ' + 'a'.repeat(4 * 1024 * 1024));
            await session.waitFor(r => /^X2 BAD/.test(r.text), 'tagged BAD for the endless line', 3000, from);
            session.write('\r\n');
            assert.match((await session.command('NOOP')).tagged, /^\S+ OK/);
        } finally {
            session.destroy();
        }
    }
    await watcherFetch();
});

test('more than 50 protocol errors end the connection with BYE; the daemon carries on', async () => {
    const session = await RawImapConnection.session(gateway.imapPort, USER, PASS);
    try {
        const from = session.responses.length;
        // Pipelined: the server answers them in order and gives up after its limit.
        session.write(Array.from({ length: 60 }, (_unused, n) => `G${n} XYZZY\r\n`).join(''));
        await session.waitFor(r => /^\* BYE/.test(r.text), 'BYE after too many errors', undefined, from);
        await session.waitClosed();
    } finally {
        session.destroy();
    }
    await watcherFetch();
    await newConnectionWorks();
});

test('a client that hangs up mid-APPEND leaves nothing behind', async () => {
    const store = gateway.daemon.store;
    const countBlobs = () => blobCount(store);
    const before = await statusOf(watcher, 'INBOX');
    const blobsBefore = countBlobs();
    const raw = makeMessage({ subject: 'never stored', body: 'x'.repeat(200_000) });

    // 1. Half the literal, then the connection drops.
    {
        const session = await RawImapConnection.session(gateway.imapPort, USER, PASS);
        session.write(`H1 APPEND INBOX {${raw.length}}\r\n`);
        await session.waitFor(r => r.text.startsWith('+'), 'continuation');
        session.write(raw.subarray(0, raw.length >> 1));
        session.destroy();
    }
    // 2. The whole literal but not the CRLF that ends the command line: the command never completes.
    {
        const session = await RawImapConnection.session(gateway.imapPort, USER, PASS);
        session.write(`H2 APPEND INBOX {${raw.length}}\r\n`);
        await session.waitFor(r => r.text.startsWith('+'), 'continuation');
        session.write(raw);
        session.destroy();
    }
    // 3. Control: the same message sent properly is stored, on a connection opened after the others closed.
    const session = await RawImapConnection.session(gateway.imapPort, USER, PASS);
    try {
        const status = await session.command('STATUS INBOX (MESSAGES UIDNEXT)');
        assert.match(status.untagged.map(r => r.text).join('\n'), new RegExp(`MESSAGES ${before.messages}\\b`), 'nothing stored by the dropped APPENDs');
        assert.match(status.untagged.map(r => r.text).join('\n'), new RegExp(`UIDNEXT ${before.uidNext}\\b`), 'no UID used up');
        assert.equal(countBlobs(), blobsBefore, 'no message file recorded');
        assert.match(await appendRaw(session, 'INBOX', raw), /^\S+ OK \[APPENDUID/);
    } finally {
        session.destroy();
    }
    assert.equal((await statusOf(watcher, 'INBOX')).messages, before.messages + 1);
    await watcherFetch();
    await newConnectionWorks();
});

test('afterwards the store is intact: integrity_check ok, every blob row has its bytes (inline or a file) and every file a row', () => {
    const store = gateway.daemon.store;
    assert.equal(store.integrityCheck(), 'ok');
    assert.deepEqual(foreignKeyViolations(store), []);
    const rows = blobUsage(store);
    assert.ok(rows.length > 0);
    for (const row of rows) {
        const bytes = messageBytes(store, row.hash);
        assert.ok(bytes, `blob ${row.hash} has its bytes`);
        assert.equal(crypto.createHash('sha256').update(bytes).digest('hex'), row.hash, `blob ${row.hash} is not torn`);
        assert.equal(row.refs, row.users, `blob ${row.hash} reference count`);
    }
    const known = new Set(rows.map(row => row.hash));
    for (const hash of messageFiles(store)) {
        assert.ok(known.has(hash), `file ${hash} has a row`);
    }
    assert.deepEqual(fs.readdirSync(path.join(store.dataDir, 'tmp')), [], 'no temporary files left');
});
