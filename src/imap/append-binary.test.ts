/**
 * binaryPartsToBase64 (append-binary.ts), the encoding of binary parts of a message
 * APPENDed in a literal8: only those parts change, everything around them is kept byte for byte.
 * The IMAP side (APPEND ~{n}, then FETCH) is in test/imap-binary.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { binaryPartsToBase64 } from './append-binary';

const latin1 = (text: string) => Buffer.from(text, 'latin1');
const convert = (text: string) => binaryPartsToBase64(latin1(text)).toString('latin1');
const b64 = (text: string) => latin1(text).toString('base64');

test('a message without binary parts is returned as it is', () => {
    const raw = latin1('From: a@example.org\r\nContent-Transfer-Encoding: 8bit\r\n\r\nbinary \xe4\0 data\r\n');
    assert.equal(binaryPartsToBase64(raw), raw);
});

test('a binary body becomes base64 in lines of 76, without a line break after the last', () => {
    const body = Array.from({ length: 200 }, (_, i) => String.fromCharCode(i)).join('');
    const out = convert(`Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: Binary\r\nX-After: 1\r\n\r\n${body}`);
    const [header, encoded] = out.split('\r\n\r\n');
    assert.equal(header, 'Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\nX-After: 1');
    const lines = encoded.split('\r\n');
    assert.deepEqual(
        lines.map(line => line.length),
        [76, 76, 76, 40]
    );
    assert.equal(Buffer.from(lines.join(''), 'base64').toString('latin1'), body);
});

test('a folded field with a comment is one field; when the field repeats, the last one counts (as in imap-core)', () => {
    assert.equal(convert('Content-Transfer-Encoding:\r\n BINARY (raw)\r\nSubject: s\r\n\r\n\0\n'), `Content-Transfer-Encoding: base64\r\nSubject: s\r\n\r\n${b64('\0\n')}`);
    const twice = 'Content-Transfer-Encoding: binary\r\nContent-Transfer-Encoding: 8bit\r\n\r\ndata\r\n';
    assert.equal(convert(twice), twice);
    assert.equal(convert('Content-Transfer-Encoding: 8bit\nContent-Transfer-Encoding: binary\n\n\0'), `Content-Transfer-Encoding: 8bit\nContent-Transfer-Encoding: base64\n\n${b64('\0')}`);
});

test('multipart: preamble, delimiters (padded ones too), other parts and epilogue are kept; the line break before a delimiter is not part of the body', () => {
    const message = [
        'Content-Type: multipart/mixed; boundary="b1"',
        'Content-Transfer-Encoding: binary',
        '',
        'preamble',
        '--b1',
        'Content-Type: text/plain',
        '',
        'text',
        '--b1  ',
        'Content-Transfer-Encoding: binary',
        '',
        '\0a\nb',
        '--b1--',
        'epilogue',
        ''
    ].join('\r\n');
    const expected = message.replace('Content-Transfer-Encoding: binary\r\n\r\n\0a\nb', `Content-Transfer-Encoding: base64\r\n\r\n${b64('\0a\nb')}`);
    // The multipart's own label is not changed: a multipart is never encoded (RFC 2046 5.1).
    assert.ok(expected.startsWith('Content-Type: multipart/mixed; boundary="b1"\r\nContent-Transfer-Encoding: binary\r\n'));
    assert.equal(convert(message), expected);
});

test('without a close-delimiter the last part runs to the end; an empty part stays empty', () => {
    assert.equal(
        convert('Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Transfer-Encoding: binary\n\n--b\nContent-Transfer-Encoding: binary\n\n\0\n'),
        `Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Transfer-Encoding: base64\n\n--b\nContent-Transfer-Encoding: base64\n\n${b64('\0\n')}`
    );
});

test('message/rfc822 and the parts of a digest are walked into, never encoded themselves (RFC 2046 5.2.1)', () => {
    const inner = 'From: b@example.org\r\nContent-Transfer-Encoding: binary\r\n\r\n\0';
    const innerOut = `From: b@example.org\r\nContent-Transfer-Encoding: base64\r\n\r\n${b64('\0')}`;
    assert.equal(convert(`Content-Type: message/rfc822\r\nContent-Transfer-Encoding: binary\r\n\r\n${inner}`), `Content-Type: message/rfc822\r\nContent-Transfer-Encoding: binary\r\n\r\n${innerOut}`);
    // In a digest a part without Content-Type is message/rfc822 (RFC 2046 5.1.5).
    assert.equal(
        convert(`Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\n${inner}\r\n--d--\r\n`),
        `Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\n${innerOut}\r\n--d--\r\n`
    );
});

test('deeply nested multiparts are bounded: the innermost are kept as they are', () => {
    const depth = 500;
    let message = 'Content-Transfer-Encoding: binary\r\n\r\n\0';
    for (let i = 0; i < depth; i++) message = `Content-Type: multipart/mixed; boundary=n${i}\r\n\r\n--n${i}\r\n${message}\r\n--n${i}--\r\n`;
    assert.equal(convert(message), message);
});
