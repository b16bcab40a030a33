/**
 * The admin's status page (users with `admin: true` in accounts.yaml): the uplink's last and next
 * run with a "sync now" button, charts of the link's use per account per day and month against
 * the budget with the recent runs, every user's queue with retry and drop, users and their
 * storage, and the disk. Also the run page that follows a run live (sync.ts).
 */
import fs from 'node:fs';
import { html } from 'hono/html';
import type { PeriodBytes, QueueEntry, RunSummary, UplinkRun, UserSummary } from '../store';
import type { Strings } from './strings';
import { describeEntry, formatBytes } from './mine';
import { barChart, chartKey, type BarChartInput } from './chart';
import { dailyChart, monthlyChart, type HistoryLabels } from './history';

type Html = ReturnType<typeof html>;

/** Queue entries listed, newest first: the page stays light; `mailmule queue` lists them all. */
export const MAX_QUEUE_ROWS = 50;

export interface AdminInput {
    csrf: string;
    now: Date;
    lastRun: UplinkRun | null;
    nextRun: Date | null;
    /** A run of this daemon's is going on now. */
    running: boolean;
    recentRuns: readonly RunSummary[];
    perDay: readonly PeriodBytes[];
    perMonth: readonly PeriodBytes[];
    /** uplink.budget.perDay (0: none). */
    budgetPerDay: number;
    /** Newest first. */
    queue: readonly QueueEntry[];
    users: readonly UserSummary[];
    disk: { free: number; total: number } | null;
    formatTime(at: number): string;
    dayLabel: (date: Date) => string;
    monthLabel: (date: Date) => string;
}

export function diskOf(dir: string): { free: number; total: number } | null {
    try {
        const stats = fs.statfsSync(dir);
        return { free: stats.bavail * stats.bsize, total: stats.blocks * stats.bsize };
    } catch {
        return null;
    }
}

function queueRow(s: Strings, input: AdminInput, entry: QueueEntry): Html {
    const { state, kind } = describeEntry(entry, s, input);
    const retry = entry.state === 'deferred' || entry.state === 'failed';
    const drop = entry.state !== 'sending';
    // One form, two buttons: the pressed one sends its action (a row weighs less with 50 of them on the page).
    const actions =
        retry || drop
            ? html`<form method="post" action="/admin/queue">
                  <input type="hidden" name="csrf" value="${input.csrf}" /><input type="hidden" name="id" value="${entry.id}" />${
                      retry ? html`<button name="action" value="retry">${s.retry}</button> ` : ''
                  }${drop ? html`<button name="action" value="drop">${s.drop}</button>` : ''}
              </form>`
            : '';
    return html`<tr class="${kind}">
        <td>${entry.id}</td>
        <td>${entry.user}</td>
        <td>${entry.subject || s.noSubject}<br /><small>${entry.recipients.map(r => r.address).join(', ')}</small></td>
        <td>${state}</td>
        <td>${actions}</td>
    </tr>`;
}

function uplinkPart(s: Strings, input: AdminInput): Html {
    const run = input.lastRun;
    return html`<h2>${s.uplinkTitle}</h2>
        <p id="last-run">${run ? s.lastRunLine(input.formatTime(run.startedAt), s.runStatus(run.status), run.message) : s.neverRun}</p>
        ${
            run && run.accounts.length
                ? html`<table id="run">
                      <tr>
                          <th>${s.account}</th>
                          <th>${s.up}</th>
                          <th>${s.down}</th>
                      </tr>
                      ${run.accounts.map(
                          a =>
                              html`<tr>
                                  <td>${a.account}</td>
                                  <td>${formatBytes(a.bytesSent)}</td>
                                  <td>${formatBytes(a.bytesReceived)}</td>
                              </tr>`
                      )}
                  </table>`
                : ''
        }
        <p>${s.nextRunLine(input.nextRun ? input.formatTime(input.nextRun.getTime()) : null)}</p>
        ${
            input.running
                ? html`<p><a href="/admin/sync">${s.syncWatch}</a></p>`
                : html`<form method="post" action="/admin/sync"><input type="hidden" name="csrf" value="${input.csrf}" /><button id="sync-now">${s.syncNow}</button></form>`
        }`;
}

