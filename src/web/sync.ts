/**
 * The page that follows an uplink run live: each account's phase, messages and bytes as the
 * runner last reported them (the same snapshots `mailmule sync` draws on a terminal). While the
 * run goes on the page asks the browser to load it again every REFRESH_SECONDS (a meta refresh:
 * no script, so it works on any phone and under the pages' script-free CSP); once it has ended
 * it shows the outcome and stops refreshing.
 */
import { html } from 'hono/html';
import type { Strings } from './strings';
import type { WatchedRun } from './uplink-watch';
import { formatBytes } from './mine';

type Html = ReturnType<typeof html>;

export const REFRESH_SECONDS = 2;

export function syncPart(s: Strings, run: WatchedRun | null, formatTime: (at: number) => string): Html {
    if (!run) return html`<p id="sync-state">${s.syncNone}</p>`;
    const outcome = run.outcome;
    const state = !outcome
        ? html`<p id="sync-state" class="running">${s.syncRefreshing}</p>`
        : 'error' in outcome
          ? html`<p id="sync-state" class="error">${s.syncFailed(outcome.error)}</p>`
          : html`<p id="sync-state" class="${outcome.status === 'ok' ? 'ok' : 'error'}">${s.syncFinished(s.runStatus(outcome.status), formatBytes(outcome.bytesTotal), outcome.message)}</p>`;
    return html`<p>${s.syncStartedBy(run.trigger, formatTime(run.startedAt))}</p>
        ${state}
        ${
            run.accounts.length
                ? html`<table id="progress">
                      <tr>
                          <th>${s.account}</th>
                          <th>${s.state}</th>
                          <th></th>
                      </tr>
                      ${run.accounts.map(
                          a =>
                              html`<tr class="${a.phase}">
                                  <td>${a.account}<br /><small>${a.user}</small></td>
                                  <td>${s.phase(a.phase)}${a.phase === 'send' || a.phase === 'receive' ? html`<br /><small>${a.activity}</small>` : ''}</td>
                                  <td>${s.progressFigures(a.messagesReceived, a.messagesSent, formatBytes(a.bytesReceived), formatBytes(a.bytesSent), Math.round(a.elapsedMs / 1000))}</td>
                              </tr>`
                      )}
                  </table>`
                : outcome
                  ? ''
                  : html`<p>${s.syncStarting}</p>`
        }`;
}
