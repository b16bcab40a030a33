import { test } from 'node:test';
import assert from 'node:assert/strict';
import { barChart, chartKey, chartTop, colourOf } from './chart';

const format = (n: number) => `${Math.round(n)}B`;

test('bars stack per column in proportion; the scale leaves room above the tallest column or budget', async () => {
    const input = {
        title: 'Per day',
        series: ['a@x.org', 'b@y.org'],
        columns: [
            { label: 'd1', values: [100, 50] },
            { label: 'd2', values: [0, 0] },
            { label: 'd3', values: [20, 0] }
        ],
        budget: null,
        formatValue: format
    };
    assert.equal(chartTop(input), 165);
    assert.equal(chartTop({ ...input, budget: { label: 'b', values: [300, 300, 300] } }), 330);
    assert.equal(chartTop({ columns: [], budget: null }), 1, 'an empty chart still has a scale');
    const svg = (await barChart(input)).toString();
    const rects = [...svg.matchAll(/<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)" fill="([^"]+)"/g)].map(m => ({ y: Number(m[2]), h: Number(m[4]), fill: m[5] }));
    // Three segments (zeros draw nothing): a@x.org 100 and b@y.org 50 stacked on it, a@x.org 20.
    assert.equal(rects.length, 3);
    assert.deepEqual(
        rects.map(r => r.fill),
        [colourOf(0), colourOf(1), colourOf(0)]
    );
    assert.ok(Math.abs(rects[0].h / rects[1].h - 2) < 0.05, 'heights in proportion');
    assert.ok(Math.abs(rects[0].y - (rects[1].y + rects[1].h)) < 0.2, 'the second segment sits on the first');
    assert.match(svg, /<title>d1 · b@y\.org: 50B<\/title>/);
    assert.match(svg, /role="img" aria-label="Per day"/);
    assert.doesNotMatch(svg, /class="budget"/);
});

test('the budget is a mark across each column at its own height; labels are escaped', async () => {
    const svg = (
        await barChart({
            title: '<b>',
            series: ['<script>'],
            columns: [
                { label: 'Jan', values: [10] },
                { label: 'Feb', values: [10] }
            ],
            budget: { label: 'daily budget × days', values: [310, 280] },
            formatValue: format
        })
    ).toString();
    const marks = [...svg.matchAll(/<line x1="[\d.]+" x2="[\d.]+" y1="([\d.]+)" y2="[\d.]+" stroke="#c00"/g)].map(m => Number(m[1]));
    assert.equal(marks.length, 2);
    assert.ok(marks[0] < marks[1], 'a larger budget is drawn higher');
    assert.doesNotMatch(svg, /<script>|<b>/);
    assert.match(svg, /&lt;script&gt;: 10B/);
    assert.match((await chartKey(['a'], 'daily budget')).toString(), /<i class="budget"><\/i>daily budget/);
});

test('at most about 12 labels under the columns', async () => {
    const columns = Array.from({ length: 31 }, (_, i) => ({ label: `L${i}`, values: [i] }));
    const svg = (await barChart({ title: 't', series: ['a'], columns, budget: null, formatValue: format })).toString();
    const labels = [...svg.matchAll(/>L(\d+)<\/text>/g)].map(m => Number(m[1]));
    assert.deepEqual(labels, [0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30]);
});
