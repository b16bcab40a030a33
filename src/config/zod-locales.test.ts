/**
 * patches/zod+4.6.7+001+lazy-locales.patch: zod's translations load on first use of `locales`, not
 * with zod (about half of `require('zod')`, paid by every `mailmule` command that reads the config).
 * English messages, which the config errors quote, and the other languages on demand still work.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';

const loaded = (file: string) => Object.keys(require.cache).some(name => name.endsWith(file));

test('zod loads without its translations, and English messages still come from en.cjs', () => {
    assert.equal(loaded('/zod/v4/locales/index.cjs'), false, 'zod loaded locales/index.cjs with itself: is the patch applied?');
    assert.equal(loaded('/zod/v4/locales/en.cjs'), true);
    assert.equal(z.string().safeParse(1).error?.issues[0].message, 'Invalid input: expected string, received number');
});

test('z.locales still holds every translation, loaded on first use', () => {
    assert.equal(typeof z.locales.de, 'function');
    assert.equal(loaded('/zod/v4/locales/index.cjs'), true);
    z.config(z.locales.de());
    try {
        assert.match(z.string().safeParse(1).error?.issues[0].message ?? '', /^Ungültige Eingabe/);
    } finally {
        z.config(z.locales.en());
    }
    assert.equal(z.string().safeParse(1).error?.issues[0].message, 'Invalid input: expected string, received number');
});
