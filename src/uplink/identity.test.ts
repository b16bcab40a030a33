import { test } from 'node:test';
import assert from 'node:assert/strict';
import { upstreamKey } from './identity';

const caps = (...names: string[]) => new Set(names);
const facts = { emailId: '1278455344230334865', messageId: '<a@example.org>', size: 1234, idate: 1_700_000_000_000 };

test('upstreamKey: X-GM-MSGID when the server offers X-GM-EXT-1 (Gmail), whatever the Message-ID says', () => {
    assert.equal(upstreamKey(caps('IMAP4REV1', 'X-GM-EXT-1'), facts), 'gm 1278455344230334865');
    // A label copy differs in nothing Gmail cares about: same id, same key.
    assert.equal(upstreamKey(caps('X-GM-EXT-1'), { ...facts, messageId: null, size: 1 }), 'gm 1278455344230334865');
});

test('upstreamKey: EMAILID under OBJECTID (RFC 8474), which imapflow prefers when both are offered', () => {
    assert.equal(upstreamKey(caps('OBJECTID'), facts), 'emailid 1278455344230334865');
    assert.equal(upstreamKey(caps('OBJECTID', 'X-GM-EXT-1'), facts), 'emailid 1278455344230334865');
});

test('upstreamKey: without a server id, Message-ID with size and date; an id the server did not vouch for is ignored', () => {
    assert.equal(upstreamKey(caps('IMAP4REV1'), facts), 'mid <a@example.org> 1234 1700000000000');
    assert.equal(upstreamKey(caps(), { ...facts, emailId: undefined }), 'mid <a@example.org> 1234 1700000000000');
    // Same Message-ID, other size or date: another message (an edited draft, a resend).
    assert.notEqual(upstreamKey(caps(), { ...facts, size: 1235 }), upstreamKey(caps(), facts));
    assert.notEqual(upstreamKey(caps(), { ...facts, idate: facts.idate + 1000 }), upstreamKey(caps(), facts));
});

test('upstreamKey: nothing to go by, no identity (such a message is always downloaded)', () => {
    assert.equal(upstreamKey(caps(), { ...facts, emailId: null, messageId: null }), null);
    assert.equal(upstreamKey(caps('X-GM-EXT-1'), { ...facts, emailId: null, messageId: null }), null);
});

test('upstreamKey: the Message-ID form matches what schema migration 8 writes for older rows', () => {
    // 'mid ' || message_id || ' ' || size || ' ' || idate
    const { messageId, size, idate } = facts;
    assert.equal(upstreamKey(caps(), { messageId, size, idate }), `mid ${messageId} ${size} ${idate}`);
});
