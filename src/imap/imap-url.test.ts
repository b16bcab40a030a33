/** Unit tests for the CATENATE URL parser (imap-url.ts; RFC 4469 section 5, RFC 5092). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseImapUrl, parseSection } from './imap-url';

test('a message, with and without UIDVALIDITY; keys in any case', () => {
    assert.deepEqual(parseImapUrl('/INBOX/;uid=1'), { mailbox: 'INBOX', uid: 1 });
    assert.deepEqual(parseImapUrl('/INBOX;UIDVALIDITY=785799047/;UID=113330'), { mailbox: 'INBOX', uidValidity: 785799047, uid: 113330 });
    assert.deepEqual(parseImapUrl('/inbox;uidValidity=7/;Uid=2'), { mailbox: 'INBOX', uidValidity: 7, uid: 2 });
});

test('sections and partial ranges, as FETCH BODY[section]<partial> takes them', () => {
    assert.deepEqual(parseImapUrl('/INBOX/;uid=1/;section=header'), { mailbox: 'INBOX', uid: 1, section: { path: '', type: 'header' } });
    assert.deepEqual(parseImapUrl('/INBOX/;uid=1/;section=TEXT'), { mailbox: 'INBOX', uid: 1, section: { path: '', type: 'text' } });
    assert.deepEqual(parseImapUrl('/INBOX/;uid=1/;section=1'), { mailbox: 'INBOX', uid: 1, section: { path: '1', type: 'content' } });
    assert.deepEqual(parseImapUrl('/INBOX/;uid=1/;section=1.5.9'), { mailbox: 'INBOX', uid: 1, section: { path: '1.5.9', type: 'content' } });
    assert.deepEqual(parseImapUrl('/INBOX/;uid=1/;section=2.MIME'), { mailbox: 'INBOX', uid: 1, section: { path: '2', type: 'mime' } });
    assert.deepEqual(parseImapUrl('/INBOX/;uid=1/;section=1.2.header'), { mailbox: 'INBOX', uid: 1, section: { path: '1.2', type: 'header' } });
    assert.deepEqual(parseImapUrl('/INBOX/;uid=1/;section=HEADER.FIELDS%20(From%20%22X-Y%22)'), {
        mailbox: 'INBOX',
        uid: 1,
        section: { path: '', type: 'header.fields', headers: ['from', 'x-y'] }
    });
    assert.deepEqual(parseImapUrl('/INBOX/;uid=1/;section=1.HEADER.FIELDS.NOT%20(Subject)')?.section, { path: '1', type: 'header.fields.not', headers: ['subject'] });
    assert.deepEqual(parseImapUrl('/INBOX/;uid=2/;partial=100000.1'), { mailbox: 'INBOX', uid: 2, partial: { offset: 100000, length: 1 } });
    assert.deepEqual(parseImapUrl('/INBOX/;uid=2/;section=text/;partial=0'), { mailbox: 'INBOX', uid: 2, section: { path: '', type: 'text' }, partial: { offset: 0 } });
});

test('mailbox names: hierarchy, percent-encoded UTF-8, INBOX prefix', () => {
    assert.equal(parseImapUrl('/Archive/2024/;uid=3')?.mailbox, 'Archive/2024');
    assert.equal(parseImapUrl('/Entw%C3%BCrfe;uidvalidity=1/;uid=3')?.mailbox, 'Entwürfe');
    assert.equal(parseImapUrl('/a%3Bb/;uid=3')?.mailbox, 'a;b');
    assert.equal(parseImapUrl('/inbox/sub/;uid=3')?.mailbox, 'INBOX/sub');
    assert.equal(parseImapUrl('/inboxes/;uid=3')?.mailbox, 'inboxes');
});

test('what is not resolved: other servers and users, URLAUTH, malformed parts', () => {
    for (const url of [
        'imap://alice@localhost/INBOX/;uid=1',
        '//localhost/INBOX/;uid=1',
        'INBOX/;uid=1',
        '/INBOX',
        '/INBOX/',
        '/;uid=1',
        '/INBOX/;uid=0',
        '/INBOX/;uid=01',
        '/INBOX/;uid=4294967296',
        '/INBOX/;uid=x',
        '/INBOX;uidvalidity=0/;uid=1',
        '/INBOX;uidvalidity=/;uid=1',
        '/INBOX;foo=1/;uid=1',
        '/INBOX/;uid=1/;section=',
        '/INBOX/;uid=1/;section=MIME',
        '/INBOX/;uid=1/;section=0',
        '/INBOX/;uid=1/;section=1.BOGUS',
        '/INBOX/;uid=1/;section=HEADER.FIELDS%20()',
        '/INBOX/;uid=1/;section=HEADER.FIELDS',
        '/INBOX/;uid=1/;partial=1.0',
        '/INBOX/;uid=1/;partial=-1',
        '/INBOX/;uid=1/;partial=1/;section=1',
        '/INBOX/;uid=1/;section=1/;section=2',
        '/INBOX/;uid=1;urlauth=anonymous:internal:abc',
        '/INBOX/;uid=1/;expire=2030-01-01T00:00:00Z',
        '/IN BOX/;uid=1',
        '/INBOX%/;uid=1',
        '/%FF/;uid=1'
    ]) {
        assert.equal(parseImapUrl(url), null, url);
    }
});

test('section-spec on its own', () => {
    assert.deepEqual(parseSection('1.2.3.TEXT'), { path: '1.2.3', type: 'text' });
    assert.equal(parseSection('1TEXT'), null);
    assert.equal(parseSection('1..2'), null);
    assert.equal(parseSection('.TEXT'), null);
    assert.equal(parseSection('TEXT.1'), null);
});
