/**
 * Unit tests for FETCH's response building (src/imap/fetch-response.ts): sequenceOf, fetchResponse,
 * compileFetchPieces (compileFetchLine) and metadataLineWriter stand in for imap-core's formatResponse + compiler, so what they write must
 * be byte for byte what imap-core writes.
 *
 * Queries are made by imap-core's own FETCH command handler (from a parsed command line, as a
 * session would hand them to onFetch), values by imap-core's getQueryResponse over a message
 * analysed as the store analyses it, and the reference is imap-core's formatResponse compiled by
 * its compiler.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyseMessage, type MimeNode } from '../store/mime';
import { imapHandler } from './engine';
import { compileFetchLine, compileFetchPieces, fetchResponse, metadataLineWriter, sequenceOf } from './fetch-response';

type QueryItem = Parameters<typeof fetchResponse>[1][number];
type FetchResponse = { command: string; attributes: unknown[] };

// Loaded after ./engine, which sets up imap-core's environment.
/* eslint-disable @typescript-eslint/no-require-imports */
const fetchCommand = require('@zone-eu/wildduck/imap-core/lib/commands/fetch.js') as { handler(this: unknown, command: unknown, callback: (err: unknown, result?: unknown) => void): void };
const { IMAPConnection } = require('@zone-eu/wildduck/imap-core/lib/imap-connection.js') as {
    IMAPConnection: { prototype: { formatResponse(this: unknown, command: string, uid: number, data: unknown): FetchResponse | false } };
};
const imapTools = require('@zone-eu/wildduck/imap-core/lib/imap-tools.js') as { getQueryResponse(query: QueryItem[], message: unknown): unknown[] };
/* eslint-enable @typescript-eslint/no-require-imports */

const UID_LIST = [3, 7, 100, 101, 4000000000];

/** The query imap-core's FETCH handler builds for `UID FETCH 1:* <items>`. */
function queryOf(items: string): QueryItem[] {
    let query: QueryItem[] | null = null;
    const connection = {
        id: 'unit',
        selected: { uidList: UID_LIST, mailbox: 'mailbox', path: 'INBOX', readOnly: true, condstoreEnabled: true },
        session: { user: { id: 'user' } },
        _server: {
            logger: { debug() {} },
            loggelf() {},
            onFetch(_mailbox: unknown, options: { query: QueryItem[] }, _session: unknown, callback: (err: null, success: boolean) => void) {
                query = options.query;
                callback(null, true);
            }
        }
    };
    fetchCommand.handler.call(connection, imapHandler.parser(`A1 UID FETCH 1:* ${items}`), () => undefined);
    assert.ok(query, `imap-core accepted ${items}`);
    return query;
}

const RAW = Buffer.from(
    [
        'From: =?UTF-8?Q?J=C3=B6rg?= <joerg@example.de>',
        'To: alice@mailmule.lan, "Bob \\"the\\" Builder" <bob@mailmule.lan>',
        'Subject: Grüße aus Köln',
        'Date: Fri, 2 Feb 2024 00:30:00 +0100',
        'Message-ID: <k1@example.de>',
        'MIME-Version: 1.0',
        'Content-Type: multipart/alternative; boundary=b',
        '',
        '--b',
        'Content-Type: text/plain; charset=utf-8',
        '',
        'Hallo (Welt) [1] "quoted" {3}',
        '--b',
        'Content-Type: text/html; charset=utf-8',
        '',
        '<p>Hallo</p>',
        '--b--',
        ''
    ].join('\r\n')
);

/** The stored tree with its bodies back in it (the store keeps them as byte ranges of the message file: mime.ts detachBodies). */
function withBodies(node: MimeNode): MimeNode {
    const range = /^r:(\d+):(\d+)$/.exec(node.attachmentId ?? '');
    if (range) {
        node.body = RAW.subarray(Number(range[1]), Number(range[1]) + Number(range[2]));
        delete node.attachmentId;
    }
    node.childNodes?.forEach(withBodies);
    if (node.message) withBodies(node.message);
    return node;
}

function messageWith(uid: number, flags: string[]) {
    const analysed = analyseMessage(RAW);
    withBodies(analysed.mimeTree);
    return {
        uid,
        modseq: 18446744073709,
        flags,
        idate: new Date(Date.UTC(2024, 1, 1, 23, 30, 0)),
        size: RAW.length,
        mimeTree: analysed.mimeTree,
        envelope: analysed.envelope,
        bodystructure: analysed.bodystructure
    };
}

