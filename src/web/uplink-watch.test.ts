import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ProgressSnapshot, RunOptions, RunReport } from '../uplink';
import { UplinkWatch } from './uplink-watch';

function snapshot(account: string, phase: ProgressSnapshot['phase'], bytesReceived = 0): ProgressSnapshot {
    return { account, user: 'u', phase, activity: phase, elapsedMs: 0, messagesSent: 0, messagesReceived: 0, bytesSent: 0, bytesReceived };
}

const report: RunReport = { runId: 1, status: 'ok', message: null, accounts: [], bytesTotal: 1234, waiting: [] };

test('a watched run: each account’s latest snapshot while it runs, the outcome after; the caller still gets its progress', async () => {
    let running = false;
    let clock = 100;
    const watch = new UplinkWatch(
        () => running,
        () => clock
    );
    assert.equal(watch.latest(), null);
    let finish!: (r: RunReport) => void;
    let progress!: (s: ProgressSnapshot) => void;
    const callerSaw: string[] = [];
    const done = watch.watch({ trigger: 'web: mayor', onProgress: s => callerSaw.push(`${s.account} ${s.phase}`) }, (options: RunOptions) => {
        running = true;
        progress = options.onProgress!;
        return new Promise(resolve => (finish = resolve));
    });
    progress(snapshot('a@x.org', 'waiting'));
    progress(snapshot('b@y.org', 'waiting'));
    progress(snapshot('a@x.org', 'receive', 500));
    let seen = watch.latest()!;
    assert.equal(seen.trigger, 'web: mayor');
    assert.equal(seen.startedAt, 100);
    assert.equal(seen.outcome, null);
    assert.deepEqual(
        seen.accounts.map(a => [a.account, a.phase, a.bytesReceived]),
        [
            ['a@x.org', 'receive', 500],
            ['b@y.org', 'waiting', 0]
        ]
    );
    assert.deepEqual(callerSaw, ['a@x.org waiting', 'b@y.org waiting', 'a@x.org receive']);

    // A second run asked for meanwhile is refused by the runner and leaves this record alone.
    await assert.rejects(
        watch.watch({ trigger: 'schedule' }, () => Promise.reject(new Error('an uplink run is already in progress'))),
        /already in progress/
    );
    assert.equal(watch.latest()!.trigger, 'web: mayor');

    clock = 200;
    running = false;
    finish(report);
    assert.equal(await done, report);
    seen = watch.latest()!;
    assert.deepEqual(seen.outcome, { status: 'ok', message: null, bytesTotal: 1234, finishedAt: 200 });
});

test('a run that fails to start, or throws, is recorded with its error', async () => {
    const watch = new UplinkWatch(() => false);
    await assert.rejects(
        watch.watch({ trigger: 'mailmule sync' }, () => {
            throw new Error('an uplink run is already in progress (pid 42)');
        }),
        /pid 42/
    );
    const seen = watch.latest()!;
    assert.ok(seen.outcome && 'error' in seen.outcome);
    assert.match(seen.outcome.error, /pid 42/);
});
