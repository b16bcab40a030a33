/** Unit tests for the UID sets of COPYUID and MOVE's answers (packUids in src/imap/on-move.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { packUids } from './on-move';

test('ascending runs become ranges', () => {
    assert.equal(packUids([1, 2, 3, 7, 9, 10]), '1:3,7,9:10');
    assert.equal(packUids([4294967294, 4294967295]), '4294967294:4294967295');
});

test('the order is kept: COPYUID pairs source and destination UIDs by position (RFC 4315 3)', () => {
    assert.equal(packUids([5, 4, 3]), '5,4,3');
    assert.equal(packUids([7, 8, 1, 2]), '7:8,1:2');
});

test('one UID, none, repeats', () => {
    assert.equal(packUids([42]), '42');
    assert.equal(packUids([]), '');
    assert.equal(packUids([3, 3]), '3,3');
});
