import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planBodyBatch, uidSet } from './bodies';
import { worstWireCost } from './budget';

test('uidSet: ranges for runs of consecutive UIDs, sorted, duplicates once', () => {
    assert.equal(uidSet([12, 3, 5, 6, 7, 8, 9, 5]), '3,5:9,12');
    assert.equal(uidSet([1]), '1');
    assert.equal(uidSet([2, 1]), '1:2');
    assert.equal(uidSet([]), '');
});

const item = (folder: string, uid: number, size: number) => ({ folder, uid, size });
const unlimited = () => true;
const MB = 1024 * 1024;

test('planBodyBatch: the first batch of a run is the smallest message alone (nothing banked yet)', () => {
    const pending = [item('INBOX', 7, 100), item('INBOX', 9, 200), item('INBOX', 11, 300)];
    assert.deepEqual(planBodyBatch(pending, 0, MB, unlimited), [pending[0]]);
});

test('planBodyBatch: later batches plan no more than what was banked (at least SLOW_START_FLOOR), same folder, any UID', () => {
    const pending = [item('INBOX', 7, 10_000), item('Sent', 1, 15_000), item('INBOX', 3, 16_000), item('INBOX', 9, 20_000), item('INBOX', 11, 30_000), item('INBOX', 12, 40_000)];
    // Banked 100 KB: the head at 10,000 + 256 (its response lines), INBOX/3 (below the head's UID:
    // taken all the same), 9 and 11: 77,024 planned; 12 would pass 100,000. Sent/1 is another folder.
    assert.deepEqual(planBodyBatch(pending, 100_000, MB, unlimited), [pending[0], pending[2], pending[3], pending[4]]);
    assert.deepEqual(planBodyBatch(pending, 1_000_000, MB, unlimited), [pending[0], pending[2], pending[3], pending[4], pending[5]]);
    // Banked 1 KB: the floor (32 KB) holds the head and INBOX/3 (26,512 planned), not 9 as well.
    assert.deepEqual(planBodyBatch(pending, 1000, MB, unlimited), [pending[0], pending[2]]);
});

test('planBodyBatch: each message is planned at its worst wire cost; the budget stops a batch, and an empty batch means not even the head fits', () => {
    const pending = [item('INBOX', 1, 1000), item('INBOX', 2, 1000)];
    // At its worst a message of 1000 bytes costs 1000 + 8 (budget.ts worstWireCost), plus 256 for the response lines.
    assert.equal(worstWireCost(1000) + 256, 1264);
    assert.deepEqual(
        planBodyBatch(pending, 10_000, MB, bytes => bytes <= 1264),
        [pending[0]]
    );
    assert.deepEqual(
        planBodyBatch(pending, 10_000, MB, bytes => bytes <= 2 * 1264),
        pending
    );
    assert.deepEqual(
        planBodyBatch(pending, 10_000, MB, bytes => bytes <= 1263),
        []
    );
    assert.deepEqual(planBodyBatch([], 10_000, MB, unlimited), []);
});

test('planBodyBatch: a message over maxMessageSize (a stub) goes alone and never with whole messages', () => {
    const big = [item('INBOX', 1, 5 * MB), item('INBOX', 2, 6 * MB)];
    assert.deepEqual(planBodyBatch(big, 100 * MB, MB, unlimited), [big[0]]);
    // A stub is planned at maxMessageSize, not its full size.
    assert.deepEqual(
        planBodyBatch(big, 100 * MB, MB, bytes => bytes <= worstWireCost(MB) + 256),
        [big[0]]
    );
    const mixed = [item('INBOX', 1, 100), item('INBOX', 2, 5 * MB)];
    assert.deepEqual(planBodyBatch(mixed, 100 * MB, MB, unlimited), [mixed[0]]);
});

test('planBodyBatch: a second message with an identity already in the batch waits (it is linked, not downloaded)', () => {
    const keyed = (uid: number, size: number, key: string | null) => ({ folder: 'INBOX', uid, size, key });
    const pending = [keyed(1, 100, 'mid <a> 100 1'), keyed(2, 100, 'mid <a> 100 1'), keyed(3, 120, null), keyed(4, 130, null)];
    assert.deepEqual(planBodyBatch(pending, 10_000, MB, unlimited), [pending[0], pending[2], pending[3]]);
});
