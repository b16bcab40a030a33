/**
 * Unit tests for SEARCH compiled to SQL (src/store/search.ts).
 *
 * The terms come from imap-core's own SEARCH parser (parseQueryTerms, as the SEARCH command
 * hands them to the store), the message texts from analyseMessage, and the compiled WHERE clause
 * runs in a real SQLite (in memory) over the columns it names, with the mm_* functions registered
 * as the store registers them (registerSearchFunctions). So each case checks what a client gets, not the SQL text.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { analyseMessage } from './mime';
import { compileSearch, headerMatch, headerMatchSql, imapDateToUtcDay, registerSearchFunctions, type SearchTerm } from './search';
import { bodyContainsSql, packSearchText, textContainsSql } from './search-text';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { parseQueryTerms } = require('@zone-eu/wildduck/imap-core/lib/commands/search.js') as {
    parseQueryTerms: (terms: string[], uidList: number[]) => { query: SearchTerm[] };
};

const DAY_MS = 86_400_000;
const UIDS = [1, 2, 3];

interface Fixture {
    uid: number;
    raw: string[];
    flags: string[];
    idate: string;
    size: number;
    modseq: number;
}

const MESSAGES: Fixture[] = [
    {
        uid: 1,
        // 23:30 on 1 Feb in its own zone is 07:30 on 2 Feb UTC: SENTON goes by the former.
        raw: ['From: Carol <carol@example.org>', 'To: alice@mailmule.lan', 'Subject: Village hall booking', 'Date: Thu, 1 Feb 2024 23:30:00 -0800', '', 'The pump needs a new seal.'],
        flags: ['\\Seen'],
        idate: '2024-02-01T12:00:00Z',
        size: 1000,
        modseq: 5
    },
    {
        uid: 2,
        // 00:30 on 2 Feb at +0100 is 23:30 on 1 Feb UTC.
        raw: [
            'From: =?UTF-8?Q?J=C3=B6rg_M=C3=BCller?= <joerg@example.de>',
            'To: alice@mailmule.lan',
            'Subject: =?UTF-8?Q?B=C3=A4ckerei?=',
            'Date: Fri, 2 Feb 2024 00:30:00 +0100',
            '',
            'Frisches Brot.'
        ],
        flags: ['$Work', '\\Deleted'],
        // Exactly midnight: the first moment of 2 Feb.
        idate: '2024-02-02T00:00:00Z',
        size: 5000,
        modseq: 9
    },
    {
        uid: 3,
        // No Date and no Subject field: SENT* fall back to the INTERNALDATE's day.
        raw: ['From: dave@example.net', 'X-Priority: 1', '', 'Marmalade for the fete.'],
        flags: [],
        // The last moment of 3 Feb.
        idate: '2024-02-03T23:59:59.999Z',
        size: 200,
        modseq: 12
    }
];

function openMailbox(): Database.Database {
    const db = new Database(':memory:');
    registerSearchFunctions(db);
    db.exec(`
        CREATE TABLE blobs (hash TEXT PRIMARY KEY, search_headers TEXT NOT NULL, search_body TEXT NOT NULL, search_text BLOB, sent_day INTEGER);
        CREATE TABLE messages (uid INTEGER PRIMARY KEY, modseq INTEGER NOT NULL, flags TEXT NOT NULL, seen INTEGER NOT NULL,
                               deleted INTEGER NOT NULL, idate INTEGER NOT NULL, size INTEGER NOT NULL, blob_hash TEXT NOT NULL);
    `);
    for (const message of MESSAGES) {
        const analysed = analyseMessage(Buffer.from(message.raw.join('\r\n') + '\r\n'));
        // Message 2's row is as a store from before migration 15 left it (plain text, not packed yet); the others as stored now.
        const insert = db.prepare('INSERT INTO blobs VALUES (?, ?, ?, ?, ?)');
        if (message.uid === 2) insert.run(analysed.hash, analysed.searchHeaders, analysed.searchBody, null, analysed.sentDay);
        else insert.run(analysed.hash, '', '', packSearchText(analysed.searchHeaders, analysed.searchBody), analysed.sentDay);
        db.prepare('INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(
            message.uid,
            message.modseq,
            JSON.stringify(message.flags),
            message.flags.includes('\\Seen') ? 1 : 0,
            message.flags.includes('\\Deleted') ? 1 : 0,
            Date.parse(message.idate),
            message.size,
            analysed.hash
        );
    }
    return db;
}

const db = openMailbox();

function run(terms: SearchTerm[]): number[] {
    const compiled = compileSearch(terms);
    const sql = `SELECT m.uid FROM messages m ${compiled.needsBlob ? 'JOIN blobs b ON b.hash = m.blob_hash' : ''} WHERE (${compiled.where}) ORDER BY m.uid`;
    return db
        .prepare(sql)
        .pluck()
        .all(...compiled.params) as number[];
}

/** The UIDs a SEARCH with these arguments (one token each, as the IMAP parser gives them) finds. */
function search(...tokens: string[]): number[] {
    return run(parseQueryTerms(tokens, UIDS).query);
}

