import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { QueueEntry, UplinkRun } from '../store';
import { formatBytes, mineView } from './mine';
import { stringsFor } from './strings';

const s = stringsFor('en');

function entry(fields: Partial<QueueEntry>): QueueEntry {
    return {
        id: 1,
        userId: 1,
        user: 'amina',
        account: 'amina@example.com',
        mailFrom: 'amina@example.com',
        blobHash: 'h',
        size: 10,
        messageId: null,
        subject: 'Hello',
        state: 'queued',
        attempts: 0,
        nextAttemptAt: null,
        lastError: null,
        createdAt: 1000,
        updatedAt: 1000,
        recipients: [{ address: 'x@elsewhere.org', state: 'pending', lastError: null }],
        ...fields
    };
}

const base = {
    userId: 1,
    accounts: ['Amina@Example.com'],
    queue: [] as QueueEntry[],
    usage: [],
    lastRun: null,
    problems: [],
    nextRun: null,
    held: [],
    formatTime: (at: number) => `T${at}`
};

test('only the user’s own queue entries, newest first, each state in words', () => {
    const view = mineView(s, {
        ...base,
        nextRun: new Date(5000),
        queue: [
            entry({ id: 1, createdAt: 1 }),
            entry({ id: 2, createdAt: 2, state: 'deferred', nextAttemptAt: 9000, lastError: '421 try later' }),
            entry({ id: 3, createdAt: 3, state: 'failed', recipients: [{ address: 'y@z.org', state: 'failed', lastError: '550 no such user' }] }),
            entry({ id: 4, createdAt: 4, state: 'sent', subject: null }),
            entry({ id: 5, createdAt: 5, userId: 2, subject: 'someone else’s' })
        ]
    });
    assert.deepEqual(
        view.outgoing.map(r => [r.id, r.subject, r.kind, r.state]),
        [
            [4, '(no subject)', 'sent', 'Sent'],
            [3, 'Hello', 'failed', 'Refused by the provider: 550 no such user'],
            [2, 'Hello', 'waiting', 'Not sent yet (421 try later); tried again at the first uplink after T9000'],
            [1, 'Hello', 'waiting', 'Waiting for the next uplink, at T5000']
        ]
    );
});

test('usage and health only for the user’s own accounts; a refused login shows as failing', () => {
    const run: UplinkRun = {
        id: 1,
        trigger: 'schedule',
        startedAt: 7000,
        finishedAt: 8000,
        status: 'ok',
        message: null,
        accounts: [
            { account: 'amina@example.com', bytesSent: 1, bytesReceived: 2, messagesSent: 0, messagesReceived: 0, durationMs: 1, errors: ['INBOX: timeout'] },
            { account: 'baraka@example.com', bytesSent: 1, bytesReceived: 2, messagesSent: 0, messagesReceived: 0, durationMs: 1, errors: [] }
        ]
    };
    const view = mineView(s, {
        ...base,
        accounts: ['amina@example.com', 'amina@work.org'],
        usage: [
            { account: 'amina@example.com', bytesSent: 2048, bytesReceived: 3 * 1024 * 1024 },
            { account: 'baraka@example.com', bytesSent: 99, bytesReceived: 99 }
        ],
        lastRun: run,
        problems: [{ account: 'amina@work.org', error: '535 bad password', since: 6000, lastSeenAt: 7000, notifiedAt: null }]
    });
    assert.deepEqual(view.usage, [
        { account: 'amina@example.com', up: 2048, down: 3 * 1024 * 1024 },
        { account: 'amina@work.org', up: 0, down: 0 }
    ]);
    assert.deepEqual(view.health, [
        { account: 'amina@example.com', text: 'Last uplink T7000: INBOX: timeout', failing: true },
        { account: 'amina@work.org', text: 'The provider refuses the login since T6000: 535 bad password', failing: true }
    ]);
});

test('formatBytes', () => {
    assert.deepEqual([0, 1023, 2048, 3.4 * 1024 * 1024, 5 * 1024 ** 3].map(formatBytes), ['0 B', '1023 B', '2 KB', '3.4 MB', '5.00 GB']);
});
