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
    // One path per series; a bar is a sub-path from its top (M x y) down to its base (V base).
    const paths = [...svg.matchAll(/<path d="([^"]+)" fill="([^"]+)"><title>([^<]+)<\/title>/g)].map(m => ({
        fill: m[2],
        name: m[3],
        bars: [...m[1].matchAll(/M([\d.]+) ([\d.]+)h([\d.]+)V([\d.]+)/g)].map(b => ({ x: Number(b[1]), top: Number(b[2]), base: Number(b[4]) }))
    }));
    assert.deepEqual(
        paths.map(p => [p.name, p.fill, p.bars.length]),
        [
            ['a@x.org', colourOf(0), 2],
            ['b@y.org', colourOf(1), 1]
        ],
        'zeros draw nothing'
    );
    const [a1, a3] = paths[0].bars;
    const [b1] = paths[1].bars;
    assert.ok(Math.abs((a1.base - a1.top) / (b1.base - b1.top) - 2) < 0.05, 'heights in proportion');
    assert.ok(Math.abs((a1.base - a1.top) / (a3.base - a3.top) - 5) < 0.05);
    assert.equal(b1.base, a1.top, 'the second series sits on the first');
    assert.equal(b1.x, a1.x);
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
    const budget = /<path d="([^"]+)" stroke="#c00"[^>]*class="budget"><title>daily budget × days<\/title>/.exec(svg);
    assert.ok(budget, 'one dashed path for the budget');
    const marks = [...budget[1].matchAll(/M[\d.]+ ([\d.]+)H[\d.]+/g)].map(m => Number(m[1]));
    assert.equal(marks.length, 2);
    assert.ok(marks[0] < marks[1], 'a larger budget is drawn higher');
    assert.doesNotMatch(svg, /<script>|<b>/);
    assert.match(svg, /<title>&lt;script&gt;<\/title>/);
    assert.match((await chartKey(['a'], 'daily budget')).toString(), /<i class="budget"><\/i>daily budget/);
});

test('at most about 12 labels under the columns', async () => {
    const columns = Array.from({ length: 31 }, (_, i) => ({ label: `L${i}`, values: [i] }));
    const svg = (await barChart({ title: 't', series: ['a'], columns, budget: null, formatValue: format })).toString();
    const labels = [...svg.matchAll(/>L(\d+)<\/text>/g)].map(m => Number(m[1]));
    assert.deepEqual(labels, [0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30]);
});
