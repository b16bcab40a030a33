import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyseMessage } from '../store';
import { buildTooComplexNote, headerBlockOf } from './stub';

test('headerBlockOf: up to the first empty line, CRLF or LF, whichever comes first', () => {
    assert.equal(headerBlockOf(Buffer.from('Subject: a\r\nFrom: b\r\n\r\nbody\r\n\r\nmore')).toString(), 'Subject: a\r\nFrom: b');
    assert.equal(headerBlockOf(Buffer.from('Subject: a\nFrom: b\n\nbody\r\n\r\nmore')).toString(), 'Subject: a\nFrom: b');
    assert.equal(headerBlockOf(Buffer.from('Subject: only a header')).toString(), 'Subject: only a header');
});

test('headerBlockOf: a header block past 64 KB is cut at a line end', () => {
    const line = `X-Filler: ${'x'.repeat(990)}\r\n`;
    const block = headerBlockOf(Buffer.from(`Subject: big\r\n${line.repeat(200)}\r\nbody`));
    assert.ok(block.length <= 64 * 1024, `${block.length} bytes`);
    assert.ok(block.length > 60 * 1024, `${block.length} bytes`);
    assert.match(block.toString(), /^Subject: big\r\n/);
    assert.match(block.toString(), /x\r?$/, 'ends with a whole line');
});

test('buildTooComplexNote: the original headers without its MIME structure, the reason and where the message stays; storable', async () => {
    const raw = Buffer.from(
        'From: Carol <carol@example.org>\r\nSubject: deep\r\nMessage-ID: <deep@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b0"\r\n\r\n--b0\r\n...'
    );
    const note = await buildTooComplexNote({ raw, reason: 'MIME parts nested 151 levels deep; the limit is 100', account: 'alice@upstream.test', folder: 'INBOX', boundarySeed: 'seed' });
    const text = note.toString('utf8').replace(/=\r\n/g, '');
    const headers = text.slice(0, text.indexOf('\r\n\r\n'));
    assert.match(headers, /^Subject: deep$/m);
    assert.match(headers, /^Message-ID: <deep@example.org>$/m);
    assert.match(headers, new RegExp(`^X-Mailmule-Left-Upstream: too complex to store, original size ${raw.length}$`, 'm'));
    assert.doesNotMatch(headers, /boundary="b0"/, 'its own structure, not the original one');
    assert.match(text, /MIME parts nested 151 levels deep; the limit is 100\./);
    assert.match(text, /left on the server, untouched, in the folder "INBOX" of alice@upstream\.test/);
    const analysed = analyseMessage(note);
    assert.equal(analysed.messageId, '<deep@example.org>', 'found by its Message-ID like the original');
});
