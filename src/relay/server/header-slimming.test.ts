import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bodyOffset } from './body-refs';
import { slimHeaders } from './header-slimming';

const BODY = 'The body,\r\n\r\nReceived: not a header line here\r\n';

function message(lines: string[], lineEnd = '\r\n'): Buffer {
    return Buffer.from([...lines, '', BODY].join(lineEnd));
}

const RECEIVED = [
    'Received: from mx.upstream.test by imap.upstream.test with LMTP id 1; Mon, 1 Jun 2026 10:00:05 +0000',
    'Received: from relay.example.net (relay.example.net [198.51.100.2])\r\n\tby mx.upstream.test with ESMTPS id 2;\r\n\tMon, 1 Jun 2026 10:00:04 +0000',
    'Received: from lists.example.org by relay.example.net with ESMTP id 3; Mon, 1 Jun 2026 10:00:03 +0000',
    'Received: from [10.0.0.5] by lists.example.org with ESMTPSA id 4; Mon, 1 Jun 2026 10:00:02 +0000'
];

test('keeps the first Received lines (the newest hops), drops the rest, and says what it dropped first in the header', () => {
    const raw = message(['Return-Path: <list@example.org>', 'Delivered-To: bob@upstream.test', ...RECEIVED, 'From: list@example.org', 'Subject: hello']);
    const slim = slimHeaders(raw, { keepReceived: 2 });
    const droppedBytes = Buffer.byteLength(`${RECEIVED[2]}\r\n${RECEIVED[3]}\r\n`);
    assert.equal(
        slim.toString(),
        message([
            `X-Mailmule-Slimmed: received=2 bytes=${droppedBytes}`,
            'Return-Path: <list@example.org>',
            'Delivered-To: bob@upstream.test',
            RECEIVED[0],
            RECEIVED[1],
            'From: list@example.org',
            'Subject: hello'
        ]).toString()
    );
    assert.equal(raw.length - slim.length, droppedBytes - Buffer.byteLength(`X-Mailmule-Slimmed: received=2 bytes=${droppedBytes}\r\n`));
    assert.ok(slim.subarray(bodyOffset(slim)!).equals(raw.subarray(bodyOffset(raw)!)), 'the body is untouched, byte for byte');
    assert.ok(slimHeaders(raw, { keepReceived: 2 }).equals(slim), 'the same message slims to the same bytes');
});

test('a folded Received line goes whole, and a line end of LF is kept as it is', () => {
    const raw = message(['Subject: lf', ...RECEIVED.map(line => line.replace(/\r\n/g, '\n'))], '\n');
    const slim = slimHeaders(raw, { keepReceived: 1 }).toString();
    assert.match(slim, /^X-Mailmule-Slimmed: received=3 bytes=\d+\nSubject: lf\nReceived: from mx\.upstream\.test [^\n]+\n\nThe body/);
    assert.ok(!slim.includes('\tby mx.upstream.test'), 'no continuation line of a dropped field is left behind');
});

test('leaves a message as it is with no more Received lines than it keeps, or whose DKIM signature covers Received', () => {
    const short = message([...RECEIVED.slice(0, 2), 'Subject: two hops']);
    assert.equal(slimHeaders(short, { keepReceived: 2 }), short);
    const signed = message(['DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=k;\r\n\th=From:Subject:Received; bh=abc=; b=def=', ...RECEIVED, 'Subject: signed']);
    assert.equal(slimHeaders(signed, { keepReceived: 1 }), signed);
    const unsigned = message(['DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=k; h=From:Subject; bh=abc=; b=def=', ...RECEIVED, 'Subject: signed']);
    assert.notEqual(slimHeaders(unsigned, { keepReceived: 1 }), unsigned);
    const headerOnly = Buffer.from(`${RECEIVED.join('\r\n')}\r\n`);
    assert.match(slimHeaders(headerOnly, { keepReceived: 1 }).toString(), /^X-Mailmule-Slimmed: received=3 /);
});
