/**
 * BODY[HEADER.FIELDS (…)] of the fields clients list folders by comes from each message's header
 * summary (src/store/header-summary.ts, schema migration 12); every other root header request reads
 * the message's whole header. Both must give, byte for byte, what imap-core gives from the parsed
 * message: checked here over IMAP for messages with folded, repeated, 8-bit and oddly broken
 * header lines, one message at a time and all at once (`1:*`), with and without the summary rows
 * (a store from before the migration, filled again at start-up).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type Gateway } from './support/gateway';
import { RawImapConnection, appendRaw } from './support/raw-imap-connection';
import { withStoreDb } from './support/store';
import { analyseMessage } from '../src/store';

const USER = 'alice';
const PASS = 'alice-secret-pw';
const TEST_MS = 60_000;
const MAILBOX = 'Summaries';

const latin1 = (text: string) => Buffer.from(text, 'latin1');

const MESSAGES: Buffer[] = [
    latin1(
        'From: Carol\r\n <carol@example.org>\r\nTo: a@example.org\r\nTo: b@example.org\r\nSubject: a subject long enough\r\n\tto be folded\r\nDate: Mon, 2 Feb 2026 10:00:00 +0000\r\nMessage-ID: <1@x>\r\nReceived: from somewhere\r\nContent-Type: text/plain\r\n\r\nbody\r\n'
    ),
    // LF line ends, 8-bit UTF-8 in the subject, field names in odd case, In-Reply-To and References.
    latin1(`fRoM: bob@example.org\nSUBJECT: ${Buffer.from('Grüße aus dem Dorf').toString('latin1')}\nIn-Reply-To: <1@x>\nReferences: <0@x>\n <1@x>\nX-Other: yes\n\nbody\n`),
    // Only a header, no blank line and no line break at the end.
    latin1('Subject: header only\r\nFrom: dave@example.org'),
    // No field of the summary at all.
    latin1('Received: x\r\nX-Other: no\r\n\r\nbody\r\n'),
    // A first line of white space, a line without a colon, lone CRs, a field name with a space.
    latin1(' leading: x\r\nSubject: odd\rFrom : eve@example.org\r\nno colon\r\nBad Name: y\r\nTo: z@example.org\r\n\r\nbody'),
    // Every field of Thunderbird's list, and a few more, in an unusual order.
    latin1(
        'Content-Type: text/plain\r\nReply-To: r@example.org\r\nX-Priority: 3\r\nPriority: normal\r\nNewsgroups: a.b\r\nBcc: c@example.org\r\nCc: d@example.org\r\nDate: Tue, 3 Feb 2026 10:00:00 +0000\r\nSubject: all\r\nFrom: f@example.org\r\nTo: t@example.org\r\nMessage-ID: <all@x>\r\nList-Post: <mailto:l@example.org>\r\n\r\nbody\r\n'
    )
];

const REQUESTS = [
    'From To Cc Subject Date Message-ID References Content-Type',
    'From To Cc Bcc Subject Date Message-ID Priority X-Priority References Newsgroups In-Reply-To Content-Type Reply-To',
    'SUBJECT',
    'from',
    'Lines',
    // Fields outside the summary: the whole header is read.
    'From Subject X-Other',
    'Received'
];

/** imap-core's BODY[HEADER.FIELDS] from a whole parsed header (indexer.js getContents). */
function expectedFields(raw: Buffer, names: string[], not = false): string {
    const lines = analyseMessage(raw).mimeTree.header;
    const wanted = names.map(name => name.toLowerCase());
    const kept = lines.filter(line => wanted.includes(line.split(':').shift()!.toLowerCase().trim()) !== not);
    return kept.length ? kept.join('\r\n') + '\r\n\r\n' : '\r\n';
}

function expectedHeader(raw: Buffer): string {
    const lines = analyseMessage(raw).mimeTree.header;
    return lines.length ? lines.join('\r\n') + '\r\n\r\n' : '\r\n';
}

let gateway: Gateway;
const uids: number[] = [];

