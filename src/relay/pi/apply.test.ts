import assert from 'node:assert/strict';
import { it } from 'node:test';
import { flagsAfterPull } from './apply';

it('a pulled flag change lands under a local change not pushed yet, as direct mode gets by pushing before it pulls', () => {
    // Nothing pending here: upstream's synced flags, the local keywords kept.
    assert.deepEqual(flagsAfterPull({ flags: ['\\Seen', 'work'], upstreamFlags: ['\\Seen'] }, ['\\Flagged']), ['\\Flagged', 'work']);
    // \Seen removed here since the up bundle went, \Flagged set upstream: both kept.
    assert.deepEqual(flagsAfterPull({ flags: [], upstreamFlags: ['\\Seen'] }, ['\\Flagged', '\\Seen']), ['\\Flagged']);
    // \Answered set here, upstream cleared \Seen: both kept.
    assert.deepEqual(flagsAfterPull({ flags: ['\\Answered', '\\Seen'], upstreamFlags: ['\\Seen'] }, []), ['\\Answered']);
});