/** What imap-core itself writes for the message's FETCH response. */
function imapCoreLine(uid: number, query: QueryItem[], values: unknown[]): string {
    const connection = { selected: { uidList: [...UID_LIST] }, announceFlags() {} };
    const response = IMAPConnection.prototype.formatResponse.call(connection, 'FETCH', uid, { query, values });
    assert.ok(response, `uid ${uid} is in the session`);
    return imapHandler.compiler(response);
}

/** What onFetch writes: fetchResponse, then compileFetchLine or, when it declines, imap-core's compiler. */
function ourLine(uid: number, query: QueryItem[], values: unknown[], names?: Map<QueryItem, string>): { line: string; direct: boolean } {
    const response = fetchResponse(sequenceOf(UID_LIST, uid), query, values, names) as FetchResponse;
    const direct = compileFetchLine(response);
    return { line: direct ?? imapHandler.compiler(response), direct: direct !== null };
}

const QUERIES: [string, string[], boolean][] = [
    ['(UID FLAGS)', ['\\Seen', '$Forwarded'], true],
    ['(FLAGS)', [], true],
    ['(FLAGS UID MODSEQ)', ['\\Answered', 'a b', 'Wörk'], true],
    ['(UID RFC822.SIZE INTERNALDATE)', [], false],
    ['(UID BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])', ['\\Seen'], true],
    // Part bodies come as streams: written by imap-core's compiler and the connection's stream handling.
    ['(UID BODY.PEEK[1])', [], false],
    ['(BODY.PEEK[TEXT]<5.20>)', [], false],
    // A partial range can be shortened while answering, so its item name is not cached as text: the compiler's.
    ['(BODY[HEADER.FIELDS.NOT (TO)]<0.10> UID)', [], false],
    ['(RFC822.HEADER)', [], true],
    ['(UID ENVELOPE)', [], false],
    ['(UID BODYSTRUCTURE FLAGS)', ['\\Draft'], false],
    ['ALL', ['\\Flagged'], false],
    ['FULL', [], false]
];

test('each query, each message: the same bytes as imap-core, with and without cached item names', () => {
    for (const [items, flags] of QUERIES) {
        const query = queryOf(items);
        const names = new Map<QueryItem, string>();
        for (const uid of [3, 100, 4000000000]) {
            const values = imapTools.getQueryResponse(query, messageWith(uid, flags));
            const expected = imapCoreLine(uid, query, values);
            assert.equal(ourLine(uid, query, values).line, expected, `${items}, uid ${uid}`);
            // The names map is reused across messages of one command, as onFetch reuses it.
            assert.equal(ourLine(uid, query, values, names).line, expected, `${items}, uid ${uid}, cached names`);
        }
    }
});

test('compileFetchLine writes the line itself for text, numbers, flags and string literals, and leaves nested lists to the compiler', () => {
    for (const [items, flags, direct] of QUERIES) {
        const query = queryOf(items);
        const values = imapTools.getQueryResponse(query, messageWith(7, flags));
        assert.equal(ourLine(7, query, values, new Map()).direct, direct, items);
    }
});

test('a literal is counted in bytes, not characters (RFC 3501 4.3)', () => {
    const query = queryOf('(BODY.PEEK[HEADER.FIELDS (SUBJECT)])');
    const values = imapTools.getQueryResponse(query, messageWith(3, []));
    const { line } = ourLine(3, query, values, new Map());
    const literal = /\{(\d+)\}\r\n/.exec(line);
    assert.ok(literal, line);
    // The line is a binary string: one character per byte on the wire.
    const after = Buffer.from(line.slice(literal.index + literal[0].length), 'binary');
    const length = Number(literal[1]);
    assert.equal(after.subarray(0, length).toString('utf8'), 'Subject: Grüße aus Köln\r\n\r\n');
    // UID FETCH adds UID after the items asked for (RFC 3501 6.4.8).
    assert.equal(after.subarray(length).toString('latin1'), ' UID 3)');
});

