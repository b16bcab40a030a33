/** Unit tests for the flags the store keeps (src/store/flags.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalFlags, isSystemFlag } from './flags';

test('system flags in their canonical spelling, whatever case the client sent', () => {
    assert.deepEqual(canonicalFlags(['\\SEEN', '\\answered', '\\fLaGgEd', '\\DELETED', '\\draft']), ['\\Seen', '\\Answered', '\\Flagged', '\\Deleted', '\\Draft']);
});

test('keywords are kept as given: case, order, and characters other than the backslash', () => {
    assert.deepEqual(canonicalFlags(['$Forwarded', 'Work', '$MDNSent', 'x.y-z']), ['$Forwarded', 'Work', '$MDNSent', 'x.y-z']);
});

test('duplicates go, compared case-insensitively; the first spelling of a keyword wins', () => {
    assert.deepEqual(canonicalFlags(['Work', '\\Seen', 'WORK', '\\seen', 'work']), ['Work', '\\Seen']);
});

test('\\Recent is never stored: the server sets it per session (RFC 3501 2.3.2), a client cannot', () => {
    assert.deepEqual(canonicalFlags(['\\Recent', '\\RECENT', '\\Seen']), ['\\Seen']);
});

test('an unknown system flag is dropped, not stored as a keyword (RFC 3501 7.1: only \\* allows new keywords)', () => {
    assert.deepEqual(canonicalFlags(['\\Important', '\\*', '\\', 'Important']), ['Important']);
});

test('blank entries are dropped and surrounding white space trimmed', () => {
    assert.deepEqual(canonicalFlags(['', '   ', ' \\Seen ', '\tWork\t']), ['\\Seen', 'Work']);
    assert.deepEqual(canonicalFlags([]), []);
});

test('isSystemFlag: a leading backslash, nothing else', () => {
    assert.equal(isSystemFlag('\\Seen'), true);
    assert.equal(isSystemFlag('\\Whatever'), true);
    assert.equal(isSystemFlag('$Junk'), false);
    assert.equal(isSystemFlag('Seen'), false);
});
