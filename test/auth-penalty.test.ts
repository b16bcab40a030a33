/** The login penalty's policy (src/auth/limiter.ts), on a fake clock. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AuthPenalty } from '../src/auth';

function clock(start = 1_000_000) {
    const state = { now: start };
    return { now: () => state.now, advance: (ms: number) => (state.now += ms) };
}

test('each distinct failure adds a growing delay, up to 15 s', () => {
    const time = clock();
    const penalty = new AuthPenalty({ now: time.now });
    const delays = Array.from({ length: 8 }, (_, n) => penalty.fail('10.0.0.5', 'alice', `guess-${n}`).delayMs);
    assert.deepEqual(delays, [500, 1000, 2000, 4000, 8000, 15000, 15000, 15000]);
});

test('the same wrong password again counts once (a client retrying a stale password)', () => {
    const penalty = new AuthPenalty({ now: clock().now });
    const first = penalty.fail('10.0.0.5', 'alice', 'old-password');
    assert.equal(first.counted, true);
    for (let n = 0; n < 20; n++) {
        const again = penalty.fail('10.0.0.5', 'alice', 'old-password');
        assert.equal(again.counted, false);
        assert.equal(again.failures, 1);
        assert.equal(again.delayMs, 500);
    }
    assert.equal(penalty.check('10.0.0.5', 'alice').refuse, false);
    // The hash is keyed by user: the same password against another user is a new guess.
    assert.equal(penalty.fail('10.0.0.5', 'bob', 'old-password').counted, true);
});

test('no password is kept', () => {
    const penalty = new AuthPenalty({ now: clock().now });
    penalty.fail('10.0.0.5', 'alice', 'hunter2-secret');
    const internals = JSON.stringify([...(penalty as unknown as { addresses: Map<string, { users: Map<string, unknown> }> }).addresses].map(([a, e]) => [a, [...e.users]]));
    assert.ok(!internals.includes('hunter2-secret'));
});

test('a success clears only that user: guesses stay capped however they are interleaved', () => {
    const time = clock();
    const penalty = new AuthPenalty({ now: time.now });
    // Over 30 minutes, one attempt every 2 s: a wrong guess at alice, then a good login as mallory.
    const tried: number[] = [];
    for (let n = 0; n < 900; n++) {
        if (!penalty.check('10.0.0.9', 'alice').refuse) {
            tried.push(time.now());
            penalty.fail('10.0.0.9', 'alice', `guess-${n}`);
        }
        assert.equal(penalty.check('10.0.0.9', 'mallory').refuse, false);
        penalty.succeed('10.0.0.9', 'mallory');
        time.advance(2000);
    }
    // Every 5-minute window holds fewer than 10 checked guesses.
    for (const start of tried) {
        const inWindow = tried.filter(at => at >= start && at < start + 5 * 60 * 1000).length;
        assert.ok(inWindow < 10, `${inWindow} guesses in 5 minutes`);
    }
    assert.ok(tried.length >= 9, 'the window slides: guessing is slowed, not stopped forever');
});

test('an honest user on the same address logs in at once; another address is untouched', () => {
    const penalty = new AuthPenalty({ now: clock().now });
    for (let n = 0; n < 9; n++) penalty.fail('10.0.0.9', 'alice', `guess-${n}`);
    assert.equal(penalty.check('10.0.0.9', 'alice').refuse, true);
    assert.ok(penalty.check('10.0.0.9', 'alice').delayMs <= 15000);
    assert.deepEqual(penalty.check('10.0.0.9', 'bob'), { refuse: false, delayMs: 0 });
    assert.deepEqual(penalty.check('10.0.0.10', 'alice'), { refuse: false, delayMs: 0 });
    // bob's own good login does not clear alice's count.
    penalty.succeed('10.0.0.9', 'bob');
    assert.equal(penalty.check('10.0.0.9', 'alice').refuse, true);
    // bob's typo is answered after the address's penalty, but he is never refused for it.
    const typo = penalty.fail('10.0.0.9', 'bob', 'typo');
    assert.ok(typo.delayMs <= 15000 && typo.delayMs > 0);
    assert.equal(penalty.check('10.0.0.9', 'bob').refuse, false);
});

test('counts expire with the window', () => {
    const time = clock();
    const penalty = new AuthPenalty({ now: time.now });
    for (let n = 0; n < 9; n++) penalty.fail('10.0.0.9', 'alice', `guess-${n}`);
    assert.equal(penalty.check('10.0.0.9', 'alice').refuse, true);
    time.advance(5 * 60 * 1000 + 1);
    assert.deepEqual(penalty.check('10.0.0.9', 'alice'), { refuse: false, delayMs: 0 });
    assert.equal(penalty.size, 0);
});

test('memory is bounded: addresses and users per address are capped', () => {
    const time = clock();
    const penalty = new AuthPenalty({ now: time.now, maxAddresses: 1000, maxUsersPerAddress: 16 });
    for (let n = 0; n < 50_000; n++) {
        penalty.fail(`10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`, 'alice', 'x');
        if (n % 1000 === 0) time.advance(1000);
    }
    assert.ok(penalty.size <= 1000, `${penalty.size} addresses tracked`);
    for (let n = 0; n < 1000; n++) penalty.fail('10.99.0.1', `user-${n}`, 'x');
    const users = (penalty as unknown as { addresses: Map<string, { users: Map<string, unknown> }> }).addresses.get('10.99.0.1')!.users.size;
    assert.ok(users <= 17, `${users} users tracked for one address`);
});

test("failing as many other names does not wipe a victim's count", () => {
    const penalty = new AuthPenalty({ now: clock().now, maxUsersPerAddress: 16 });
    for (let n = 0; n < 9; n++) penalty.fail('10.0.0.9', 'alice', `guess-${n}`);
    for (let n = 0; n < 100; n++) penalty.fail('10.0.0.9', `decoy-${n}`, 'x');
    assert.equal(penalty.check('10.0.0.9', 'alice').refuse, true);
});
