import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runLimit, startOfDay } from './budget';

test('runLimit: the smaller of perRun and what is left of perDay; 0 means no such budget', () => {
    assert.equal(runLimit(0, 0, 123), Infinity);
    assert.equal(runLimit(1000, 0, 5000), 1000);
    assert.equal(runLimit(0, 5000, 1200), 3800);
    assert.equal(runLimit(1000, 5000, 1200), 1000);
    assert.equal(runLimit(1000, 5000, 4500), 500);
});

test('runLimit: 0 once the day\'s budget is spent, never negative', () => {
    assert.equal(runLimit(1000, 5000, 5000), 0);
    assert.equal(runLimit(0, 5000, 7000), 0);
});

test('startOfDay: local midnight of the given day', () => {
    const noon = new Date(2026, 2, 14, 12, 30, 5, 9);
    assert.equal(startOfDay(noon), new Date(2026, 2, 14).getTime());
    assert.equal(startOfDay(new Date(2026, 2, 14)), new Date(2026, 2, 14).getTime());
});
