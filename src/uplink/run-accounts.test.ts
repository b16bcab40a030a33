import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ResolvedUser } from '../config';
import { runVerdict, selectTargets } from './run-accounts';

// Only the fields selectTargets reads.
const users = [
    {
        name: 'alice',
        accounts: [
            { address: 'alice@upstream.test', name: 'home' },
            { address: 'alice@work.test', name: 'work' }
        ]
    },
    { name: 'Bob', accounts: [{ address: 'bob@upstream.test', name: 'bob@upstream.test' }] }
] as unknown as ResolvedUser[];

const picked = (options: { user?: string; account?: string }) => selectTargets(users, options).map(t => `${t.user.name}:${t.account.address}:${t.index}`);

test("selectTargets: every account of every user, with its index among the user's accounts", () => {
    assert.deepEqual(picked({}), ['alice:alice@upstream.test:0', 'alice:alice@work.test:1', 'Bob:bob@upstream.test:0']);
});

test('selectTargets: --user by name (any case), --account by address (any case) or exact name', () => {
    assert.deepEqual(picked({ user: 'bob' }), ['Bob:bob@upstream.test:0']);
    assert.deepEqual(picked({ account: 'ALICE@work.test' }), ['alice:alice@work.test:1']);
    assert.deepEqual(picked({ account: 'work' }), ['alice:alice@work.test:1']);
    assert.deepEqual(picked({ account: 'WORK' }), []);
    assert.deepEqual(picked({ user: 'bob', account: 'work' }), []);
});

test('runVerdict: ok when clean; partial on errors, and on the budget (which is what the message says)', () => {
    assert.deepEqual(runVerdict([]), { status: 'ok', message: null });
    assert.deepEqual(runVerdict([{ errors: [], budgetStopped: false }]), { status: 'ok', message: null });
    assert.deepEqual(
        runVerdict([
            { errors: ['a'], budgetStopped: false },
            { errors: ['b', 'c'], budgetStopped: false }
        ]),
        { status: 'partial', message: '3 error(s)' }
    );
    assert.deepEqual(
        runVerdict([
            { errors: ['a'], budgetStopped: false },
            { errors: [], budgetStopped: true }
        ]),
        {
            status: 'partial',
            message: 'budget reached; the rest waits for the next run'
        }
    );
});
