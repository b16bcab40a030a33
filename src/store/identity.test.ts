/** Unit tests for the store-identity decision at open (src/store/identity.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { STORE_FORMAT, decideIdentity, type IdentityFacts } from './identity';

const ID = '7d1b0c9e-0000-4000-8000-000000000001';
const OTHER = '7d1b0c9e-0000-4000-8000-000000000002';

function facts(overrides: Partial<IdentityFacts>): IdentityFacts {
    return {
        database: 'present',
        quickCheck: 'ok',
        databaseStoreId: ID,
        databaseFormat: STORE_FORMAT,
        filesStoreId: ID,
        hasMessageFiles: true,
        referencesFiles: () => true,
        ...overrides
    };
}

test('matching ids open as they are', () => {
    assert.deepEqual(decideIdentity(facts({})), { action: 'open' });
});

test('a new data directory (no database, no files, no id) is created', () => {
    for (const database of ['missing', 'empty', 'unmigrated'] as const) {
        assert.deepEqual(decideIdentity(facts({ database, databaseStoreId: null, filesStoreId: null, hasMessageFiles: false })), { action: 'create' });
    }
});

test('a missing, empty or schema-less database next to message files or a store id is refused as a mismatch', () => {
    for (const database of ['missing', 'empty', 'unmigrated'] as const) {
        for (const files of [
            { hasMessageFiles: true, filesStoreId: null },
            { hasMessageFiles: false, filesStoreId: ID }
        ]) {
            const decision = decideIdentity(facts({ database, databaseStoreId: null, ...files }));
            assert.equal(decision.action, 'refuse');
            assert.equal(decision.action === 'refuse' && decision.kind, 'mismatch');
        }
    }
});

test("another store's database is refused, whatever it references", () => {
    const decision = decideIdentity(facts({ databaseStoreId: OTHER }));
    assert.equal(decision.action === 'refuse' && decision.kind, 'mismatch');
    assert.match(decision.action === 'refuse' ? decision.reason : '', new RegExp(`store ${OTHER}, the message files to store ${ID}`));
});

test('a database without an id next to files that have one is refused', () => {
    assert.equal(decideIdentity(facts({ databaseStoreId: null })).action, 'refuse');
});

test('a damaged database is refused as damaged before its ids are compared', () => {
    const decision = decideIdentity(facts({ quickCheck: '*** in database main ***\nPage 5: btree', databaseStoreId: null, filesStoreId: null }));
    assert.equal(decision.action === 'refuse' && decision.kind, 'damaged');
    // The reason names the problem, not quick_check's "*** in database main ***" heading.
    assert.match(decision.action === 'refuse' ? decision.reason : '', /\(quick_check: Page 5: btree\)$/);
});

test('a newer format is refused', () => {
    assert.equal(decideIdentity(facts({ databaseFormat: STORE_FORMAT + 1 })).action === 'refuse', true);
});

test('a store from before identities is adopted only if its database references the files beside it', () => {
    let asked = 0;
    const upgrade = facts({ databaseStoreId: null, filesStoreId: null, databaseFormat: null, referencesFiles: () => (asked++, true) });
    assert.deepEqual(decideIdentity(upgrade), { action: 'adopt', storeId: null });
    assert.equal(asked, 1);
    assert.equal(decideIdentity({ ...upgrade, referencesFiles: () => false }).action, 'refuse');
    assert.deepEqual(decideIdentity({ ...upgrade, hasMessageFiles: false, referencesFiles: () => false }), { action: 'adopt', storeId: null });
});

test('a database with an id whose file beside the messages is missing gets the file back with the same id', () => {
    assert.deepEqual(decideIdentity(facts({ filesStoreId: null })), { action: 'adopt', storeId: ID });
});
