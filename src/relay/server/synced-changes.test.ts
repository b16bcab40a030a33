import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { OutboxLink } from '../../store';
import type { ShippedLink } from './pi-state';
import { downChanges, remapBody } from './synced-changes';

const told = (uid: number, flags: string[] = [], uidValidity = 7): ShippedLink => ({ user: 'alice', account: 'a@example.net', folder: 'INBOX', uidValidity, uid, flags });
const now = (uid: number, upstreamFlags: string[] = [], uidValidity = 7): OutboxLink => ({ account: 'a@example.net', folder: 'INBOX', uidValidity, uid, upstreamFlags });

it('down: flags changed upstream since the Pi was told, and nothing for what did not change', () => {
    const changes = downChanges(
        new Map([
            [1, told(10, ['\\Seen'])],
            [2, told(11)],
            [3, told(12, ['\\Seen', 'keyword'])]
        ]),
        new Map([
            [1, now(10, ['\\Seen', '\\Flagged'])],
            [2, now(11)],
            [3, now(12, ['\\Seen'])]
        ]),
        () => 7
    );
    assert.deepEqual(changes.remaps, []);
    assert.deepEqual(changes.flags, [{ user: 'alice', account: 'a@example.net', folder: 'INBOX', uidValidity: 7, uid: 10, flags: ['\\Flagged', '\\Seen'] }]);
    assert.deepEqual([...changes.told], [[1, told(10, ['\\Flagged', '\\Seen'])]]);
    assert.deepEqual(changes.forget, []);
});

it('down: a UIDVALIDITY reset is one remap of the old generation, its flags after it by new UID; unlinked and expunged messages are forgotten', () => {
    const changes = downChanges(
        new Map([
            [1, told(10)],
            [2, told(11)],
            [3, told(12)],
            [4, told(13)]
        ]),
        new Map<number, OutboxLink | null>([
            [1, now(1, [], 9)],
            [2, now(2, ['\\Flagged'], 9)],
            [3, null]
            // 4: expunged here (the Pi's own expunge)
        ]),
        () => 9
    );
    assert.deepEqual(changes.remaps, [
        {
            meta: { user: 'alice', account: 'a@example.net', folder: 'INBOX', oldUidValidity: 7, uidValidity: 9 },
            pairs: [
                [10, 1],
                [11, 2]
            ]
        }
    ]);
    assert.deepEqual(changes.flags, [{ user: 'alice', account: 'a@example.net', folder: 'INBOX', uidValidity: 9, uid: 2, flags: ['\\Flagged'] }]);
    assert.deepEqual(changes.told.get(1), told(1, [], 9));
    assert.deepEqual(changes.told.get(2), told(2, ['\\Flagged'], 9));
    assert.deepEqual(changes.forget.sort(), [3, 4]);
    assert.deepEqual([...remapBody(changes.remaps[0].pairs)], [0, 0, 0, 10, 0, 0, 0, 1, 0, 0, 0, 11, 0, 0, 0, 2]);
});

it('down: every message of a reset folder unlinked is still a remap (the Pi unlinks its copies too)', () => {
    const changes = downChanges(new Map([[1, told(10)]]), new Map([[1, null]]), () => 9);
    assert.deepEqual(
        changes.remaps.map(remap => [remap.meta.oldUidValidity, remap.meta.uidValidity, remap.pairs.length]),
        [[7, 9, 0]]
    );
    assert.deepEqual(changes.forget, [1]);
});

it('down: an id SQLite gave again to another message is forgotten and shipped as new, and so is one behind the cursor the Pi was never told of', () => {
    const changes = downChanges(
        new Map([
            [1, told(10)],
            [2, told(11)],
            [3, told(12)]
        ]),
        new Map([
            // 1: the same message. 2: the Pi expunged uid 11, and uid 13 got its id. 3: expunged, and a message of another account got it.
            [1, now(10)],
            [2, now(13)],
            [3, { ...now(5), account: 'b@example.net' }],
            // 4: told of before, forgotten when its message went; its id is a new message's now.
            [4, now(14)],
            // 5: unlinked (a reset it matched nothing in): nothing to ship.
            [5, null]
        ]),
        () => 7
    );
    assert.deepEqual(changes.forget.sort(), [2, 3]);
    assert.deepEqual(changes.unshipped.sort(), [2, 3, 4]);
    assert.deepEqual(changes.flags, []);
    // Ids up to the floor were shipped before the relay kept what it told the Pi: never shipped again.
    assert.deepEqual(downChanges(new Map(), new Map([[4, now(14)]]), () => 7, 4).unshipped, []);
});
