import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runLimit, startOfDay, WireCost } from './budget';

test('runLimit: the smaller of perRun and what is left of perDay; 0 means no such budget', () => {
    assert.equal(runLimit(0, 0, 123), Infinity);
    assert.equal(runLimit(1000, 0, 5000), 1000);
    assert.equal(runLimit(0, 5000, 1200), 3800);
    assert.equal(runLimit(1000, 5000, 1200), 1000);
    assert.equal(runLimit(1000, 5000, 4500), 500);
});

test("runLimit: 0 once the day's budget is spent, never negative", () => {
    assert.equal(runLimit(1000, 5000, 5000), 0);
    assert.equal(runLimit(0, 5000, 7000), 0);
});

test('startOfDay: local midnight of the given day', () => {
    const noon = new Date(2026, 2, 14, 12, 30, 5, 9);
    assert.equal(startOfDay(noon), new Date(2026, 2, 14).getTime());
    assert.equal(startOfDay(new Date(2026, 2, 14)), new Date(2026, 2, 14).getTime());
});

test('WireCost: the raw size until a batch was measured (deflate never shrinks what it has not seen)', () => {
    const cost = new WireCost();
    assert.equal(cost.estimate(10_000), 10_000);
    cost.record(0, 500); // nothing arrived: says nothing about the ratio
    assert.equal(cost.estimate(10_000), 10_000);
});

test('WireCost: the worst ratio measured in the run, with a margin, never above the raw size', () => {
    const cost = new WireCost();
    cost.record(100_000, 30_000); // text deflates to 30 %
    assert.equal(cost.estimate(10_000), Math.ceil(10_000 * 0.3 * 1.15));
    cost.record(10_000, 6_000); // a worse batch raises the estimate ...
    assert.equal(cost.estimate(10_000), Math.ceil(10_000 * 0.6 * 1.15));
    cost.record(100_000, 10_000); // ... and a better one does not lower it
    assert.equal(cost.estimate(10_000), Math.ceil(10_000 * 0.6 * 1.15));
    cost.record(1_000, 1_500); // incompressible, with response lines: capped at the raw size
    assert.equal(cost.estimate(10_000), 10_000);
});
