import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { QueueEntry } from '../store';
import { attemptOutcome, backoffMs, classifyConnectionError, connectionFailureOutcome, connectionFailureText, expiryOutcome, isExpired, nextAttemptAt, pendingRecipients } from './retry-policy';

const MINUTE = 60_000;
const NOW = Date.UTC(2026, 2, 14, 3, 0, 0);

type EntryFields = Pick<QueueEntry, 'id' | 'attempts' | 'recipients' | 'lastError' | 'createdAt'>;

function entry(recipients: Record<string, QueueEntry['recipients'][number]['state']>, fields: Partial<EntryFields> = {}): EntryFields {
    return {
        id: 7,
        attempts: 0,
        lastError: null,
        createdAt: NOW - 60 * MINUTE,
        recipients: Object.entries(recipients).map(([address, state]) => ({ address, state, lastError: null })),
        ...fields
    };
}

test('backoffMs: 15 minutes after the first attempt, doubling, never more than a day', () => {
    assert.deepEqual(
        [0, 1, 2, 3, 4, 5, 6, 7].map(n => backoffMs(n) / MINUTE),
        [15, 15, 30, 60, 120, 240, 480, 960]
    );
    assert.equal(backoffMs(8), 24 * 60 * MINUTE);
    assert.equal(backoffMs(50), 24 * 60 * MINUTE);
    // The entry's attempts count excludes the one just made.
    assert.equal(nextAttemptAt(0, NOW), NOW + 15 * MINUTE);
    assert.equal(nextAttemptAt(2, NOW), NOW + 60 * MINUTE);
});

test('isExpired: only strictly older than queue.maxAge', () => {
    const maxAge = 3600_000;
    assert.equal(isExpired({ createdAt: NOW - maxAge }, maxAge, NOW), false);
    assert.equal(isExpired({ createdAt: NOW - maxAge - 1 }, maxAge, NOW), true);
});

test('pendingRecipients: neither sent nor failed', () => {
    assert.deepEqual(pendingRecipients(entry({ 'a@x': 'sent', 'b@x': 'pending', 'c@x': 'failed', 'd@x': 'pending' })), ['b@x', 'd@x']);
});

test('attemptOutcome: every recipient accepted is sent', () => {
    const outcome = attemptOutcome(entry({ 'a@x': 'pending', 'B@x': 'pending' }), ['a@x', 'B@x'], { kind: 'answered', accepted: ['A@X', 'b@x'], refused: [] }, NOW);
    assert.deepEqual(outcome, { sent: ['a@x', 'B@x'], failed: [], deferredError: null, state: 'sent', nextAttemptAt: null, notes: [] });
});

test('attemptOutcome: a 5xx at RCPT fails that recipient, a 4xx defers it, the others are sent', () => {
    const outcome = attemptOutcome(
        entry({ 'a@x': 'pending', 'gone@x': 'pending', 'later@x': 'pending' }, { attempts: 1 }),
        ['a@x', 'gone@x', 'later@x'],
        {
            kind: 'answered',
            accepted: ['a@x'],
            refused: [
                { recipient: 'gone@x', code: 550, text: '550 5.1.1 <gone@x>: Recipient address rejected' },
                { recipient: 'later@x', code: 450, text: '450 4.2.0 <later@x>: try later' }
            ]
        },
        NOW
    );
    assert.deepEqual(outcome.sent, ['a@x']);
    assert.deepEqual(outcome.failed, [{ address: 'gone@x', error: '550 5.1.1 <gone@x>: Recipient address rejected', code: 550 }]);
    assert.equal(outcome.state, 'deferred');
    assert.equal(outcome.deferredError, '450 4.2.0 <later@x>: try later');
    assert.equal(outcome.nextAttemptAt, NOW + 30 * MINUTE);
    assert.deepEqual(outcome.notes, ['message 7: <gone@x> failed: 550 5.1.1 <gone@x>: Recipient address rejected', 'message 7: <later@x> deferred: 450 4.2.0 <later@x>: try later']);
});

test('attemptOutcome: when the last pending recipients fail, the entry is sent if anyone ever got it, else failed', () => {
    const refused = { kind: 'answered' as const, accepted: [], refused: [{ recipient: 'gone@x', code: 550, text: '550 no' }] };
    assert.equal(attemptOutcome(entry({ 'a@x': 'sent', 'gone@x': 'pending' }), ['gone@x'], refused, NOW).state, 'sent');
    assert.equal(attemptOutcome(entry({ 'gone@x': 'pending' }), ['gone@x'], refused, NOW).state, 'failed');
});

