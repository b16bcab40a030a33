/**
 * Bar charts drawn on the server as inline SVG: no script and no charting library to download
 * on a cheap phone (the chart is a few KB of markup inside the page), and it renders the same
 * with JavaScript off. Each column stacks one value per series (an account); a budget, when
 * there is one, is a dashed red mark across each column at its own height (a month's budget
 * depends on its length). Every bar carries a <title> (its figures, shown on hover or long
 * press); the same figures are in a table beside the chart for screen readers.
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
    const plotWidth = WIDTH - LEFT;
    const slot = plotWidth / Math.max(input.columns.length, 1);
    const barWidth = Math.max(slot * 0.7, 1);
    const y = (value: number) => round(TOP + plotHeight - (value / top) * plotHeight);
    // At most about 12 labels under the columns, whatever their number.
    const labelEvery = Math.max(1, Math.ceil(input.columns.length / 12));
    const grid = [0, top / 2, top / 1.1].map(
        value => html`<line x1="${LEFT}" x2="${WIDTH}" y1="${y(value)}" y2="${y(value)}" stroke="#ddd" /><text x="${LEFT - 4}" y="${y(value) + 4}" text-anchor="end">${input.formatValue(value)}</text>`
    );
    const bars = input.columns.map((column, index) => {
        const x = round(LEFT + index * slot + (slot - barWidth) / 2);
        let base = 0;
        const segments = column.values.map((value, series) => {
            if (value <= 0) return '';
            const from = base;
            base += value;
            return html`<rect x="${x}" y="${y(base)}" width="${round(barWidth)}" height="${round(y(from) - y(base))}" fill="${colourOf(series)}"
                ><title>${column.label} · ${input.series[series]}: ${input.formatValue(value)}</title></rect
            >`;
        });
        const budget = input.budget?.values[index] ?? 0;
        const mark =
            budget > 0
                ? html`<line x1="${round(LEFT + index * slot)}" x2="${round(LEFT + (index + 1) * slot)}" y1="${y(budget)}" y2="${y(budget)}" stroke="#c00" stroke-dasharray="4 2" class="budget"
                      ><title>${input.budget!.label}: ${input.formatValue(budget)}</title></line
                  >`
                : '';
        const label = index % labelEvery === 0 ? html`<text x="${round(x + barWidth / 2)}" y="${HEIGHT - 6}" text-anchor="middle">${column.label}</text>` : '';
        return html`${segments}${mark}${label}`;
    });
    return html`<svg class="chart" viewBox="0 0 ${WIDTH} ${HEIGHT}" width="100%" role="img" aria-label="${input.title}" font-size="10" font-family="sans-serif">${grid}${bars}</svg>`;
}

/** The chart's key: one coloured square per series, and the budget's mark when there is one. */
export function chartKey(series: string[], budgetLabel: string | null): Html {
    return html`<p class="key">
        ${series.map((name, index) => html`<span><i style="background:${colourOf(index)}"></i>${name}</span> `)} ${budgetLabel ? html`<span><i class="budget"></i>${budgetLabel}</span>` : ''}
    </p>`;
}
