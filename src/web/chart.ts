/**
 * Bar charts drawn on the server as inline SVG: no script and no charting library to download
 * on a cheap phone (the chart is a few KB of markup inside the page), and it renders the same
 * with JavaScript off. Each column stacks one value per series (an account); a budget, when
 * there is one, is a dashed red mark across each column at its own height (a month's budget
 * depends on its length). Each series is one <path> named by a <title> (shown on hover or long
 * press); the figures of each bar are in a table beside the chart, for screen readers and for
 * whoever wants the numbers.
 */
import { html } from 'hono/html';

type Html = ReturnType<typeof html>;

export interface ChartColumn {
    label: string;
    /** One value per series, in the order of `series`. */
    values: number[];
}

export interface BarChartInput {
    /** For the chart's accessible name. */
    title: string;
    series: string[];
    columns: ChartColumn[];
    /** Per column (same order); null: no budget. */
    budget: { label: string; values: number[] } | null;
    formatValue: (value: number) => string;
}

/** Colours told apart by most people with a colour-vision deficiency (Okabe–Ito). */
export const PALETTE = ['#0072b2', '#e69f00', '#009e73', '#cc79a7', '#56b4e9', '#d55e00', '#f0e442', '#000000'];

const WIDTH = 600;
const HEIGHT = 180;
const LEFT = 56;
const BOTTOM = 20;
const TOP = 8;
/** Room for the last column's label. */
const RIGHT = 14;

export function colourOf(index: number): string {
    return PALETTE[index % PALETTE.length];
}

/** The scale's top: the largest column or budget mark, with a little room above. */
export function chartTop(input: Pick<BarChartInput, 'columns' | 'budget'>): number {
    const totals = input.columns.map(c => c.values.reduce((sum, v) => sum + Math.max(v, 0), 0));
    const marks = input.budget ? input.budget.values.filter(v => v > 0) : [];
    const top = Math.max(0, ...totals, ...marks);
    return top > 0 ? top * 1.1 : 1;
}

function round(n: number): number {
    return Math.round(n * 10) / 10;
}

export function barChart(input: BarChartInput): Html {
    const top = chartTop(input);
    const plotHeight = HEIGHT - TOP - BOTTOM;
    const plotWidth = WIDTH - LEFT - RIGHT;
    const slot = plotWidth / Math.max(input.columns.length, 1);
    const barWidth = Math.max(slot * 0.7, 1);
    const y = (value: number) => round(TOP + plotHeight - (value / top) * plotHeight);
    // At most about 12 labels under the columns, whatever their number.
    const labelEvery = Math.max(1, Math.ceil(input.columns.length / 12));
    const grid = [0, top / 2, top / 1.1].map(
        value => html`<line x1="${LEFT}" x2="${WIDTH}" y1="${y(value)}" y2="${y(value)}" stroke="#ddd" /><text x="${LEFT - 4}" y="${y(value) + 4}" text-anchor="end">${input.formatValue(value)}</text>`
    );
    // One path per series (its bars as sub-paths), not an element per bar: the markup stays small
    // with many accounts and days. The figures per bar are in the table beside the chart.
    const paths = input.series.map(() => [] as string[]);
    const bases = input.columns.map(() => 0);
    input.series.forEach((_, series) => {
        input.columns.forEach((column, index) => {
            const value = column.values[series] ?? 0;
            if (value <= 0) return;
            const x = round(LEFT + index * slot + (slot - barWidth) / 2);
            const from = bases[index];
            bases[index] += value;
            paths[series].push(`M${x} ${y(bases[index])}h${round(barWidth)}V${y(from)}h${-round(barWidth)}z`);
        });
    });
    const bars = paths.map((d, series) => (d.length ? html`<path d="${d.join('')}" fill="${colourOf(series)}"><title>${input.series[series]}</title></path>` : ''));
    const marks = input.columns
        .map((_, index) => {
            const budget = input.budget?.values[index] ?? 0;
            return budget > 0 ? `M${round(LEFT + index * slot)} ${y(budget)}H${round(LEFT + (index + 1) * slot)}` : '';
        })
        .join('');
    const budget = marks ? html`<path d="${marks}" stroke="#c00" stroke-dasharray="4 2" fill="none" class="budget"><title>${input.budget!.label}</title></path>` : '';
    const labels = input.columns.map((column, index) =>
        index % labelEvery === 0 ? html`<text x="${round(LEFT + index * slot + slot / 2)}" y="${HEIGHT - 6}" text-anchor="middle">${column.label}</text>` : ''
    );
    return html`<svg class="chart" viewBox="0 0 ${WIDTH} ${HEIGHT}" width="100%" role="img" aria-label="${input.title}" font-size="10" font-family="sans-serif">${grid}${bars}${budget}${labels}</svg>`;
}

/** The chart's key: one coloured square per series, and the budget's mark when there is one. */
export function chartKey(series: string[], budgetLabel: string | null): Html {
    return html`<p class="key">
        ${series.map((name, index) => html`<span><i style="background:${colourOf(index)}"></i>${name}</span> `)} ${budgetLabel ? html`<span><i class="budget"></i>${budgetLabel}</span>` : ''}
    </p>`;
}
