import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DAYS, MAX_SERIES, MONTHS, dailyChart, daysSince, lastDays, lastMonths, monthlyChart, monthsSince } from './history';

const labels = { title: 't', budget: 'b', others: 'others', dayLabel: (d: Date) => String(d.getDate()), monthLabel: (d: Date) => String(d.getMonth() + 1), formatValue: String };

test('the last days and months end with today, oldest first, across month and year ends', () => {
    const now = new Date(2026, 0, 2, 15, 30);
    assert.deepEqual(
        lastDays(now, 4).map(d => d.key),
        ['2025-12-30', '2025-12-31', '2026-01-01', '2026-01-02']
    );
    assert.deepEqual(
        lastMonths(now, 3).map(m => [m.key, m.days]),
        [
            ['2025-11', 30],
            ['2025-12', 31],
            ['2026-01', 31]
        ]
    );
    assert.equal(daysSince(now, 4), new Date(2025, 11, 30).getTime());
    assert.equal(monthsSince(now, 3), new Date(2025, 10, 1).getTime());
    assert.equal(lastMonths(new Date(2028, 1, 10), 1)[0].days, 29, 'a leap February');
});

test('bytes both ways add up per account and day; days without a run are empty columns; the budget is per day', () => {
    const now = new Date(2026, 2, 31, 9);
    const rows = [
        { period: '2026-03-01', account: 'A@x.org', bytesSent: 1, bytesReceived: 10 },
        { period: '2026-03-31', account: 'a@x.org', bytesSent: 2, bytesReceived: 20 },
        { period: '2026-03-31', account: 'b@y.org', bytesSent: 3, bytesReceived: 30 }
    ];
    const chart = dailyChart(rows, now, 1000, labels);
    assert.deepEqual(chart.series, ['a@x.org', 'b@y.org']);
    assert.equal(chart.columns.length, DAYS);
    assert.deepEqual(chart.columns[0], { label: '1', values: [11, 0] });
    assert.deepEqual(chart.columns[DAYS - 1], { label: '31', values: [22, 33] });
    assert.ok(chart.columns.slice(1, -1).every(c => c.values.every(v => v === 0)));
    assert.deepEqual(new Set(chart.budget!.values), new Set([1000]));
    assert.equal(dailyChart(rows, now, 0, labels).budget, null, 'no budget set: no mark');
});

test('a month’s budget is the daily budget times its days', () => {
    const now = new Date(2026, 1, 15);
    const chart = monthlyChart([{ period: '2026-02', account: 'a@x.org', bytesSent: 5, bytesReceived: 5 }], now, 100, labels);
    assert.equal(chart.columns.length, MONTHS);
    assert.deepEqual(chart.columns[MONTHS - 1], { label: '2', values: [10] });
    assert.deepEqual(chart.budget!.values.slice(-3), [3100, 3100, 2800]);
});

test('past MAX_SERIES accounts, the ones that cost least share one series', () => {
    const now = new Date(2026, 5, 30);
    const rows = Array.from({ length: MAX_SERIES + 3 }, (_, i) => ({ period: '2026-06-30', account: `u${i}@x.org`, bytesSent: 0, bytesReceived: 100 * (i + 1) }));
    const chart = dailyChart(rows, now, 0, labels);
    assert.equal(chart.series.length, MAX_SERIES);
    assert.deepEqual(chart.series.slice(0, 2), [`u${MAX_SERIES + 2}@x.org`, `u${MAX_SERIES + 1}@x.org`], 'the costliest first');
    assert.equal(chart.series[MAX_SERIES - 1], 'others');
    // The four cheapest (100, 200, 300, 400) together.
    assert.equal(chart.columns[DAYS - 1].values[MAX_SERIES - 1], 1000);
    assert.equal(
        chart.columns[DAYS - 1].values.reduce((a, b) => a + b, 0),
        rows.reduce((a, r) => a + r.bytesReceived, 0),
        'nothing lost'
    );
});
