import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bodyOffset, bodyPart, MIN_BODY_REF_BYTES, sha256Hex } from './body-refs';

test('bodyOffset: the byte after the blank line that ends the header, CRLF or LF, whichever comes first', () => {
    assert.equal(bodyOffset(Buffer.from('Subject: a\r\nTo: b\r\n\r\nbody\r\n\r\nmore')), 21);
    assert.equal(bodyOffset(Buffer.from('Subject: a\nTo: b\n\nbody\r\n\r\n')), 18);
    assert.equal(bodyOffset(Buffer.from('Subject: a\r\n\r\nbody\n\nmore')), 14, 'an LF LF in the body is not the header end');
    assert.equal(bodyOffset(Buffer.from('\r\nbody only')), 2, 'an empty header');
    assert.equal(bodyOffset(Buffer.from('\nbody only')), 1);
    assert.equal(bodyOffset(Buffer.from('Subject: a header only\r\n')), null);
});

test('bodyPart: the same body under other header lines is the same part, at its own offset', () => {
    const body = 'x'.repeat(MIN_BODY_REF_BYTES);
    const alice = Buffer.from(`Delivered-To: alice@example.org\r\nReceived: from a by b; Mon, 1 Jun 2026\r\nSubject: post\r\n\r\n${body}`);
    const bob = Buffer.from(`Delivered-To: bob@example.org\r\nSubject: post\r\n\r\n${body}`);
    const one = bodyPart(alice, sha256Hex(alice))!;
    const two = bodyPart(bob, sha256Hex(bob))!;
    assert.equal(one.hash, two.hash);
    assert.notEqual(one.messageHash, two.messageHash);
    assert.equal(one.length, body.length);
    assert.ok(alice.subarray(one.offset).equals(bob.subarray(two.offset)));
    assert.equal(bodyPart(Buffer.from(`Subject: short\r\n\r\n${'x'.repeat(MIN_BODY_REF_BYTES - 1)}`), 'ab'), null, 'a short body goes whole');
    assert.equal(bodyPart(Buffer.from('Subject: no body'), 'ab'), null);
});
