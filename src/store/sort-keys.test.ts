/** Unit tests for SORT's keys and ordering (src/store/sort-keys.ts, src/store/sort.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyseMessage } from './mime';
import { addressKey, baseSubject, displayKey, headerValue, messageIds, referenceChain } from './sort-keys';
import { sortUids, type SortRecord } from './sort';

test('base subject (RFC 5256 section 2.1)', () => {
    const cases: [string, string, boolean][] = [
        ['Lunch', 'LUNCH', false],
        ['Re: Lunch', 'LUNCH', true],
        ['RE:   re: Lunch  ', 'LUNCH', true],
        ['Fw: Lunch', 'LUNCH', true],
        ['Lunch (fwd)', 'LUNCH', true],
        ['[club] Lunch', 'LUNCH', false],
        ['[club]', '[CLUB]', false],
        ['[foo] Fwd: [bar] Re: fw: b (fWd)  (fwd)', 'B', true],
        ['Re: [FWD: c]', 'C', true],
        ['re: [fwd: [fwd: re: [fwd: babylon]]]', 'BABYLON', true],
        ['Ad: Re: Ad: Re: Ad: x', 'AD: RE: AD: RE: AD: X', false],
        ['b (a)', 'B (A)', false],
        ['Re:\tmulti\t\tspace', 'MULTI SPACE', true],
        ['', '', false]
    ];
    for (const [subject, base, isReply] of cases) {
        assert.deepEqual(baseSubject(subject), { base, isReply }, subject);
    }
});

function envelopeOf(headers: string): unknown[] {
    return analyseMessage(Buffer.from(`${headers}\r\nSubject: x\r\n\r\nbody\r\n`)).envelope;
}

test('address keys: addr-mailbox of the first address; groups by their name', () => {
    assert.equal(addressKey(envelopeOf('From: Foo Bar <User2@domain2.org>, a@b.c'), 'from'), 'user2');
    assert.equal(addressKey(envelopeOf('Cc: user2: blah@domain1.org;'), 'cc'), 'user2');
    assert.equal(addressKey(envelopeOf('To: x@y.z'), 'cc'), '');
});

test('display keys (RFC 5957): decoded display name, else addr-spec, else the group name', () => {
    assert.equal(displayKey(envelopeOf('From: =?iso-8859-1?q?foo_aar?= <e@f.g>'), 'from'), 'foo aar');
    assert.equal(displayKey(envelopeOf('From: B@C.d'), 'from'), 'b@c.d');
    assert.equal(displayKey(envelopeOf('To: a: xx@xx.org, yy@yy.org;'), 'to'), 'a');
    assert.equal(displayKey(envelopeOf('To: empty:;'), 'to'), 'empty');
});

test('header values: the first field of that whole name, any case, unfolded', () => {
    const lines = ['Subject-Extra: no', 'SUBJECT: first\r\n\tsecond line', 'Subject: later'];
    assert.equal(headerValue(lines, 'subject'), 'first second line');
    assert.equal(headerValue(lines, 'Subject-Extra'), 'no');
    assert.equal(headerValue(lines, 'subj'), null);
    assert.equal(headerValue([], 'subject'), null);
});

test('message-ids in a field: each <id> as written, text and empty <> between them ignored', () => {
    assert.deepEqual(messageIds('<a@b> (comment) <C@D>'), ['<a@b>', '<C@D>']);
    assert.deepEqual(messageIds('Your message of Monday <x@y>'), ['<x@y>']);
    assert.deepEqual(messageIds('<> <a@b>'), ['<a@b>']);
    assert.deepEqual(messageIds('no ids here'), []);
    assert.deepEqual(messageIds(null), []);
});

test('reference chain: References, else the first In-Reply-To id', () => {
    assert.deepEqual(referenceChain(['References: <a@b>\r\n <c@b>', 'In-Reply-To: <x@y>']), ['<a@b>', '<c@b>']);
    assert.deepEqual(referenceChain(['In-Reply-To: <x@y> <z@y>']), ['<x@y>']);
    assert.deepEqual(referenceChain(['Subject: none']), []);
});

function record(uid: number, fields: Partial<SortRecord> & { from?: string } = {}): SortRecord {
    return { uid, idate: fields.idate ?? 0, size: fields.size ?? 0, sentDate: fields.sentDate ?? null, envelope: envelopeOf(`From: ${fields.from ?? 'a@b.c'}`) };
}

test('sortUids: REVERSE flips a key, ties stay in sequence order, DATE falls back to INTERNALDATE', () => {
    const records = [record(1, { size: 20, sentDate: 300 }), record(2, { size: 10, idate: 100 }), record(3, { size: 20, sentDate: 200 }), record(4, { size: 10, sentDate: 100 })];
    assert.deepEqual(sortUids(records, [{ key: 'size', reverse: false }]), [2, 4, 1, 3]);
    assert.deepEqual(sortUids(records, [{ key: 'size', reverse: true }]), [1, 3, 2, 4]);
    assert.deepEqual(sortUids(records, [{ key: 'date', reverse: false }]), [2, 4, 3, 1]);
    assert.deepEqual(
        sortUids(records, [
            { key: 'size', reverse: true },
            { key: 'date', reverse: false }
        ]),
        [3, 1, 2, 4]
    );
    const named = [record(1, { from: 'zed <z@x>' }), record(2, { from: 'Amy <y@x>' }), record(3, { from: 'amy@x' })];
    assert.deepEqual(sortUids(named, [{ key: 'displayfrom', reverse: false }]), [2, 3, 1]);
    assert.deepEqual(sortUids(named, [{ key: 'from', reverse: false }]), [3, 2, 1]);
});
