import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PeriodBytes, QueueEntry } from '../store';
import { adminPart, MAX_QUEUE_ROWS } from './admin';
import { adminPage } from './pages';
import { DAYS, MONTHS, lastDays, lastMonths } from './history';
import { stringsFor } from './strings';

function entry(id: number): QueueEntry {
    return {
        id,
        userId: 1,
        user: `villager${id % 40}`,
        account: `villager${id % 40}@example.com`,
        mailFrom: `villager${id % 40}@example.com`,
        blobHash: 'h',
        size: 10,
        messageId: null,
        subject: `A message with a subject of ordinary length, number ${id}`,
        state: id % 3 ? 'deferred' : 'sent',
        attempts: 2,
        nextAttemptAt: 1000,
        lastError: '451 4.7.1 Try again later, the provider says so at some length',
        createdAt: id,
        updatedAt: id,
        recipients: [
            { address: `friend${id}@elsewhere.example.org`, state: 'pending', lastError: null },
            { address: `cousin${id}@elsewhere.example.org`, state: 'pending', lastError: null }
        ]
    };
}

test('the status page of a busy village stays under 100 KB: 40 accounts, a year of runs, 500 queue entries, 60 users', async () => {
    const now = new Date(2026, 5, 30, 12);
    const accounts = Array.from({ length: 40 }, (_, i) => `villager${i}@example.com`);
    const perDay: PeriodBytes[] = lastDays(now, DAYS).flatMap(d => accounts.map(account => ({ period: d.key, account, bytesSent: 12_345, bytesReceived: 123_456 })));
    const perMonth: PeriodBytes[] = lastMonths(now, MONTHS).flatMap(m => accounts.map(account => ({ period: m.key, account, bytesSent: 1_234_567, bytesReceived: 12_345_678 })));
    const s = stringsFor('fr');
    const body = adminPart(s, {
        csrf: 'x'.repeat(43),
        now,
        lastRun: {
            id: 9,
            trigger: 'schedule 30 1 * * *',
            startedAt: 1,
            finishedAt: 2,
            status: 'partial',
            message: 'some accounts failed',
            accounts: accounts.map(account => ({ account, bytesSent: 1, bytesReceived: 2, messagesSent: 1, messagesReceived: 2, durationMs: 3, errors: ['login refused'] }))
        },
        nextRun: now,
        running: false,
        recentRuns: Array.from({ length: 10 }, (_, id) => ({
            id,
            trigger: 'schedule 30 1 * * *',
            startedAt: 1,
            finishedAt: 2,
            status: 'ok',
            message: null,
            bytesSent: 1,
            bytesReceived: 2,
            messagesSent: 3,
            messagesReceived: 4
        })),
        perDay,
        perMonth,
        budgetPerDay: 20 * 1024 * 1024,
        queue: Array.from({ length: 500 }, (_, i) => entry(500 - i)),
        users: Array.from({ length: 60 }, (_, i) => ({ name: `villager${i}`, mailboxes: 6, messages: 12_345, bytes: 123_456_789, hasPassword: true })),
        disk: { free: 1, total: 2 },
        formatTime: at => new Date(at).toISOString(),
        dayLabel: d => String(d.getDate()),
        monthLabel: d => String(d.getMonth() + 1)
    });
    const page = (await adminPage(s, { name: 'mayor', csrf: 'x'.repeat(43) }, await body)).toString();
    const bytes = Buffer.byteLength(page);
    assert.ok(bytes < 100 * 1024, `${bytes} bytes`);
    console.log('SIZE', bytes);
    assert.equal(page.match(/<tr class="(waiting|sent|failed)">/g)?.length, MAX_QUEUE_ROWS, 'the newest entries only');
    assert.match(page, /et 450 plus anciens/);
    assert.doesNotMatch(page, /<script/);
});
