import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { it } from 'node:test';
import { headerStub } from './headers-first';

it("a header stub keeps the message's own header fields as they came, drops its MIME structure, and reads only the head", async () => {
    const head = [
        'Received: from mx.example.org by upstream.test;',
        '\tMon, 01 Jun 2026 10:00:00 +0000',
        'From: =?UTF-8?Q?Jos=C3=A9?= <jose@example.org>',
        'Subject: a long mail',
        'Message-ID: <long@example.org>',
        'MIME-Version: 1.0',
        'Content-Type: multipart/mixed;',
        ' boundary="b1"',
        '',
        ''
    ].join('\r\n');
    const body = `--b1\r\nContent-Type: text/plain\r\n\r\n${'x'.repeat(200_000)}\r\n--b1--\r\n`;
    let read = 0;
    // A message in 16 KB pieces: the stub needs the first one only.
    const source = Readable.from(
        (function* () {
            const whole = Buffer.from(head + body);
            for (let offset = 0; offset < whole.length; offset += 16_384) {
                read += 1;
                yield whole.subarray(offset, offset + 16_384);
            }
        })()
    );
    const stub = (await headerStub(source, 200_123)).toString('binary');
    assert.equal(read, 1);
    const [stubHead, note] = stub.split('\r\n\r\n');
    assert.ok(stubHead.includes('Received: from mx.example.org by upstream.test;\r\n\tMon, 01 Jun 2026 10:00:00 +0000'), stubHead);
    assert.ok(stubHead.includes('From: =?UTF-8?Q?Jos=C3=A9?= <jose@example.org>\r\nSubject: a long mail\r\nMessage-ID: <long@example.org>'), stubHead);
    assert.match(stubHead, /^X-Mailmule-Stub: headers first, original size 200123\r\n/);
    assert.doesNotMatch(stubHead, /multipart|boundary/);
    assert.match(stubHead, /\r\nContent-Type: text\/plain; charset=utf-8\r\n/);
    assert.match(note, /196 KB\) is on its way/);
    assert.ok(stub.length < 1024, `${stub.length} bytes`);
});
