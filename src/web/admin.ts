/**
 * The admin's status page (users with `admin: true` in accounts.yaml): the uplink's last and next
 * run, every user's queue with retry and drop, users and their storage, and the disk.
 */
import fs from 'node:fs';
import { html } from 'hono/html';
import type { QueueEntry, UplinkRun, UserSummary } from '../store';
import type { Strings } from './strings';
import { describeEntry, formatBytes } from './mine';

type Html = ReturnType<typeof html>;

export interface AdminInput {
    csrf: string;
    lastRun: UplinkRun | null;
    nextRun: Date | null;
    queue: readonly QueueEntry[];
    users: readonly UserSummary[];
    disk: { free: number; total: number } | null;
    formatTime(at: number): string;
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
    const action = (name: 'retry' | 'drop', label: string) =>
        html`<form method="post" action="/admin/queue">
            <input type="hidden" name="csrf" value="${input.csrf}" /><input type="hidden" name="id" value="${entry.id}" /><input type="hidden" name="action" value="${name}" /><button>${label}</button>
        </form>`;
    return html`<tr class="${kind}">
        <td>${entry.id}</td>
        <td>${entry.user}</td>
        <td>${entry.subject || s.noSubject}<br /><small>${entry.recipients.map(r => r.address).join(', ')}</small></td>
        <td>${state}</td>
        <td>${entry.state === 'deferred' || entry.state === 'failed' ? action('retry', s.retry) : ''} ${entry.state !== 'sending' ? action('drop', s.drop) : ''}</td>
    </tr>`;
}

export function adminPart(s: Strings, input: AdminInput): Html {
    const run = input.lastRun;
    return html`<h2>${s.uplinkTitle}</h2>
        <p>${run ? s.lastRunLine(input.formatTime(run.startedAt), run.status, run.message) : s.neverRun}</p>
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
        <h2>${s.queueTitle}</h2>
        <table id="queue">
            <tr>
                <th>#</th>
                <th>${s.user}</th>
                <th>${s.subject}</th>
                <th>${s.state}</th>
                <th></th>
            </tr>
            ${input.queue.map(entry => queueRow(s, input, entry))}
        </table>
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