/** A chart, its key, and its figures as a table (folded away: the chart says it to the eye). */
function chartPart(s: Strings, id: string, title: string, chart: BarChartInput): Html {
    const rows = chart.columns.filter(c => c.values.some(v => v > 0));
    return html`<h3>${title}</h3>
        <div id="${id}">${barChart(chart)}</div>
        ${chartKey(chart.series, chart.budget?.label ?? null)}
        <details>
            <summary>${s.figures}</summary>
            <table id="${id}-figures">
                <tr>
                    <th>${s.period}</th>
                    ${chart.series.map(name => html`<th>${name}</th>`)}
                </tr>
                ${rows.map(
                    c =>
                        html`<tr>
                            <td>${c.label}</td>
                            ${c.values.map(v => html`<td>${formatBytes(v)}</td>`)}
                        </tr>`
                )}
            </table>
        </details>`;
}

function historyPart(s: Strings, input: AdminInput): Html {
    const labels = (title: string, budget: string): HistoryLabels => ({ title, budget, others: s.otherAccounts, dayLabel: input.dayLabel, monthLabel: input.monthLabel, formatValue: formatBytes });
    const charts =
        input.perMonth.length || input.perDay.length
            ? html`${chartPart(s, 'chart-day', s.perDayTitle, dailyChart(input.perDay, input.now, input.budgetPerDay, labels(s.perDayTitle, s.budgetDay)))}
              ${chartPart(s, 'chart-month', s.perMonthTitle, monthlyChart(input.perMonth, input.now, input.budgetPerDay, labels(s.perMonthTitle, s.budgetMonth)))}`
            : html`<p>${s.noHistory}</p>`;
    return html`<h2>${s.historyTitle}</h2>
        ${input.budgetPerDay > 0 ? '' : html`<p>${s.noBudget}</p>`} ${charts}
        ${
            input.recentRuns.length
                ? html`<h3>${s.runsTitle}</h3>
                      <table id="runs">
                          <tr>
                              <th>${s.started}</th>
                              <th>${s.trigger}</th>
                              <th>${s.result}</th>
                              <th>${s.up}</th>
                              <th>${s.down}</th>
                          </tr>
                          ${input.recentRuns.map(
                              r =>
                                  html`<tr class="${r.status === 'failed' ? 'failed' : ''}">
                                      <td>${input.formatTime(r.startedAt)}</td>
                                      <td>${r.trigger}</td>
                                      <td>${s.runStatus(r.status)}${r.message ? html`<br /><small>${r.message}</small>` : ''}</td>
                                      <td>${formatBytes(r.bytesSent)}</td>
                                      <td>${formatBytes(r.bytesReceived)}</td>
                                  </tr>`
                          )}
                      </table>`
                : ''
        }`;
}

export function adminPart(s: Strings, input: AdminInput): Html {
    return html`${uplinkPart(s, input)} ${historyPart(s, input)}
        <h2>${s.queueTitle}</h2>
        <table id="queue">
            <tr>
                <th>#</th>
                <th>${s.user}</th>
                <th>${s.subject}</th>
                <th>${s.state}</th>
                <th></th>
            </tr>
            ${input.queue.slice(0, MAX_QUEUE_ROWS).map(entry => queueRow(s, input, entry))}
        </table>
        ${input.queue.length > MAX_QUEUE_ROWS ? html`<p>${s.moreInQueue(input.queue.length - MAX_QUEUE_ROWS)}</p>` : ''}
        <h2>${s.usersTitle}</h2>
        <table id="users">
            <tr>
                <th>${s.user}</th>
                <th>${s.messages}</th>
                <th>${s.storage}</th>
            </tr>
            ${input.users.map(
                u =>
                    html`<tr>
                        <td>${u.name}${u.hasPassword ? '' : html` (${s.noPassword})`}</td>
                        <td>${u.messages}</td>
                        <td>${formatBytes(u.bytes)}</td>
                    </tr>`
            )}
        </table>
        ${input.disk ? html`<p id="disk">${s.diskLine(formatBytes(input.disk.free), formatBytes(input.disk.total))}</p>` : ''}`;
}
