import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Sessions, sameToken } from './sessions';

function clock() {
    const state = { now: 1_000_000 };
    return { now: () => state.now, advance: (ms: number) => (state.now += ms) };
}

test('a session expires when idle, and after its maximum age however busy', () => {
    const time = clock();
    const sessions = new Sessions({ idleMs: 1000, maxAgeMs: 5000, now: time.now });
    const idle = sessions.create({ id: 1, name: 'amina' });
    time.advance(1001);
    assert.equal(sessions.get(idle.id), null);
    const busy = sessions.create({ id: 1, name: 'amina' });
    for (let n = 0; n < 5; n++) {
        time.advance(900);
        assert.ok(sessions.get(busy.id));
    }
    time.advance(900);
    assert.equal(sessions.get(busy.id), null);
});

test('bounded: past the cap the least recently used session goes', () => {
    const sessions = new Sessions({ maxSessions: 3, now: clock().now });
    const [a, b, c] = [1, 2, 3].map(id => sessions.create({ id, name: `u${id}` }));
    sessions.get(a.id);
    sessions.create({ id: 4, name: 'u4' });
    assert.equal(sessions.size, 3);
    assert.equal(sessions.get(b.id), null);
    assert.ok(sessions.get(a.id) && sessions.get(c.id));
});

test('endOthers ends only that user’s other sessions', () => {
    const sessions = new Sessions({ now: clock().now });
    const keep = sessions.create({ id: 1, name: 'amina' });
    const other = sessions.create({ id: 1, name: 'amina' });
    const someoneElse = sessions.create({ id: 2, name: 'baraka' });
    sessions.endOthers(1, keep.id);
    assert.ok(sessions.get(keep.id));
    assert.equal(sessions.get(other.id), null);
    assert.ok(sessions.get(someoneElse.id));
});

test('ids and tokens are random and distinct; sameToken compares exactly', () => {
    const sessions = new Sessions();
    const a = sessions.create({ id: 1, name: 'amina' });
    const b = sessions.create({ id: 1, name: 'amina' });
    assert.notEqual(a.id, b.id);
    assert.notEqual(a.csrf, b.csrf);
    assert.ok(a.id.length >= 43);
    assert.equal(sameToken(a.csrf, a.csrf), true);
    assert.equal(sameToken(a.csrf, b.csrf), false);
    assert.equal(sameToken(a.csrf, ''), false);
});
