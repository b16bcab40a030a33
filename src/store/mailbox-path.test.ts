/**
 * Unit tests for mailbox names as the store keeps them (normaliseMailboxPath, exported by the
 * store). Imported through the store's index, so the test does not depend on which file of the
 * store defines it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normaliseMailboxPath } from '.';

test('INBOX in any case is INBOX, and so is its prefix in a child (RFC 3501 5.1)', () => {
    assert.equal(normaliseMailboxPath('inbox'), 'INBOX');
    assert.equal(normaliseMailboxPath('InBoX'), 'INBOX');
    assert.equal(normaliseMailboxPath('inbox/Receipts'), 'INBOX/Receipts');
});

test('only INBOX itself is special: names that begin with it are kept as given', () => {
    assert.equal(normaliseMailboxPath('Inboxes'), 'Inboxes');
    assert.equal(normaliseMailboxPath('Archive/inbox'), 'Archive/inbox');
});

test('Unicode in NFC (RFC 5198), so the two spellings of é are one mailbox', () => {
    assert.equal(normaliseMailboxPath('Cafe\u0301'), 'Caf\u00e9');
    assert.equal(normaliseMailboxPath('Caf\u00e9'), 'Caf\u00e9');
});

test('empty, "." and ".." segments are refused, as are leading, trailing and doubled separators', () => {
    for (const name of ['', '/', '/Work', 'Work/', 'Work//2024', '.', '..', 'Work/./x', 'Work/../INBOX']) {
        assert.equal(normaliseMailboxPath(name), null, JSON.stringify(name));
    }
});

test('white space inside a segment is allowed, around it is not', () => {
    assert.equal(normaliseMailboxPath('Sent Items'), 'Sent Items');
    for (const name of [' Work', 'Work ', 'Work/ 2024', 'Work/\t2024']) {
        assert.equal(normaliseMailboxPath(name), null, JSON.stringify(name));
    }
});

test('control characters are refused; the length is capped at 512 characters', () => {
    for (const name of ['Work\u0000', 'Work\r\nA1 LOGOUT', 'Work\u001f', 'Work\u007f']) {
        assert.equal(normaliseMailboxPath(name), null, JSON.stringify(name));
    }
    assert.equal(normaliseMailboxPath('x'.repeat(512)), 'x'.repeat(512));
    assert.equal(normaliseMailboxPath('x'.repeat(513)), null);
});
