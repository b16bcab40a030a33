/**
 * The store's uplink history for the status page: bytes per account per local day and month,
 * runs with their totals (including one that recorded no account), newest first.
 */
import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { tempDir } from './support/gateway';
import { Store } from '../src/store';

function figures(account: string, bytesSent: number, bytesReceived: number) {
    return { account, bytesSent, bytesReceived, messagesSent: 1, messagesReceived: 2, durationMs: 10, errors: [] };
}

test('bytes per account per local day and month, and the latest runs with their totals', () => {
    const dataDir = tempDir('mailmule-history-');
    const store = new Store({ dataDir });
    try {
        // Runs at noon local time on 30 and 31 January and 1 February: three days, two months.
        const at = (day: number) => new Date(2026, 0, day, 12).getTime();
        mock.timers.enable({ apis: ['Date'], now: at(30) });
        const record = (day: number, rows: ReturnType<typeof figures>[]) => {
            mock.timers.setTime(at(day));
            const id = store.runs.start('schedule');
            for (const row of rows) store.runs.recordAccount(id, row);
            store.runs.finish(id, 'ok', null);
            return id;
        };
        record(30, [figures('a@x.org', 100, 1000), figures('b@y.org', 5, 50)]);
        record(30, [figures('a@x.org', 1, 10)]);
        record(31, [figures('a@x.org', 2, 20)]);
        const skipped = record(32, []);
        const last = record(32, [figures('b@y.org', 3, 30)]);
        mock.timers.reset();

        assert.deepEqual(store.runHistory.bytesPer('day', at(31)), [
            { period: '2026-01-31', account: 'a@x.org', bytesSent: 2, bytesReceived: 20 },
            { period: '2026-02-01', account: 'b@y.org', bytesSent: 3, bytesReceived: 30 }
        ]);
        assert.deepEqual(store.runHistory.bytesPer('month', 0), [
            { period: '2026-01', account: 'a@x.org', bytesSent: 103, bytesReceived: 1030 },
            { period: '2026-01', account: 'b@y.org', bytesSent: 5, bytesReceived: 50 },
            { period: '2026-02', account: 'b@y.org', bytesSent: 3, bytesReceived: 30 }
        ]);
        const recent = store.runHistory.recent(2);
        assert.deepEqual(
            recent.map(r => [r.id, r.bytesSent, r.bytesReceived, r.messagesSent, r.messagesReceived, r.status]),
            [
                [last, 3, 30, 1, 2, 'ok'],
                [skipped, 0, 0, 0, 0, 'ok']
            ]
        );
        assert.equal(store.runHistory.recent(100).length, 5);
    } finally {
        mock.timers.reset();
        store.close();
        fs.rmSync(dataDir, { recursive: true, force: true });
    }
});