test('SENTON/SENTBEFORE/SENTSINCE: the day of the Date field in its own time zone (RFC 3501 6.4.4)', () => {
    assert.deepEqual(search('SENTON', '1-Feb-2024'), [1]);
    assert.deepEqual(search('SENTON', '2-Feb-2024'), [2]);
    assert.deepEqual(search('SENTBEFORE', '2-Feb-2024'), [1]);
    assert.deepEqual(search('SENTSINCE', '2-Feb-2024'), [2, 3]);
});

test('SENT* without a Date field use the day of the INTERNALDATE', () => {
    assert.deepEqual(search('SENTON', '3-Feb-2024'), [3]);
});

test('ON/BEFORE/SINCE: whole UTC days of the INTERNALDATE, midnight belonging to the day it starts', () => {
    assert.deepEqual(search('ON', '2-Feb-2024'), [2]);
    assert.deepEqual(search('BEFORE', '2-Feb-2024'), [1]);
    assert.deepEqual(search('SINCE', '2-Feb-2024'), [2, 3]);
    assert.deepEqual(search('SINCE', '3-Feb-2024'), [3]);
    assert.deepEqual(search('ON', '4-Feb-2024'), []);
});

test('OLDER/YOUNGER (RFC 5032) compare the exact moment', () => {
    const at = (iso: string) => new Date(Date.parse(iso));
    assert.deepEqual(run([{ key: 'internaldate', operator: '<=', value: at('2024-02-02T00:00:00Z') }]), [1, 2]);
    assert.deepEqual(run([{ key: 'internaldate', operator: '>=', value: at('2024-02-02T00:00:00.001Z') }]), [3]);
    // Anything but <= and >= with a moment, or an invalid moment, matches nothing.
    assert.deepEqual(run([{ key: 'internaldate', operator: '=', value: at('2024-02-02T00:00:00Z') }]), []);
    assert.deepEqual(run([{ key: 'internaldate', operator: '>=', value: new Date(NaN) }]), []);
});

test('header searches: case-insensitive substrings of decoded values; addresses by address and by name', () => {
    assert.deepEqual(search('SUBJECT', 'HALL'), [1]);
    assert.deepEqual(search('SUBJECT', 'bäckerei'), [2]);
    assert.deepEqual(search('FROM', 'joerg@example.de'), [2]);
    assert.deepEqual(search('FROM', 'Müller'), [2]);
    assert.deepEqual(search('TO', 'alice@mailmule.lan'), [1, 2]);
});

test('HEADER with an empty string: every message that has the field (RFC 3501 6.4.4)', () => {
    assert.deepEqual(search('HEADER', 'X-Priority', ''), [3]);
    assert.deepEqual(search('HEADER', 'Subject', ''), [1, 2]);
    assert.deepEqual(search('HEADER', 'X-Missing', ''), []);
});

test('TEXT searches header and body, BODY the body only', () => {
    assert.deepEqual(search('TEXT', 'marmalade'), [3]);
    assert.deepEqual(search('TEXT', 'carol'), [1]);
    assert.deepEqual(search('BODY', 'carol'), []);
    assert.deepEqual(search('BODY', 'PUMP'), [1]);
});

test('several text terms on one row (each unpacks the same packed text); a row not packed yet is searched as it is', () => {
    assert.deepEqual(search('SUBJECT', 'hall', 'BODY', 'pump', 'TEXT', 'carol'), [1]);
    assert.deepEqual(search('OR', 'BODY', 'brot', 'HEADER', 'X-Priority', ''), [2, 3]);
    assert.deepEqual(search('FROM', 'müller', 'BODY', 'frisches'), [2]);
});