test('compileFetchLine declines what it cannot write as the compiler would', () => {
    const line = (items: unknown[]) => compileFetchLine({ command: '1', attributes: [{ type: 'atom', value: 'FETCH' }, items] });
    assert.equal(
        line([
            { type: 'TEXT', value: 'UID' },
            { type: 'TEXT', value: '7' }
        ]),
        '* 1 FETCH (UID 7)'
    );
    // After "(", "<" or "[" the compiler writes no space.
    assert.equal(line([{ type: 'TEXT', value: 'BODY[' }]), null);
    assert.equal(line([{ type: 'TEXT', value: '' }]), null);
    // literal8 (RFC 3516 ~{n}), nested lists, atoms that need checking: the compiler's.
    assert.equal(line([{ type: 'LITERAL', value: 'x', literal8: true }]), null);
    assert.equal(line([[{ type: 'ATOM', value: 'x' }]]), null);
    assert.equal(line([{ type: 'ATOM', value: 'x' }]), null);
    assert.equal(line([null]), null);
});

/** The bytes compileFetchPieces's pieces put on the wire, one after another (strings are binary: one byte per character). */
function piecesBytes(pieces: (string | Buffer)[]): Buffer {
    return Buffer.concat(pieces.map(piece => (typeof piece === 'string' ? Buffer.from(piece, 'latin1') : piece)));
}

/** A whole message as on-fetch.ts reads it for BODY[] (a Buffer), with every byte value from 0 to 255 in it. */
const EIGHT_BIT = Buffer.concat([RAW, Buffer.from('\r\n'), Buffer.from(Array.from({ length: 256 }, (_, byte) => byte)), Buffer.from('\r\n')]);

test("compileFetchPieces: Buffer literals (whole messages) stay Buffers, and the bytes are imap-core's, 8-bit, empty and several alike", () => {
    const cases: [string, unknown[]][] = [
        ['(BODY.PEEK[])', [EIGHT_BIT]],
        ['(BODY.PEEK[])', [Buffer.alloc(0)]],
        ['(UID BODY.PEEK[] FLAGS)', [3, EIGHT_BIT, ['\\Seen']]],
        // Several literals in one response: Buffers and a string (a header from the summary) side by side, and an empty one between.
        ['(BODY.PEEK[] BODY.PEEK[HEADER.FIELDS (SUBJECT)] RFC822 BODY.PEEK[TEXT])', [EIGHT_BIT, 'Subject: Gr\u00fc\u00dfe\r\n\r\n', Buffer.alloc(0), EIGHT_BIT.subarray(0, 40)]]
    ];
    for (const [items, values] of cases) {
        const query = queryOf(items);
        const names = new Map<QueryItem, string>();
        for (const uid of [3, 4000000000]) {
            const uidValues = query.map((item, index) => (item.item === 'uid' ? uid : values[index]));
            const expected = Buffer.from(imapCoreLine(uid, query, uidValues), 'binary');
            const response = fetchResponse(sequenceOf(UID_LIST, uid), query, uidValues, names) as FetchResponse;
            const pieces = compileFetchPieces(response);
            assert.ok(pieces, `${items}: written directly`);
            assert.deepEqual(piecesBytes(pieces), expected, `${items}, uid ${uid}`);
            assert.equal(compileFetchLine(response), expected.toString('binary'), `${items}, uid ${uid}: as one string`);
            // Each non-empty Buffer value is handed on as it is (the same object, not a copy in a string); the strings are the text around them.
            const buffers = uidValues.filter((value): value is Buffer => Buffer.isBuffer(value) && value.length > 0);
            const handedOn = pieces.filter(piece => Buffer.isBuffer(piece));
            assert.equal(handedOn.length, buffers.length, items);
            handedOn.forEach((piece, index) => assert.equal(piece, buffers[index], `${items}: Buffer ${index} is the value itself`));
        }
    }
});

test('compileFetchPieces declines a partial range (<origin.length>): its item name is not cached text, and the compiler writes it', () => {
    const query = queryOf('(BODY.PEEK[]<10.30>)');
    // UID FETCH adds UID after the items asked for.
    const values = query.map(item => (item.item === 'uid' ? 3 : EIGHT_BIT.subarray(10, 40)));
    const response = fetchResponse(sequenceOf(UID_LIST, 3), query, values, new Map()) as FetchResponse;
    assert.equal(compileFetchPieces(response), null);
    assert.equal(imapHandler.compiler(response), imapCoreLine(3, query, values));
});

