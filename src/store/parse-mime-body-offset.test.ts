/** Unit tests for imap-core's MIME parser noting where each node's body starts (patch 104, lib/indexer/parse-mime-tree.js). */
import { test } from 'node:test';
import assert from 'node:assert/strict';

interface ParsedNode {
    body?: Buffer | false;
    bodyOffset?: number;
    childNodes?: ParsedNode[];
    message?: ParsedNode;
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const parse = require('@zone-eu/wildduck/imap-core/lib/indexer/parse-mime-tree') as (raw: Buffer) => ParsedNode;

const child = (node: ParsedNode, index: number): ParsedNode => {
    const found = node.childNodes?.[index];
    assert.ok(found, `child ${index}`);
    return found;
};

test('bodyOffset: the byte after the empty line that ends the header, in CRLF and LF messages', () => {
    for (const lineBreak of ['\r\n', '\n']) {
        const raw = Buffer.from(['Subject: s', 'X-A: b', '', 'body text', ''].join(lineBreak));
        const tree = parse(raw);
        assert.equal(tree.bodyOffset, raw.indexOf(`${lineBreak}${lineBreak}`) + 2 * lineBreak.length);
        assert.equal(raw.subarray(tree.bodyOffset).toString(), `body text${lineBreak}`);
    }
});

test('bodyOffset counts bytes of a Buffer input, 8-bit header and body bytes included', () => {
    const raw = Buffer.concat([Buffer.from('Subject: caf\u00e9 \u2603\r\n\r\n', 'utf8'), Buffer.from([0xff, 0x00, 0xe9, 0x0d, 0x0a])]);
    const tree = parse(raw);
    assert.equal(tree.bodyOffset, raw.length - 5);
    assert.ok(Buffer.isBuffer(tree.body) && raw.subarray(tree.bodyOffset).equals(tree.body));
});

test('bodyOffset of each part of a multipart, and of the multipart itself (its preamble)', () => {
    const raw = Buffer.from(
        ['Content-Type: multipart/mixed; boundary=b', '', 'preamble', '--b', 'Content-Type: text/plain', '', 'one', '--b', '', 'two (no header lines)', '--b--', 'epilogue', ''].join('\r\n')
    );
    const tree = parse(raw);
    assert.equal(raw.subarray(tree.bodyOffset).toString().split('\r\n')[0], 'preamble');
    const [first, second] = [child(tree, 0), child(tree, 1)];
    assert.ok(Buffer.isBuffer(first.body) && raw.subarray(first.bodyOffset, (first.bodyOffset ?? 0) + first.body.length).equals(first.body));
    assert.equal(first.body.toString(), 'one');
    assert.ok(Buffer.isBuffer(second.body) && raw.subarray(second.bodyOffset, (second.bodyOffset ?? 0) + second.body.length).equals(second.body));
    assert.equal(second.body.toString(), 'two (no header lines)');
});

test('bodyOffset inside a message/rfc822 part counts from the start of that part body', () => {
    const inner = ['Subject: inner', '', 'inner text'].join('\r\n');
    const raw = Buffer.from(['Content-Type: multipart/mixed; boundary=b', '', '--b', 'Content-Type: message/rfc822', '', inner, '--b--', ''].join('\r\n'));
    const part = child(parse(raw), 0);
    assert.equal(raw.subarray(part.bodyOffset).toString().slice(0, inner.length), inner);
    const message = part.message;
    assert.ok(message && Buffer.isBuffer(message.body));
    assert.equal(message.body.toString(), 'inner text');
    const start = (part.bodyOffset ?? 0) + (message.bodyOffset ?? 0);
    assert.ok(raw.subarray(start, start + message.body.length).equals(message.body));
});

test('bodyOffset of a node whose header runs to the end of the input is the input length', () => {
    const raw = Buffer.from('Subject: no body\r\nX-A: b');
    assert.equal(parse(raw).bodyOffset, raw.length);
});
