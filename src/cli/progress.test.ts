import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ProgressSnapshot } from '../uplink';
import { LiveDisplay, progressLine } from './progress';

function snapshot(fields: Partial<ProgressSnapshot>): ProgressSnapshot {
    return { account: 'amina@example.com', user: 'amina', phase: 'receive', activity: 'downloading', elapsedMs: 0, messagesSent: 0, messagesReceived: 0, bytesSent: 0, bytesReceived: 0, ...fields };
}

test('a live line: activity, elapsed time that moves on its own while active, messages, bytes, rate', () => {
    assert.equal(progressLine(snapshot({ phase: 'waiting', activity: 'waiting' }), 0, 5000), 'amina@example.com: waiting');
    const connecting = snapshot({ activity: 'connecting to imap.example.com', elapsedMs: 2000 });
    // Ten seconds after the last figures, with nothing new from the provider: 12 s.
    assert.equal(progressLine(connecting, 1000, 11_000), 'amina@example.com: connecting to imap.example.com … 12 s | 0 in, 0 out | 0.0 KB down, 0.0 KB up | 0.0 KB/s');
    const busy = snapshot({ elapsedMs: 10_000, messagesReceived: 3, bytesReceived: 204_800, bytesSent: 1024 });
    assert.equal(progressLine(busy, 0, 0), 'amina@example.com: downloading … 10 s | 3 in, 0 out | 200.0 KB down, 1.0 KB up | 20.1 KB/s');
    // Done: the clock stops.
    const done = snapshot({ phase: 'done', activity: 'done', elapsedMs: 75_000, messagesReceived: 3 });
    assert.match(progressLine(done, 0, 999_999), /^amina@example\.com: done after 1 min 15 s \| 3 in, 0 out/);
});

test('the display redraws its block in place, log lines go above it, stop erases it', () => {
    const writes: string[] = [];
    let now = 0;
    const display = new LiveDisplay({ write: (text: string) => writes.push(text), columns: 60 }, () => now);
    display.update(snapshot({ account: 'a@x.org', phase: 'waiting', activity: 'waiting' }));
    display.update(snapshot({ account: 'b@y.org', activity: 'connecting to imap.y.org', elapsedMs: 1 }));
    assert.deepEqual(display.lines(), ['a@x.org: waiting', 'b@y.org: connecting to imap.y.org … 0 s | 0 in, 0 out | 0.0 KB down, 0.0 KB up | -']);
    // The second draw goes back one line (the block had one), then draws two, each line erased first.
    assert.equal(writes[1], '\x1b[1F\x1b[2Ka@x.org: waiting\n\x1b[2Kb@y.org: connecting to imap.y.org … 0 s | 0 in, 0 out | 0.…\n\x1b[J');
    now = 3000;
    display.log('12:00:00 WARN  something\n');
    // Up two lines, clear to the end, the log line, then the block again below it.
    assert.ok(writes[2].startsWith('\x1b[2F\x1b[J12:00:00 WARN  something\n'), JSON.stringify(writes[2]));
    assert.match(writes[3], /^\x1b\[2Ka@x\.org: waiting\n\x1b\[2Kb@y\.org: connecting to imap\.y\.org … 3 s/);
    display.stop();
    assert.equal(writes[writes.length - 1], '\x1b[2F\x1b[J');
});

test('before the first figures: the run is starting, and says for how long', () => {
    let now = 1000;
    const display = new LiveDisplay({ write: () => undefined }, () => now);
    now = 4500;
    assert.deepEqual(display.lines(), ['uplink: starting (link, budget) … 3 s']);
});
