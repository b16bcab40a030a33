/** Unit tests for the charset check of SEARCH, SORT and THREAD (isUnsupportedCharset in src/imap/on-search.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isUnsupportedCharset } from './on-search';

test('US-ASCII and UTF-8 are supported (RFC 5256 3 requires both), in any case', () => {
    assert.equal(isUnsupportedCharset([{ key: 'charset', value: 'UTF-8' }, { key: 'all' }]), false);
    assert.equal(isUnsupportedCharset([{ key: 'charset', value: 'us-ascii' }]), false);
});

test('other charsets a decoder exists for are supported', () => {
    assert.equal(isUnsupportedCharset([{ key: 'charset', value: 'ISO-8859-1' }]), false);
    assert.equal(isUnsupportedCharset([{ key: 'charset', value: 'windows-1252' }]), false);
});

test('an unknown charset is unsupported (NO [BADCHARSET])', () => {
    assert.equal(isUnsupportedCharset([{ key: 'charset', value: 'X-NO-SUCH-CHARSET' }]), true);
});

test('no charset named: nothing to refuse', () => {
    assert.equal(isUnsupportedCharset([{ key: 'all' }]), false);
    assert.equal(isUnsupportedCharset([]), false);
});