test('the signature rules rows out but never a match: TEXT and BODY find what a plain substring search of the texts finds', () => {
    const texts = MESSAGES.map(message => analyseMessage(Buffer.from(message.raw.join('\r\n') + '\r\n')));
    for (const needle of ['a', 'br', 'ü', 'pump', 'marmalade', 'bäckerei', 'example', 'x-priority: 1', 'no such words', 'e.', 'müller', ': ']) {
        const text = texts.flatMap((analysed, index) => (analysed.searchHeaders.includes(needle) || analysed.searchBody.includes(needle) ? [index + 1] : []));
        const body = texts.flatMap((analysed, index) => (analysed.searchBody.includes(needle) ? [index + 1] : []));
        assert.deepEqual(run([{ key: 'text', value: needle }]), text, `TEXT ${needle}`);
        assert.deepEqual(run([{ key: 'body', value: needle }]), body, `BODY ${needle}`);
    }
});

test('the signature is tested in SQL: a packed text that cannot hold the needle never reaches the mm_* functions', () => {
    const counted = openMailbox();
    // Registered again by name and arity, counting the rows each is called on.
    let reached = 0;
    const seen = (_packed: unknown) => reached++;
    counted.function('mm_text_contains', { deterministic: true }, (packed: unknown, needle: unknown) => (seen(packed), textContainsSql(packed, needle)));
    counted.function('mm_body_contains', { deterministic: true }, (packed: unknown, needle: unknown) => (seen(packed), bodyContainsSql(packed, needle)));
    counted.function('mm_header_match', { deterministic: true }, (packed: unknown, name: unknown, needle: unknown) => (seen(packed), headerMatchSql(packed, name, needle)));
    const uids = (terms: SearchTerm[]) => {
        reached = 0;
        const compiled = compileSearch(terms);
        return counted
            .prepare(`SELECT m.uid FROM messages m JOIN blobs b ON b.hash = m.blob_hash WHERE (${compiled.where}) ORDER BY m.uid`)
            .pluck()
            .all(...compiled.params) as number[];
    };
    // Message 2's row is not packed yet (NULL): it always reaches the function, packed on the fly; message 1's and 3's only when their signature has the needle's trigrams.
    assert.deepEqual(uids([{ key: 'text', value: 'marmalade' }]), [3]);
    assert.equal(reached, 2);
    assert.deepEqual(uids([{ key: 'body', value: 'seal' }]), [1]);
    assert.equal(reached, 2);
    assert.deepEqual(uids([{ key: 'text', value: 'no such words' }]), []);
    assert.equal(reached, 1);
    // A needle shorter than three bytes has no trigram to test: every row reaches the function.
    assert.deepEqual(uids([{ key: 'header', header: 'x-priority', value: '1' }]), [3]);
    assert.equal(reached, 3);
    counted.close();
});

test('a long needle (several terms of 2,000 bytes) compiles to SQL SQLite takes, and still finds its message', () => {
    const body = 'Marmalade for the fete.'.toLowerCase();
    const long = (body + ' ').repeat(90).slice(0, 2000);
    assert.deepEqual(run([{ key: 'text', value: long }]), []);
    assert.deepEqual(run(Array.from({ length: 5 }, () => ({ key: 'body', value: long }))), []);
    assert.deepEqual(
        run([
            { key: 'text', value: body },
            { key: 'not', value: { key: 'body', value: long } }
        ]),
        [3]
    );
});

test('TEXT matches within the header text or the body text, not across the end of one and the start of the other', () => {
    const { searchHeaders, searchBody } = analyseMessage(Buffer.from(MESSAGES[2].raw.join('\r\n') + '\r\n'));
    const across = searchHeaders.slice(-3) + searchBody.slice(0, 3);
    assert.deepEqual(search('TEXT', across), []);
    assert.deepEqual(search('TEXT', searchHeaders.slice(-3)), [3]);
});

test('flags: system flags by column, keywords case-insensitively, \\Recent never (resolved per session elsewhere)', () => {
    assert.deepEqual(search('SEEN'), [1]);
    assert.deepEqual(search('UNSEEN'), [2, 3]);
    assert.deepEqual(search('DELETED'), [2]);
    assert.deepEqual(search('KEYWORD', '$work'), [2]);
    assert.deepEqual(search('UNKEYWORD', '$WORK'), [1, 3]);
    assert.deepEqual(search('RECENT'), []);
});

test('NOT, OR, and the implicit AND of a list', () => {
    assert.deepEqual(search('NOT', 'SEEN'), [2, 3]);
    assert.deepEqual(search('OR', 'SEEN', 'DELETED'), [1, 2]);
    assert.deepEqual(search('OR', 'SEEN', 'NOT', 'DELETED'), [1, 3]);
    assert.deepEqual(search('UNSEEN', 'NOT', 'DELETED'), [3]);
    assert.deepEqual(search('ALL'), [1, 2, 3]);
    assert.deepEqual(run([]), [1, 2, 3]);
});

