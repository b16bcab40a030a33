/** Unit tests for what the store derives from a raw message (src/store/mime.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyseMessage, crlfBody, hashRaw, normaliseMessageId, mimeDepth, DETACH_THRESHOLD, MAX_MIME_DEPTH, MessageTooComplexError, type MimeNode } from './mime';

const message = (...lines: string[]) => Buffer.from(lines.join('\r\n') + '\r\n');

const dateOf = (dateField: string) => {
    const analysed = analyseMessage(message(`Date: ${dateField}`, 'Subject: x', '', 'body'));
    return { sentDate: analysed.sentDate, sentDay: analysed.sentDay };
};

test('Date field: the moment in UTC, and the day it names in its own time zone (RFC 5322 A.1.1 example)', () => {
    assert.deepEqual(dateOf('Fri, 21 Nov 1997 09:55:06 -0600'), { sentDate: Date.UTC(1997, 10, 21, 15, 55, 6), sentDay: Date.UTC(1997, 10, 21) });
});

test("Date field: the day is the sender's, on either side of UTC midnight", () => {
    // 23:30 at -0500 is 04:30 the next day in UTC.
    assert.deepEqual(dateOf('Mon, 1 Jan 2024 23:30:00 -0500'), { sentDate: Date.UTC(2024, 0, 2, 4, 30), sentDay: Date.UTC(2024, 0, 1) });
    // 00:30 at +1400 is 10:30 the previous day in UTC.
    assert.deepEqual(dateOf('Sat, 1 Jan 2000 00:30:00 +1400'), { sentDate: Date.UTC(1999, 11, 31, 10, 30), sentDay: Date.UTC(2000, 0, 1) });
});

test('Date field: folded, with a trailing comment, before 1970 (RFC 5322 A.5 example)', () => {
    const analysed = analyseMessage(
        message(
            'From: Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>',
            'Subject: x',
            'Date: Thu,',
            '      13',
            '        Feb',
            '          1969',
            '      23:32',
            '               -0330 (Newfoundland Time)',
            '',
            'Testing.'
        )
    );
    assert.equal(analysed.sentDate, Date.UTC(1969, 1, 14, 3, 2));
    assert.equal(analysed.sentDay, Date.UTC(1969, 1, 13));
});

test('Date field: obsolete forms (RFC 5322 4.3): two-digit year, zone name', () => {
    assert.deepEqual(dateOf('21 Nov 97 09:55:06 GMT'), { sentDate: Date.UTC(1997, 10, 21, 9, 55, 6), sentDay: Date.UTC(1997, 10, 21) });
});

test('Date field: missing or unparsable is null (SORT and SEARCH fall back to the INTERNALDATE)', () => {
    assert.deepEqual(dateOf('yesterday, after lunch'), { sentDate: null, sentDay: null });
    const none = analyseMessage(message('Subject: no date', '', 'body'));
    assert.equal(none.sentDate, null);
    assert.equal(none.sentDay, null);
});

test('Message-ID: the <id> in canonical (lower-case) form; none when missing or blank', () => {
    assert.equal(analyseMessage(message('Message-ID: <1234.ABC@Example.ORG>', '', 'x')).messageId, '<1234.abc@example.org>');
    assert.equal(analyseMessage(message('Message-ID:   ', '', 'x')).messageId, null);
    assert.equal(analyseMessage(message('Subject: none', '', 'x')).messageId, null);
    assert.equal(normaliseMessageId('  <Id@Host>  (comment)'), '<id@host>');
    assert.equal(normaliseMessageId('bare-id@host '), '<bare-id@host>');
});

test('search headers: decoded encoded words, white space between adjacent ones dropped (RFC 2047 section 8 examples)', () => {
    const analysed = analyseMessage(message('Subject: =?ISO-8859-1?Q?Andr=E9?= Pirard', 'X-Pair: (=?ISO-8859-1?Q?a?=   =?ISO-8859-1?Q?b?=)', '', 'x'));
    const lines = analysed.searchHeaders.split('\n');
    assert.ok(lines.includes('subject: andré pirard'), analysed.searchHeaders);
    assert.ok(lines.includes('x-pair: (ab)'), analysed.searchHeaders);
});

test('search headers: an address written with comments is findable as user@domain (RFC 5322 3.4.1)', () => {
    const analysed = analyseMessage(message('From: Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>', 'Subject: x', '', 'x'));
    const from = analysed.searchHeaders.split('\n').find(line => line.startsWith('from: '));
    assert.ok(from?.includes('pete@silly.test'), from);
});

test('search body: the decoded text of the text parts, lower-cased', () => {
    const analysed = analyseMessage(message('Subject: x', 'MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: quoted-printable', '', 'Caf=C3=A9 =', 'AU LAIT'));
    assert.equal(analysed.searchBody.trim(), 'café au lait');
});

test('leaf bodies become byte ranges of the raw message, whatever their size; identical ones keep their own ranges', () => {
    const attachment = Buffer.alloc(DETACH_THRESHOLD + 100, 'A')
        .toString('base64')
        .replace(/.{76}/g, '$&\r\n');
    const part = (name: string) => [`--b`, `Content-Type: application/octet-stream; name=${name}`, 'Content-Transfer-Encoding: base64', '', attachment];
    const raw = message('Subject: x', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary=b', '', ...part('one'), ...part('two'), '--b', 'Content-Type: text/plain', '', 'small', '--b--');
    const tree = analyseMessage(raw).mimeTree;
    const [one, two, small] = tree.childNodes as MimeNode[];
    const range = (node: MimeNode) =>
        /^r:(\d+):(\d+)$/
            .exec(node.attachmentId ?? '')
            ?.slice(1)
            .map(Number);
    const [offsetOne, lengthOne] = range(one)!;
    const [offsetTwo, lengthTwo] = range(two)!;
    assert.equal(one.body, false);
    assert.ok(offsetTwo > offsetOne, 'the second copy has its own range');
    for (const [offset, length] of [
        [offsetOne, lengthOne],
        [offsetTwo, lengthTwo]
    ]) {
        assert.ok(
            raw
                .subarray(offset, offset + length)
                .toString('latin1')
                .startsWith(attachment.slice(0, 76))
        );
    }
    const [offsetSmall, lengthSmall] = range(small)!;
    assert.equal(raw.subarray(offsetSmall, offsetSmall + lengthSmall).toString('latin1'), 'small');
    assert.equal(small.body, false);
});

/** Every leaf body of imap-core's own tree, in tree order. */
function leafBodies(node: MimeNode, out: Buffer[] = []): Buffer[] {
    if (!node.childNodes?.length && !node.message && Buffer.isBuffer(node.body) && node.body.length) out.push(node.body);
    node.childNodes?.forEach(child => leafBodies(child, out));
    if (node.message) leafBodies(node.message, out);
    return out;
}