before(
    async () => {
        gateway = await startGateway({ plaintext: true });
        const session = await RawImapConnection.session(gateway.imapPort, USER, PASS);
        try {
            assert.match((await session.command(`CREATE ${MAILBOX}`)).tagged, /OK/);
            for (const raw of MESSAGES) {
                const tagged = await appendRaw(session, MAILBOX, raw);
                const match = /APPENDUID \d+ (\d+)/.exec(tagged);
                assert.ok(match, tagged);
                uids.push(Number(match[1]));
            }
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

/** The one literal of each FETCH response of `UID FETCH <set> (UID <item>)`, by UID. */
async function literalsByUid(session: RawImapConnection, set: string, item: string): Promise<Map<number, string>> {
    const reply = await session.command(`UID FETCH ${set} (UID ${item})`);
    assert.match(reply.tagged, /OK/, `${item}: ${reply.tagged}`);
    const out = new Map<number, string>();
    for (const response of reply.untagged) {
        const uid = /\(UID (\d+) /.exec(response.text);
        if (!uid) continue;
        assert.equal(response.literals.length, 1, response.text);
        out.set(Number(uid[1]), response.literals[0].toString('latin1'));
    }
    return out;
}

/** Checks every request, message by message and as one `1:*` FETCH, against imap-core's answers. */
async function checkAll(what: string): Promise<void> {
    const session = await RawImapConnection.session(gateway.imapPort, USER, PASS, MAILBOX);
    try {
        for (const request of REQUESTS) {
            const names = request.split(' ');
            const all = await literalsByUid(session, '1:*', `BODY.PEEK[HEADER.FIELDS (${request})]`);
            assert.equal(all.size, MESSAGES.length);
            for (const [index, raw] of MESSAGES.entries()) {
                const expected = expectedFields(raw, names);
                assert.equal(all.get(uids[index]), expected, `${what}: message ${index}, HEADER.FIELDS (${request}), 1:*`);
                const one = await literalsByUid(session, String(uids[index]), `BODY.PEEK[HEADER.FIELDS (${request})]`);
                assert.equal(one.get(uids[index]), expected, `${what}: message ${index}, HEADER.FIELDS (${request})`);
            }
        }
        const partial = await literalsByUid(session, '1:*', 'BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)]<2.15>');
        const header = await literalsByUid(session, '1:*', 'BODY.PEEK[HEADER]');
        const not = await literalsByUid(session, '1:*', 'BODY.PEEK[HEADER.FIELDS.NOT (From Subject)]');
        const rfc822Header = await literalsByUid(session, '1:*', 'RFC822.HEADER');
        for (const [index, raw] of MESSAGES.entries()) {
            assert.equal(partial.get(uids[index]), expectedFields(raw, ['from', 'subject']).slice(2, 17), `${what}: message ${index}, partial`);
            assert.equal(header.get(uids[index]), expectedHeader(raw), `${what}: message ${index}, HEADER`);
            assert.equal(rfc822Header.get(uids[index]), expectedHeader(raw), `${what}: message ${index}, RFC822.HEADER`);
            assert.equal(not.get(uids[index]), expectedFields(raw, ['from', 'subject'], true), `${what}: message ${index}, HEADER.FIELDS.NOT`);
        }
    } finally {
        session.destroy();
    }
}

test('header fields from the summary and from the whole header are what imap-core gives', { timeout: TEST_MS }, async () => {
    await checkAll('with summaries');
});

test('messages without a summary (a store from before migration 12) are answered from their files, then filled at start-up', { timeout: TEST_MS }, async () => {
    const deleted = withStoreDb(gateway.daemon.store, db => db.prepare('DELETE FROM message_headers').run().changes);
    assert.ok(deleted >= MESSAGES.length);
    await checkAll('without summaries');
    gateway.daemon.store.recover();
    const filled = withStoreDb(gateway.daemon.store, db => db.prepare('SELECT count(*) FROM message_headers').pluck().get() as number);
    assert.equal(filled, deleted);
    await checkAll('filled again');
});

test('a copy takes its summary with it', { timeout: TEST_MS }, async () => {
    const session = await RawImapConnection.session(gateway.imapPort, USER, PASS, MAILBOX);
    try {
        assert.match((await session.command(`UID COPY 1:* INBOX`)).tagged, /OK/);
    } finally {
        session.destroy();
    }
    const missing = withStoreDb(gateway.daemon.store, db => db.prepare('SELECT count(*) FROM messages m WHERE NOT EXISTS (SELECT 1 FROM message_headers h WHERE h.id = m.id)').pluck().get());
    assert.equal(missing, 0);
});
