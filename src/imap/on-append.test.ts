/** Unit tests for APPEND's date-time argument (parseImapDateTime in src/imap/on-append.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseImapDateTime } from './on-append';

test('the RFC 3501 example: "17-Jul-1996 02:44:25 -0700" is 09:44:25 UTC', () => {
    assert.equal(parseImapDateTime('17-Jul-1996 02:44:25 -0700'), Date.UTC(1996, 6, 17, 9, 44, 25));
});

test('date-day-fixed: a one-digit day may be written with a leading space (RFC 3501 9)', () => {
    assert.equal(parseImapDateTime(' 7-Jul-1996 02:44:25 +0000'), Date.UTC(1996, 6, 7, 2, 44, 25));
    assert.equal(parseImapDateTime('07-Jul-1996 02:44:25 +0000'), Date.UTC(1996, 6, 7, 2, 44, 25));
});

test('the zone moves the moment across midnight and the year, either way', () => {
    assert.equal(parseImapDateTime('01-Jan-2000 00:30:00 +0100'), Date.UTC(1999, 11, 31, 23, 30));
    assert.equal(parseImapDateTime('31-Dec-1999 23:30:00 -0130'), Date.UTC(2000, 0, 1, 1, 0));
    assert.equal(parseImapDateTime('29-Feb-2024 12:00:00 -0000'), Date.UTC(2024, 1, 29, 12));
});

test('month names in any case', () => {
    assert.equal(parseImapDateTime('17-JUL-1996 02:44:25 -0700'), parseImapDateTime('17-jul-1996 02:44:25 -0700'));
});

test('anything else is null (the message then gets the time of arrival)', () => {
    for (const value of ['17-Foo-1996 02:44:25 -0700', '17-Jul-1996 02:44:25', '17-Jul-1996 2:44:25 -0700', '1996-07-17T02:44:25Z', '17-Jul-96 02:44:25 -0700', '', null, undefined, 0]) {
        assert.equal(parseImapDateTime(value), null, String(value));
    }
});