/** Every leaf body of a stored tree, read back through its reference as FETCH does (on-fetch.ts attachmentStorage). */
function storedBodies(node: MimeNode, raw: Buffer, out: Buffer[] = []): Buffer[] {
    if (!node.childNodes?.length && !node.message) {
        const reference = /^r:(\d+):(\d+)(:c)?$/.exec(node.attachmentId ?? '');
        if (reference) {
            const bytes = raw.subarray(Number(reference[1]), Number(reference[1]) + Number(reference[2]));
            out.push(reference[3] ? crlfBody(bytes) : bytes);
        } else if (Buffer.isBuffer(node.body) && node.body.length) out.push(node.body);
    }
    node.childNodes?.forEach(child => storedBodies(child, raw, out));
    if (node.message) storedBodies(node.message, raw, out);
    return out;
}

test('every stored body reads back as imap-core parsed it: CRLF and LF line ends, nested messages, digests, preambles', () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const parse = require('@zone-eu/wildduck/imap-core/lib/indexer/parse-mime-tree') as (raw: Buffer) => MimeNode;
    const inner = [
        'From: a@x',
        'Subject: inner',
        'Content-Type: multipart/alternative; boundary=in',
        '',
        'inner preamble',
        '--in',
        'Content-Type: text/plain',
        '',
        'inner text',
        '',
        '--in',
        'Content-Type: text/html',
        '',
        '<p>inner</p>',
        '--in--',
        'inner epilogue'
    ];
    const forward = [
        'Subject: fwd',
        'Content-Type: multipart/mixed; boundary=out',
        '',
        'preamble',
        '',
        '--out',
        'Content-Type: text/plain',
        '',
        'see below',
        '--out',
        'Content-Type: message/rfc822',
        '',
        ...inner,
        '--out--',
        'epilogue'
    ];
    const digest = ['Subject: d', 'Content-Type: multipart/digest; boundary=d', '', '--d', '', 'Subject: m1', '', 'm1 body', '--d', '', 'Subject: m2', '', 'm2 body', '--d--'];
    const bodyOnly = ['Content-Type: message/rfc822', '', 'Subject: in', '', 'text', ''];
    const binary = ['Content-Type: application/octet-stream', 'Content-Transfer-Encoding: binary', '', 'a\nb\r\nc'];
    for (const lines of [forward, digest, bodyOnly, binary, ['Subject: empty', '', '']]) {
        for (const lineBreak of ['\r\n', '\n']) {
            const raw = Buffer.from(lines.join(lineBreak) + lineBreak, 'latin1');
            const expected = leafBodies(parse(raw));
            const tree = analyseMessage(raw).mimeTree;
            assert.deepEqual(storedBodies(tree, raw), expected, JSON.stringify(lines.join(lineBreak)));
        }
    }
});

test('a multipart without parts is described as the text it is (IMAP BODYSTRUCTURE needs at least one part)', () => {
    const analysed = analyseMessage(message('Subject: x', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary=never-used', '', 'Just text, no boundary.'));
    assert.equal(String(analysed.bodystructure[0]).toLowerCase(), 'text');
    assert.equal(String(analysed.bodystructure[1]).toLowerCase(), 'plain');
    assert.ok(analysed.searchBody.includes('just text'));
});

test('hash and size: SHA-256 of the exact bytes', () => {
    assert.equal(hashRaw(Buffer.alloc(0)), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    const raw = message('Subject: x', '', 'body');
    const analysed = analyseMessage(raw);
    assert.equal(analysed.size, raw.length);
    assert.equal(analysed.hash, hashRaw(raw));
    assert.notEqual(analyseMessage(message('Subject: x', '', 'body ')).hash, analysed.hash);
});

test('MIME nesting: message/rfc822 levels count as multipart ones do; past MAX_MIME_DEPTH the message is too complex', () => {
    // A message forwarded as an attachment `levels - 1` times: every level is one more part.
    const forwarded = (levels: number) => {
        let raw = 'Subject: bottom\r\n\r\ntext\r\n';
        for (let level = 1; level < levels; level++) raw = `Subject: level ${level}\r\nMIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\n${raw}`;
        return Buffer.from(raw);
    };
    assert.equal(mimeDepth(analyseMessage(forwarded(3)).mimeTree), 3);
    assert.equal(mimeDepth(analyseMessage(forwarded(MAX_MIME_DEPTH)).mimeTree), MAX_MIME_DEPTH);
    assert.throws(() => analyseMessage(forwarded(MAX_MIME_DEPTH + 1)), MessageTooComplexError);
});