test('attemptOutcome: a 5xx to the whole transaction fails every recipient offered', () => {
    const outcome = attemptOutcome(entry({ 'a@x': 'pending', 'b@x': 'pending' }), ['a@x', 'b@x'], { kind: 'refused', code: 554, text: '554 5.7.1 spam' }, NOW);
    assert.deepEqual(outcome, {
        sent: [],
        failed: [
            { address: 'a@x', error: '554 5.7.1 spam', code: 554 },
            { address: 'b@x', error: '554 5.7.1 spam', code: 554 }
        ],
        deferredError: null,
        state: 'failed',
        nextAttemptAt: null,
        notes: ['message 7: 554 5.7.1 spam']
    });
});

test('attemptOutcome: a 4xx to the whole transaction, or no reply at all, defers the entry with backoff', () => {
    for (const answer of [
        { kind: 'refused' as const, code: 452, text: '452 4.3.1 insufficient storage' },
        { kind: 'unanswered' as const, text: 'the connection to the provider closed' }
    ]) {
        const outcome = attemptOutcome(entry({ 'a@x': 'pending' }, { attempts: 3 }), ['a@x'], answer, NOW);
        assert.deepEqual(outcome, {
            sent: [],
            failed: [],
            deferredError: answer.text,
            state: 'deferred',
            nextAttemptAt: NOW + 120 * MINUTE,
            notes: [`message 7 deferred: ${answer.text}`]
        });
    }
});

test('expiryOutcome: pending recipients fail with 4.4.7 and the last error; the entry is returned to its sender', () => {
    const outcome = expiryOutcome(entry({ 'a@x': 'sent', 'b@x': 'pending' }, { lastError: '451 try later' }), 5 * 86400_000);
    assert.deepEqual(outcome.failed, [{ address: 'b@x', error: '4.4.7 not delivered within the queue lifetime (last error: 451 try later)', code: 447 }]);
    assert.equal(outcome.state, 'sent', 'a@x had it');
    assert.equal(outcome.nextAttemptAt, null);
    assert.deepEqual(outcome.notes, ['message 7 expired after 5 days and was returned to the sender']);
    assert.equal(expiryOutcome(entry({ 'b@x': 'pending' }), 86400_000).failed[0].error, '4.4.7 not delivered within the queue lifetime');
    assert.equal(expiryOutcome(entry({ 'b@x': 'pending' }), 86400_000).state, 'failed');
});

test('connectionFailureOutcome: any failed connection is an attempt, deferred with backoff and its reason', () => {
    assert.deepEqual(connectionFailureOutcome(entry({ 'a@x': 'pending' }), 'the provider (h:25) could not be reached: connect ECONNREFUSED', NOW), {
        sent: [],
        failed: [],
        deferredError: 'the provider (h:25) could not be reached: connect ECONNREFUSED',
        state: 'deferred',
        nextAttemptAt: NOW + 15 * MINUTE,
        notes: []
    });
    assert.equal(connectionFailureOutcome(entry({ 'a@x': 'pending' }, { attempts: 2 }), 'x', NOW).nextAttemptAt, NOW + 60 * MINUTE);
});

test('classifyConnectionError: login, DNS, TLS and network failures are told apart', () => {
    assert.equal(classifyConnectionError({ code: 'EAUTH' }, '535').kind, 'authentication');
    assert.equal(classifyConnectionError({ code: 'ENOTFOUND' }, 'getaddrinfo ENOTFOUND smtp.nowhere').kind, 'dns');
    assert.equal(classifyConnectionError({ code: 'EAI_AGAIN' }, 'x').kind, 'dns');
    assert.equal(classifyConnectionError({ code: 'ETLS' }, 'x').kind, 'tls');
    assert.equal(classifyConnectionError({ code: 'ERR_TLS_CERT_ALTNAME_INVALID' }, 'x').kind, 'tls');
    assert.equal(classifyConnectionError({ message: 'self-signed certificate' }, 'x').kind, 'tls');
    assert.equal(classifyConnectionError({ code: 'ECONNREFUSED' }, 'x').kind, 'network');
    assert.equal(classifyConnectionError({ code: 'ETIMEDOUT' }, 'x').kind, 'network');
});

test('connectionFailureText: what happened in words, then the detail', () => {
    assert.equal(
        connectionFailureText({ kind: 'authentication', text: '535 5.7.8 Error: authentication failed' }, 'smtp.example:587'),
        "the provider (smtp.example:587) refused the account's login; check its credentials: 535 5.7.8 Error: authentication failed"
    );
    assert.match(connectionFailureText({ kind: 'dns', text: 'getaddrinfo ENOTFOUND' }, 'h:1'), /could not be looked up \(DNS\)/);
    assert.match(connectionFailureText({ kind: 'tls', text: 'x' }, 'h:1'), /no secure \(TLS\) connection/);
    assert.match(connectionFailureText({ kind: 'network', text: 'x' }, 'h:1'), /could not be reached/);
});
