/**
 * The uplink's history as the status page charts it: the wire bytes (both ways) of each upstream
 * account per local calendar day over the last DAYS days and per month over the last MONTHS
 * months, against the budget (uplink.budget.perDay; a month's budget is that times its days).
 * Pure: the rows come from the store, the clock and the budget from the caller.
 */
import type { PeriodBytes } from '../store';
import type { BarChartInput } from './chart';

export const DAYS = 31;
export const MONTHS = 12;

function pad(n: number): string {
    return String(n).padStart(2, '0');
}

/** Local 'YYYY-MM-DD' keys of the `count` days ending with `now`'s, oldest first. */
export function lastDays(now: Date, count: number): { key: string; date: Date }[] {
    return Array.from({ length: count }, (_, i) => {
        const date = new Date(now.getFullYear(), now.getMonth(), now.getDate() - (count - 1 - i));
        return { key: `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`, date };
    });
}

/** Local 'YYYY-MM' keys of the `count` months ending with `now`'s, oldest first. */
export function lastMonths(now: Date, count: number): { key: string; date: Date; days: number }[] {
    return Array.from({ length: count }, (_, i) => {
        const date = new Date(now.getFullYear(), now.getMonth() - (count - 1 - i), 1);
        const days = new Date(date.getFullYear(), date.getMonth() + 1, 0).getDate();
        return { key: `${date.getFullYear()}-${pad(date.getMonth() + 1)}`, date, days };
    });
}

/** Where the daily chart starts: the first day's local midnight (for the store's query). */
export function daysSince(now: Date, count: number): number {
    return lastDays(now, count)[0].date.getTime();
}

export function monthsSince(now: Date, count: number): number {
    return lastMonths(now, count)[0].date.getTime();
}

/** At most this many series in a chart: the accounts that cost most, then the rest together. */
export const MAX_SERIES = 7;

/**
 * The chart's series: accounts (lower-cased) by what they cost over the chart's periods, most
 * first; past MAX_SERIES, the last series is every other account together (`othersLabel`).
 */
function seriesOf(rows: readonly PeriodBytes[], othersLabel: string): { names: string[]; index(account: string): number } {
    const totals = new Map<string, number>();
    for (const row of rows) totals.set(row.account.toLowerCase(), (totals.get(row.account.toLowerCase()) ?? 0) + row.bytesSent + row.bytesReceived);
    const ranked = [...totals.entries()].sort((a, b) => b[1] - a[1]).map(([account]) => account);
    if (ranked.length <= MAX_SERIES) return { names: ranked, index: account => ranked.indexOf(account) };
    const shown = ranked.slice(0, MAX_SERIES - 1);
    return { names: [...shown, othersLabel], index: account => (shown.includes(account) ? shown.indexOf(account) : MAX_SERIES - 1) };
}

function columns(rows: readonly PeriodBytes[], series: ReturnType<typeof seriesOf>, periods: { key: string; label: string }[]): BarChartInput['columns'] {
    const byPeriod = new Map(periods.map(p => [p.key, series.names.map(() => 0)]));
    for (const row of rows) {
        const values = byPeriod.get(row.period);
        if (values) values[series.index(row.account.toLowerCase())] += row.bytesSent + row.bytesReceived;
    }
    return periods.map(p => ({ label: p.label, values: byPeriod.get(p.key)! }));
}

export interface HistoryLabels {
    title: string;
    budget: string;
    /** The series of the accounts past MAX_SERIES. */
    others: string;
    dayLabel: (date: Date) => string;
    monthLabel: (date: Date) => string;
    formatValue: (value: number) => string;
}

/** A chart over `periods` (oldest first), each with its budget; `withBudget` false draws none. */
function periodChart(rows: readonly PeriodBytes[], periods: { key: string; label: string; budget: number }[], withBudget: boolean, labels: HistoryLabels): BarChartInput {
    const series = seriesOf(rows, labels.others);
    return {
        title: labels.title,
        series: series.names,
        columns: columns(rows, series, periods),
        budget: withBudget ? { label: labels.budget, values: periods.map(p => p.budget) } : null,
        formatValue: labels.formatValue
    };
}

/** The daily chart's input; `perDay` 0 means no budget. */
export function dailyChart(rows: readonly PeriodBytes[], now: Date, perDay: number, labels: HistoryLabels): BarChartInput {
    const days = lastDays(now, DAYS).map(d => ({ key: d.key, label: labels.dayLabel(d.date), budget: perDay }));
    return periodChart(rows, days, perDay > 0, labels);
}

/** The monthly chart's input: each month's budget is `perDay` times its number of days. */
export function monthlyChart(rows: readonly PeriodBytes[], now: Date, perDay: number, labels: HistoryLabels): BarChartInput {
    const months = lastMonths(now, MONTHS).map(m => ({ key: m.key, label: labels.monthLabel(m.date), budget: perDay * m.days }));
    return periodChart(rows, months, perDay > 0, labels);
}
