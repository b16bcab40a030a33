import { test } from 'node:test';
import assert from 'node:assert/strict';
import { afterPush, changedUpstream, mergeUpstreamFlags, pushGroups, sameFlags, syncedFlags } from './flags';

test('syncedFlags: only the five system flags, canonical spelling, sorted, once each', () => {
    assert.deepEqual(syncedFlags(['\\seen', '$Label1', '\\FLAGGED', '\\Seen', '\\Recent', 'Junk', '\\draft']), ['\\Draft', '\\Flagged', '\\Seen']);
    assert.deepEqual(syncedFlags([]), []);
    assert.ok(sameFlags(syncedFlags(['\\Seen', '\\Answered']), syncedFlags(['\\answered', '\\SEEN'])));
    assert.ok(!sameFlags(['\\Seen'], ['\\Seen', '\\Flagged']));
});

test('mergeUpstreamFlags: upstream decides the system flags, local keywords stay', () => {
    assert.deepEqual(mergeUpstreamFlags(['\\Seen', '\\Flagged', '$Work', 'todo'], ['\\Answered']), ['\\Answered', '$Work', 'todo']);
    assert.deepEqual(mergeUpstreamFlags(['\\Seen'], []), []);
});

test('changedUpstream: the new synced set when it differs from what we knew, else null', () => {
    assert.equal(changedUpstream(['\\Seen'], ['\\seen', '$Upstream-Keyword']), null);
    assert.deepEqual(changedUpstream(['\\Seen'], ['\\Seen', '\\Flagged']), ['\\Flagged', '\\Seen']);
    assert.deepEqual(changedUpstream(['\\Seen'], []), []);
    // Never known (linked before flags were tracked): take upstream's.
    assert.deepEqual(changedUpstream(null, ['\\Seen']), ['\\Seen']);
    assert.deepEqual(changedUpstream(null, []), []);
});

test('pushGroups: one group per distinct change; unknown upstream state and unchanged messages are skipped', () => {
    const groups = pushGroups([
        { upstreamUid: 1, flags: ['\\Seen'], upstreamFlags: [] },
        { upstreamUid: 2, flags: ['\\Seen', 'keyword'], upstreamFlags: [] },
        { upstreamUid: 3, flags: ['\\Seen'], upstreamFlags: ['\\Seen'] },
        { upstreamUid: 4, flags: ['\\Flagged'], upstreamFlags: ['\\Seen'] },
        { upstreamUid: 5, flags: ['\\Seen'], upstreamFlags: null },
        { upstreamUid: 6, flags: [], upstreamFlags: ['\\Seen'] }
    ]);
    assert.deepEqual(groups, [
        { add: ['\\Seen'], remove: [], uids: [1, 2] },
        { add: ['\\Flagged'], remove: ['\\Seen'], uids: [4] },
        { add: [], remove: ['\\Seen'], uids: [6] }
    ]);
});

test('afterPush: what upstream holds once a push is applied', () => {
    assert.deepEqual(afterPush(['\\Seen', '\\Answered'], { add: ['\\Flagged'], remove: ['\\Seen'] }), ['\\Answered', '\\Flagged']);
    assert.deepEqual(afterPush([], { add: ['\\Seen', '\\Seen'], remove: [] }), ['\\Seen']);
});
