import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planBodyBatch, uidSet } from './bodies';

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

test('planBodyBatch: later batches plan no more than what was banked, same folder, UIDs above the head only', () => {
    const pending = [item('INBOX', 7, 100), item('Sent', 1, 150), item('INBOX', 3, 160), item('INBOX', 9, 200), item('INBOX', 11, 300), item('INBOX', 12, 400)];
    // Planned: the head at 100 + 256 (its response lines), uid 9 at 200 + 256: 812 of the 1000
    // banked; uid 11 (300) would pass it. Sent/1 is another folder, INBOX/3 is below the head.
    assert.deepEqual(planBodyBatch(pending, 1000, MB, unlimited), [pending[0], pending[3]]);
    assert.deepEqual(planBodyBatch(pending, 10_000, MB, unlimited), [pending[0], pending[3], pending[4], pending[5]]);
});

test('planBodyBatch: the budget stops a batch, and an empty batch means not even the head fits', () => {
    const pending = [item('INBOX', 1, 1000), item('INBOX', 2, 1000)];
    const allows = (bytes: number) => bytes <= 1300;
    // Each message is planned at its size plus 256 for the response lines.
    assert.deepEqual(planBodyBatch(pending, 10_000, MB, allows), [pending[0]]);
    assert.deepEqual(
        planBodyBatch(pending, 10_000, MB, bytes => bytes <= 1000),
        []
    );
    assert.deepEqual(planBodyBatch([], 10_000, MB, unlimited), []);
});

test('planBodyBatch: a message over maxMessageSize (a stub) goes alone and never with whole messages', () => {
    const big = [item('INBOX', 1, 5 * MB), item('INBOX', 2, 6 * MB)];
    assert.deepEqual(planBodyBatch(big, 100 * MB, MB, unlimited), [big[0]]);
    // A stub is planned at maxMessageSize, not its full size.
    assert.deepEqual(
        planBodyBatch(big, 100 * MB, MB, bytes => bytes <= MB + 256),
        [big[0]]
    );
    const mixed = [item('INBOX', 1, 100), item('INBOX', 2, 5 * MB)];
    assert.deepEqual(planBodyBatch(mixed, 100 * MB, MB, unlimited), [mixed[0]]);
});

test('planBodyBatch: messages are planned at their estimated wire cost, so a compressed run fits more', () => {
    const pending = [1, 2, 3, 4, 5].map(uid => item('INBOX', uid, 10_000));
    const allows = (bytes: number) => bytes <= 25_000;
    const measured = (raw: number) => raw * 0.3;
    // Raw: 10,256 each, two fit. At a measured 30 %: 3,256 each, and several of them may take
    // half of what is allowed (2 × 3 × 3,256 = 19,536; a fourth would need 26,048): three.
    assert.deepEqual(planBodyBatch(pending, MB, MB, allows), pending.slice(0, 2));
    assert.deepEqual(planBodyBatch(pending, MB, MB, allows, measured), pending.slice(0, 3));
    // A lone message relies on its estimate (3,256 fits in 4,000); two would need 13,024.
    assert.deepEqual(
        planBodyBatch(pending, MB, MB, bytes => bytes <= 4000, measured),
        pending.slice(0, 1)
    );
    assert.deepEqual(
        planBodyBatch(pending, MB, MB, bytes => bytes <= 4000),
        []
    );
});

test('planBodyBatch: a second message with an identity already in the batch waits (it is linked, not downloaded)', () => {
    const keyed = (uid: number, size: number, key: string | null) => ({ folder: 'INBOX', uid, size, key });
    const pending = [keyed(1, 100, 'mid <a> 100 1'), keyed(2, 100, 'mid <a> 100 1'), keyed(3, 120, null), keyed(4, 130, null)];
    assert.deepEqual(planBodyBatch(pending, 10_000, MB, unlimited), [pending[0], pending[2], pending[3]]);
});