test('LARGER and SMALLER are strict (RFC 3501: larger than, smaller than)', () => {
    assert.deepEqual(search('LARGER', '1000'), [2]);
    assert.deepEqual(search('SMALLER', '1000'), [3]);
    assert.deepEqual(search('LARGER', '999'), [1, 2]);
});

test('MODSEQ n: messages whose modseq is n or higher (RFC 7162 3.1.5)', () => {
    assert.deepEqual(search('MODSEQ', '9'), [2, 3]);
    assert.deepEqual(search('MODSEQ', '13'), []);
});

test('UID and sequence sets: the resolved UIDs; an empty set matches nothing', () => {
    assert.deepEqual(search('UID', '2:3'), [2, 3]);
    assert.deepEqual(search('UID', '3:*'), [3]);
    assert.deepEqual(search('1,3'), [1, 3]);
    assert.deepEqual(search('UID', '7'), []);
});

test('an empty group matches everything, an unknown key nothing, an empty OR nothing', () => {
    assert.deepEqual(run([[] as SearchTerm[]] as unknown as SearchTerm[]), [1, 2, 3]);
    assert.deepEqual(run([undefined as unknown as SearchTerm]), [1, 2, 3]);
    assert.deepEqual(run([{ key: 'no-such-key' }]), []);
    assert.deepEqual(run([{ key: 'or', value: [] }]), []);
    assert.deepEqual(run([{ key: 'date', operator: '=', value: 'not a date' }]), []);
});

test('text is passed as a parameter, never spliced into the SQL', () => {
    const hostile = "x' OR 1=1; DROP TABLE messages; --";
    assert.deepEqual(search('SUBJECT', hostile), []);
    assert.deepEqual(search('KEYWORD', hostile), []);
    assert.deepEqual(search('ALL'), [1, 2, 3]);
});

test('the blob table is joined only when text or the Date field is searched', () => {
    assert.equal(compileSearch(parseQueryTerms(['SEEN', 'LARGER', '5', 'UID', '1:3'], UIDS).query).needsBlob, false);
    assert.equal(compileSearch(parseQueryTerms(['SINCE', '1-Feb-2024'], UIDS).query).needsBlob, false);
    assert.equal(compileSearch(parseQueryTerms(['SENTSINCE', '1-Feb-2024'], UIDS).query).needsBlob, true);
    assert.equal(compileSearch(parseQueryTerms(['NOT', 'SUBJECT', 'x'], UIDS).query).needsBlob, true);
});

test('imapDateToUtcDay: an IMAP date (RFC 3501 date) as the UTC midnight of that day', () => {
    assert.equal(imapDateToUtcDay('1-Feb-2024'), Date.UTC(2024, 1, 1));
    assert.equal(imapDateToUtcDay('29-feb-2024'), Date.UTC(2024, 1, 29));
    assert.equal(imapDateToUtcDay(' 31-DEC-1999 '), Date.UTC(1999, 11, 31));
    assert.equal(imapDateToUtcDay('31-Dec-1999') + DAY_MS, Date.UTC(2000, 0, 1));
    assert.ok(Number.isNaN(imapDateToUtcDay('2024-02-01')));
    assert.ok(Number.isNaN(imapDateToUtcDay('1-February-2024')));
    assert.ok(Number.isNaN(imapDateToUtcDay('')));
});

test('imapDateToUtcDay: an unknown month is not a date', () => {
    assert.ok(Number.isNaN(imapDateToUtcDay('1-Foo-2024')));
});

test('headerMatch: a field by its whole name at the start of a line; empty needle = the field exists', () => {
    const headers = 'subject: village hall\nx-empty:\nreceived: from a\nreceived: from b\nx-subject: other';
    assert.equal(headerMatch(headers, 'subject', 'hall'), 1);
    assert.equal(headerMatch(headers, 'subject', 'other'), 0, 'x-subject is another field');
    assert.equal(headerMatch(headers, 'subj', ''), 0, 'a prefix of a name is not the name');
    assert.equal(headerMatch(headers, 'x-empty', ''), 1, 'an empty field exists');
    assert.equal(headerMatch(headers, 'x-empty', 'a'), 0);
    assert.equal(headerMatch(headers, 'received', 'from b'), 1, 'any of a repeated field');
    assert.equal(headerMatch(headers, 'x-missing', ''), 0);
    assert.equal(headerMatch('', 'subject', ''), 0);
});
