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

/** Accounts in the order of their first appearance in `rows`, lower-cased. */
function seriesOf(rows: readonly PeriodBytes[]): string[] {
    return [...new Set(rows.map(r => r.account.toLowerCase()))];
}

function columns(rows: readonly PeriodBytes[], series: string[], periods: { key: string; label: string }[]): BarChartInput['columns'] {
    const total = new Map<string, number>();
    for (const row of rows) {
        const key = `${row.period}\n${row.account.toLowerCase()}`;
        total.set(key, (total.get(key) ?? 0) + row.bytesSent + row.bytesReceived);
    }
    return periods.map(p => ({ label: p.label, values: series.map(account => total.get(`${p.key}\n${account}`) ?? 0) }));
}

export interface HistoryLabels {
    title: string;
    budget: string;
    dayLabel: (date: Date) => string;
    monthLabel: (date: Date) => string;
    formatValue: (value: number) => string;
}

/** The daily chart's input; `perDay` 0 means no budget. */
export function dailyChart(rows: readonly PeriodBytes[], now: Date, perDay: number, labels: HistoryLabels): BarChartInput {
    const days = lastDays(now, DAYS);
    const series = seriesOf(rows);
    return {
        title: labels.title,
        series,
        columns: columns(
            rows,
            series,
            days.map(d => ({ key: d.key, label: labels.dayLabel(d.date) }))
        ),
        budget: perDay > 0 ? { label: labels.budget, values: days.map(() => perDay) } : null,
        formatValue: labels.formatValue
    };
}

/** The monthly chart's input: each month's budget is `perDay` times its number of days. */
export function monthlyChart(rows: readonly PeriodBytes[], now: Date, perDay: number, labels: HistoryLabels): BarChartInput {
    const months = lastMonths(now, MONTHS);
    const series = seriesOf(rows);
    return {
        title: labels.title,
        series,
        columns: columns(
            rows,
            series,
            months.map(m => ({ key: m.key, label: labels.monthLabel(m.date) }))
        ),
        budget: perDay > 0 ? { label: labels.budget, values: months.map(m => perDay * m.days) } : null,
        formatValue: labels.formatValue
    };
}
