import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MIN_PIECE, nextPiece, PROBE_PIECE, rawWithin, runLimit, startOfDay, WireCost, worstWireCost } from './budget';

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

test('worstWireCost and rawWithin: raw size plus 8 bytes a KB; rawWithin is the largest raw size whose worst fits', () => {
    assert.equal(worstWireCost(0), 0);
    assert.equal(worstWireCost(1), 9);
    assert.equal(worstWireCost(1024), 1032);
    assert.equal(worstWireCost(100_000), 100_000 + 98 * 8);
    for (const wire of [0, 5, 9, 1031, 1032, 1033, 50_000, 1_234_567]) {
        const raw = rawWithin(wire);
        assert.ok(worstWireCost(raw) <= wire, `${raw} at its worst fits in ${wire}`);
        assert.ok(worstWireCost(raw + 1) > wire, `${raw + 1} at its worst does not fit in ${wire}`);
    }
    assert.equal(rawWithin(-100), 0);
});

/**
 * A message of `size` raw bytes that really costs `ratio` wire bytes per raw byte, fetched in
 * pieces as bodies.ts does, with `budget` wire bytes left: what was spent, and whether it all came.
 */
function fetchInPieces(size: number, ratio: number, budget: number, overhead = 256): { spent: number; complete: boolean; pieces: number } {
    let got = 0;
    let spentOnIt = 0;
    let pieces = 0;
    for (;;) {
        const want = nextPiece(size, got, spentOnIt, budget - spentOnIt - overhead);
        if (!want) return { spent: spentOnIt, complete: false, pieces };
        const piece = Math.min(want, size - got);
        spentOnIt += Math.ceil(piece * ratio) + overhead;
        got += piece;
        pieces++;
        if (piece < want) return { spent: spentOnIt, complete: true, pieces };
    }
}

test('nextPiece: whatever the message really costs, the pieces never spend more than the budget', () => {
    // From text that deflates to a fifth to a message that does not compress at all, with TLS on top (0.78 % more).
    for (const ratio of [0.2, 0.35, 0.6, 0.9, 1, 1.0078]) {
        for (const size of [900, 20_000, 64_000, 300_000]) {
            for (const budget of [300, 1_500, 10_000, 40_000, 200_000]) {
                const run = fetchInPieces(size, ratio, budget);
                assert.ok(run.spent <= budget, `ratio ${ratio}, ${size} bytes, budget ${budget}: spent ${run.spent}`);
            }
        }
    }
});

test('nextPiece: a message that compresses comes whole on a budget below its raw size; one that does not stops after the probe', () => {
    // 60 KB of text at 30 %: 18 KB and the response lines, within a budget of 25 KB (less than half its raw size).
    const text = fetchInPieces(60_000, 0.3, 25_000);
    assert.deepEqual({ complete: text.complete, within: text.spent <= 25_000 }, { complete: true, within: true });
    // The same budget for 60 KB that does not compress: the probe shows it, and nothing more is spent.
    const noise = fetchInPieces(60_000, 1, 25_000);
    assert.equal(noise.complete, false);
    assert.equal(noise.pieces, 1);
    assert.ok(noise.spent <= PROBE_PIECE + 256, `spent ${noise.spent}`);
    // A message that fits in the probe comes in one piece, asked for one byte past its end.
    assert.equal(nextPiece(900, 0, 0, 50_000), 901);
    assert.deepEqual(fetchInPieces(900, 0.5, 50_000), { spent: 450 + 256, complete: true, pieces: 1 });
    // Less than MIN_PIECE left and more than that to come: not worth a round trip.
    assert.equal(nextPiece(60_000, 30_000, 9_000, MIN_PIECE - 1), 0);
});
