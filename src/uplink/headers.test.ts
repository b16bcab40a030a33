import { test } from 'node:test';
import assert from 'node:assert/strict';
import { takeClosest } from './headers';

test('takeClosest: the same size first, then the closest date; taken out of the candidates', () => {
    const candidates = [
        { id: 'a', size: 900, idate: 1000 },
        { id: 'b', size: 1000, idate: 5000 },
        { id: 'c', size: 1000, idate: 1500 }
    ];
    assert.equal(takeClosest(candidates, 1000, 1000)?.id, 'c');
    assert.equal(takeClosest(candidates, 1000, 1000)?.id, 'b');
    assert.equal(takeClosest(candidates, 1000, 1000)?.id, 'a', 'a different size still matches when nothing better is left');
    assert.equal(takeClosest(candidates, 1000, 1000), undefined);
});

test('takeClosest: among different sizes, the closest date', () => {
    const candidates = [
        { id: 'far', size: 1, idate: 0 },
        { id: 'near', size: 2, idate: 990 }
    ];
    assert.equal(takeClosest(candidates, 3, 1000)?.id, 'near');
});
