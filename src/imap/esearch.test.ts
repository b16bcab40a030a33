/** Unit tests for imap-core's ESEARCH/ESORT result compiling (patch 050, lib/esearch.js). */
import { test } from 'node:test';
import assert from 'node:assert/strict';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const esearch = require('@zone-eu/wildduck/imap-core/lib/esearch.js');

const atom = (value: string) => ({ type: 'ATOM', value });

test('sequence sets: ascending runs become ranges, in the given order', () => {
    assert.equal(esearch.compileSequenceSet([1, 2, 3, 5, 7, 8]), '1:3,5,7:8');
    assert.equal(esearch.compileSequenceSet([5, 3, 4, 2, 1]), '5,3:4,2,1');
    assert.equal(esearch.compileSequenceSet([]), '');
});

test('RETURN options: none, empty (= ALL), several, unknown', () => {
    assert.deepEqual(esearch.parseReturnOptions([atom('ALL')]), { returnOptions: null, attributes: [atom('ALL')] });
    assert.deepEqual(esearch.parseReturnOptions([atom('RETURN'), [], atom('ALL')]).returnOptions, ['ALL']);
    assert.deepEqual(esearch.parseReturnOptions([atom('return'), [atom('min'), atom('COUNT')], atom('SEEN')]), { returnOptions: ['MIN', 'COUNT'], attributes: [atom('SEEN')] });
    assert.throws(() => esearch.parseReturnOptions([atom('RETURN'), [atom('SAVE')]]), /SAVE/);
    assert.throws(() => esearch.parseReturnOptions([atom('RETURN'), atom('ALL')]), /RETURN/);
});

test('the ESEARCH line, and MODSEQ of just the reported messages', () => {
    assert.equal(
        esearch.formatEsearch({ tag: 'A1', isUid: true, returnOptions: ['MIN', 'MAX', 'COUNT', 'ALL'], numbers: [4, 5, 9], modseq: 0 }),
        '* ESEARCH (TAG "A1") UID MIN 4 MAX 9 COUNT 3 ALL 4:5,9'
    );
    assert.equal(esearch.formatEsearch({ tag: 'A2', isUid: false, returnOptions: ['MIN', 'ALL'], numbers: [], modseq: 0 }), '* ESEARCH (TAG "A2")');
    assert.equal(esearch.formatEsearch({ tag: 'A3', isUid: false, returnOptions: ['COUNT'], numbers: [], modseq: 0 }), '* ESEARCH (TAG "A3") COUNT 0');
    const modseqs = new Map([
        [1, 10],
        [2, 30],
        [3, 20]
    ]);
    assert.equal(esearch.reportedModseq(['MIN'], [1, 2, 3], 30, modseqs), 10);
    assert.equal(esearch.reportedModseq(['MIN', 'MAX'], [1, 2, 3], 30, modseqs), 20);
    assert.equal(esearch.reportedModseq(['COUNT'], [1, 2, 3], 30, modseqs), 30);
    assert.equal(esearch.reportedModseq(['MIN'], [], 30, modseqs), 0);
});
