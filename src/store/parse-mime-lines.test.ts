/**
 * Unit tests for imap-core's MIME parser reading lines with indexOf instead of a regular
 * expression per line (patch 105, lib/indexer/parse-mime-tree.js readLine): the lines and line
 * breaks, and so the trees, are those the expression gave, for every kind of line break.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';

interface LineReader {
    rfc822: string;
    _br: string | false;
    _pos: number;
    readLine(): string | false;
    readLineByExpression(): string | false;
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const parse = require('@zone-eu/wildduck/imap-core/lib/indexer/parse-mime-tree') as ((raw: Buffer | string) => unknown) & { MIMEParser: new (raw: Buffer | string) => LineReader };

/** Each line and the break after it, as `read` gives them until there is no break (the parser's loop). */
function lines(input: Buffer | string, read: (reader: LineReader) => string | false): [string | false, string | false][] {
    const reader = new parse.MIMEParser(input);
    const out: [string | false, string | false][] = [];
    while (typeof reader._br === 'string') out.push([read(reader), reader._br]);
    return out;
}

const INPUTS = [
    '',
    'a',
    'a\n',
    'a\r',
    'a\r\n',
    'a\r\r\n',
    'a\r\r',
    'a\r\rb\r\n',
    'a\n\rb',
    '\r\n\r\n',
    '\n\n\n',
    'Subject: x\r\n\r\nbody',
    'Subject: x\n\nbody\n',
    'Subject: x\r\rbody\r',
    'X: \r\r\r\n\n\r',
    'Content-Type: multipart/mixed; boundary=zz\r\n\r\npre\r\n--zz\r\nA: b\r\n\r\nx\r\r\n--zz--  \r\nepi\r',
    // U+2028 and U+2029 end `.` too: such a string is read by the expression, as before.
    'Subject: x\r\n\r\nb\u2028c\r\nd',
    'a\u2029\nb'
];

test('readLine gives the lines and line breaks of the regular expression it replaces', () => {
    for (const text of INPUTS) {
        for (const input of [text, Buffer.from(text, 'binary')]) {
            const expected = lines(input, reader => reader.readLineByExpression());
            assert.deepEqual(
                lines(input, reader => reader.readLine()),
                expected,
                JSON.stringify(text)
            );
        }
    }
});

test('the trees are the same with either way of reading lines, LF, CRLF and CR messages alike', () => {
    const message = [
        'From: a@example.org',
        'Subject: =?utf-8?q?caf=C3=A9?=',
        'Content-Type: multipart/alternative; boundary="b1"',
        '',
        '--b1',
        'Content-Type: text/plain; charset=utf-8',
        '',
        'plain\r\r text',
        '--b1',
        'Content-Type: message/rfc822',
        '',
        'Subject: inner',
        '',
        'inner body',
        '--b1--',
        'epilogue',
        ''
    ];
    const reference = parse.MIMEParser.prototype.readLine;
    for (const lineBreak of ['\n', '\r\n', '\r']) {
        const raw = Buffer.from(message.join(lineBreak), 'binary');
        const tree = parse(raw);
        parse.MIMEParser.prototype.readLine = parse.MIMEParser.prototype.readLineByExpression;
        try {
            assert.deepEqual(tree, parse(raw), JSON.stringify(lineBreak));
        } finally {
            parse.MIMEParser.prototype.readLine = reference;
        }
    }
});