test('sequenceOf: the 1-based position of a UID in the session, 0 when it is not there', () => {
    assert.equal(sequenceOf(UID_LIST, 3), 1);
    assert.equal(sequenceOf(UID_LIST, 101), 4);
    assert.equal(sequenceOf(UID_LIST, 4000000000), 5);
    assert.equal(sequenceOf(UID_LIST, 4), 0);
    assert.equal(sequenceOf(UID_LIST, 5000000000), 0);
    assert.equal(sequenceOf([], 1), 0);
    // The odd numbers 1 to 19999: UID u is message (u + 1) / 2; even UIDs and 20001 are not there.
    const large = Array.from({ length: 10000 }, (_, i) => 2 * i + 1);
    for (const uid of [1, 2, 9999, 10001, 19999, 20000, 20001]) assert.equal(sequenceOf(large, uid), uid % 2 && uid <= 19999 ? (uid + 1) / 2 : 0, `uid ${uid}`);
});

test('sequenceOf: the expected position is only a first look (right, wrong, past either end, or not there at all)', () => {
    for (const expected of [-1, 0, 2, 3, 4, 5, 99]) {
        for (const uid of [3, 7, 100, 101, 4000000000, 4, 5000000000]) assert.equal(sequenceOf(UID_LIST, uid, expected), sequenceOf(UID_LIST, uid), `uid ${uid} expected at ${expected}`);
    }
    assert.equal(sequenceOf([], 1, 0), 0);
});

test('sequenceOf: a list out of order is scanned rather than trusted', () => {
    assert.equal(sequenceOf([5, 3, 9], 3), 2);
    assert.equal(sequenceOf([5, 3, 9], 5), 1);
    assert.equal(sequenceOf([9, 5], 7), 0);
});

test('metadataLineWriter: the same bytes as imap-core for every query of message fields, and null for any other query', () => {
    const fieldQueries = ['(UID FLAGS)', '(FLAGS)', '(FLAGS UID MODSEQ)', '(UID RFC822.SIZE INTERNALDATE)', '(INTERNALDATE FLAGS RFC822.SIZE MODSEQ)', 'FAST'];
    const flagSets = [[], ['\\Seen', '$Forwarded'], ['\\Answered', 'a b', 'Wörk'], ['\\Recent']];
    for (const items of fieldQueries) {
        const query = queryOf(items);
        const write = metadataLineWriter(query);
        assert.ok(write, items);
        for (const uid of [3, 100, 4000000000]) {
            for (const flags of flagSets) {
                const message = messageWith(uid, flags);
                const expected = imapCoreLine(uid, query, imapTools.getQueryResponse(query, message));
                const fields = { uid, modseq: message.modseq, idate: message.idate.getTime(), size: message.size };
                assert.equal(write(sequenceOf(UID_LIST, uid), fields, flags), expected, `${items}, uid ${uid}, flags ${flags.join(' ')}`);
            }
        }
    }
    for (const items of ['(UID BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])', '(UID ENVELOPE)', 'ALL', '(RFC822.HEADER)', '(UID BODY.PEEK[1])']) {
        assert.equal(metadataLineWriter(queryOf(items)), null, items);
    }
    // RFC822.SIZE of an empty size is measured from the tree by getQueryResponse: the writer declines that message.
    const write = metadataLineWriter(queryOf('(UID RFC822.SIZE)'));
    assert.equal(write?.(1, { uid: 3, modseq: 1, idate: 0, size: 0 }, []), null);
});

test('metadataLineWriter with a literal reader: header fields written as imap-core writes them, and declined where the reader declines', () => {
    const flagSets = [[], ['\\Seen'], ['\\Answered', 'Wörk']];
    for (const items of ['(UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])', '(BODY.PEEK[HEADER.FIELDS (DATE)] UID)', '(FLAGS BODY[HEADER.FIELDS (TO CC)])']) {
        const query = queryOf(items);
        for (const uid of [3, 100, 4000000000]) {
            for (const flags of flagSets) {
                const message = messageWith(uid, flags);
                const values = imapTools.getQueryResponse(query, message);
                // The reader gives the literal's value as getQueryResponse does (on-fetch.ts reads it from the header summary).
                const write = metadataLineWriter<{ uid: number; modseq: number; idate: number; size: number }>(query, item => () => values[query.indexOf(item)] as string);
                assert.ok(write, items);
                const fields = { uid, modseq: message.modseq, idate: message.idate.getTime(), size: message.size };
                assert.equal(write(sequenceOf(UID_LIST, uid), fields, flags), imapCoreLine(uid, query, values), `${items}, uid ${uid}, flags ${flags.join(' ')}`);
            }
        }
    }
    const query = queryOf('(UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])');
    assert.equal(metadataLineWriter(query, () => () => null)?.(1, { uid: 3, modseq: 1, idate: 0, size: 1 }, []), null);
    assert.equal(
        metadataLineWriter(query, () => null),
        null
    );
});
