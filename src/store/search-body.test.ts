/** searchBodyText (src/store/search-body.ts) gives the text imap-core's getMaildata gives, on real mail and on the shapes its walk treats apart. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Indexer from '@zone-eu/wildduck/imap-core/lib/indexer/indexer';
import { corpusGroup } from '../../test/support/fixtures/spam-assassin';
import { searchBodyText } from './search-body';
import type { MimeNode } from './mime';

const indexer = new Indexer({});

/** The text as the store made it before: getMaildata's, '' when it throws (on its own parse: getMaildata detaches bodies). */
function maildataText(raw: Buffer): string {
    try {
        return String((indexer.getMaildata(indexer.parseMimeTree(raw) as MimeNode) as { text?: string }).text || '');
    } catch {
        return '';
    }
}

function bodyText(raw: Buffer): string {
    try {
        return searchBodyText(indexer.parseMimeTree(raw) as MimeNode);
    } catch {
        return '';
    }
}

const message = (...lines: string[]) => Buffer.from(lines.join('\r\n') + '\r\n');

const SHAPES: Record<string, Buffer> = {
    'no Content-Type': message('Subject: plain', '', 'Just text, no header saying so.'),
    'HTML alone': message('Content-Type: text/html; charset=utf-8', '', '<p>Hello <b>world</b></p><table><tr><td>a</td><td>b</td></tr></table>'),
    'alternative (HTML not converted)': message(
        'Content-Type: multipart/alternative; boundary=b',
        '',
        '--b',
        'Content-Type: text/plain',
        '',
        'plain side',
        '--b',
        'Content-Type: text/html',
        '',
        '<p>html side</p>',
        '--b--'
    ),
    'flowed with DelSp': message('Content-Type: text/plain; format=flowed; delsp=yes', '', 'a long line that was  ', 'wrapped by the sender'),
    'base64 in latin-1': message('Content-Type: text/plain; charset=ISO-8859-1', 'Content-Transfer-Encoding: base64', '', Buffer.from('Grüße aus Köln', 'latin1').toString('base64')),
    'quoted-printable, UTF-8 spelled upper-case': message('Content-Type: text/plain; charset=UTF-8', 'Content-Transfer-Encoding: quoted-printable', '', 'caf=C3=A9 cr=C3=A8me'),
    'cid: link to an inline image': message(
        'Content-Type: multipart/related; boundary=r',
        '',
        '--r',
        'Content-Type: text/html',
        '',
        '<p>see <img src="cid:logo@x"> and cid:other@x</p>',
        '--r',
        'Content-Type: image/png',
        'Content-ID: <logo@x>',
        'Content-Transfer-Encoding: base64',
        '',
        'iVBORw0KGgo=',
        '--r--'
    ),
    'forwarded messages, single-part and multipart': message(
        'Content-Type: multipart/mixed; boundary=m',
        '',
        '--m',
        'Content-Type: text/plain',
        '',
        'outer text',
        '--m',
        'Content-Type: message/rfc822',
        '',
        'Subject: inner single',
        '',
        'inner single-part text',
        '--m',
        'Content-Type: message/rfc822',
        '',
        'Subject: inner multi',
        'Content-Type: multipart/mixed; boundary=i',
        '',
        '--i',
        'Content-Type: text/plain',
        '',
        'inner multipart text',
        '--i--',
        '--m--'
    ),
    'delivery report': message(
        'Content-Type: multipart/report; report-type=delivery-status; boundary=d',
        '',
        '--d',
        'Content-Type: text/plain',
        '',
        'could not deliver',
        '--d',
        'Content-Type: message/delivery-status',
        '',
        'Action: failed',
        'Status: 5.1.1',
        '--d',
        'Content-Type: text/rfc822-headers',
        '',
        'Subject: the original',
        '--d--'
    ),
    'text attachment': message(
        'Content-Type: multipart/mixed; boundary=a',
        '',
        '--a',
        'Content-Type: text/plain',
        '',
        'the letter',
        '--a',
        'Content-Type: text/plain; name=notes.txt',
        'Content-Disposition: attachment; filename=notes.txt',
        '',
        'not searched as body',
        '--a--'
    ),
    'text part over 300 KB with a Content-ID': message(
        'Content-Type: multipart/mixed; boundary=l',
        '',
        '--l',
        'Content-Type: text/plain',
        '',
        'refers to cid:big@x',
        '--l',
        'Content-Type: text/plain',
        'Content-ID: <big@x>',
        '',
        'word '.repeat(70_000),
        '--l--'
    )
};

test('searchBodyText: the same text as getMaildata for each shape its walk treats apart', () => {
    for (const [name, raw] of Object.entries(SHAPES)) assert.equal(bodyText(raw), maildataText(raw), name);
    // The comparison means something: these shapes do have text, and the quirks are getMaildata's.
    assert.doesNotMatch(bodyText(SHAPES['forwarded messages, single-part and multipart']), /inner single-part/);
    assert.match(bodyText(SHAPES['HTML alone']), /hello world/i);
});

test('searchBodyText: the same text as getMaildata on 1,000 real messages (SpamAssassin hard-ham-1: HTML, charsets, attachments)', () => {
    const messages = corpusGroup('hard-ham-1').slice(0, 500).concat(corpusGroup('easy-ham-1').slice(0, 500));
    let differing = 0;
    for (const raw of messages) if (bodyText(raw) !== maildataText(raw)) differing++;
    assert.equal(differing, 0);
});
