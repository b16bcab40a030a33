/**
 * Migration 15 (issue 17: the search text packed into one column) on a store written before it:
 * SEARCH finds the same messages before start-up has packed the old rows, while it is half-way
 * (killed after a batch), and after; every message reads back byte for byte.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { tempDir, makeMessage } from './support/gateway';
import { fillAliceInbox, undoMigration15, withStoreDb } from './support/store';
import { packSearchText } from '../src/store/search-text';
import { Store } from '../src/store';
import type { SearchTerm } from '../src/store/search';

const TERMS: Record<string, SearchTerm[]> = {
    'TEXT pump': [{ key: 'text', value: 'pump' }],
    'BODY seal': [{ key: 'body', value: 'seal' }],
    'SUBJECT hall': [{ key: 'header', header: 'subject', value: 'hall' }],
    'FROM grüße': [{ key: 'header', header: 'from', value: 'grüße' }],
    'HEADER X-Tag ""': [{ key: 'header', header: 'x-tag', value: '' }],
    'TEXT café AND NOT BODY brot': [
        { key: 'text', value: 'café' },
        { key: 'not', value: { key: 'body', value: 'brot' } }
    ]
};

function messages(): Buffer[] {
    return [
        makeMessage({ subject: 'Village hall', body: 'The pump needs a new seal.' }),
        Buffer.from('From: =?utf-8?q?Gr=C3=BC=C3=9Fe?= <g@example.org>\r\nSubject: Brot\r\nX-Tag: 1\r\n\r\nCafé und Brot.\r\n', 'latin1'),
        Buffer.from('From: carol@example.org\nSubject: caf\xe9\n\nA pump, and marmalade.\n', 'latin1'),
        makeMessage({ subject: 'Nothing to see', body: 'Plain text.' })
    ];
}

function searchAll(store: Store, userId: number, mailboxId: number): Record<string, number[]> {
    return Object.fromEntries(Object.entries(TERMS).map(([name, terms]) => [name, store.messages.search(userId, mailboxId, terms).uids]));
}

function columns(dataDir: string): { packed: number; plain: number; marker: number } {
    return withStoreDb(dataDir, db => ({
        packed: db.prepare('SELECT count(*) FROM blobs WHERE search_text IS NOT NULL').pluck().get() as number,
        plain: db.prepare("SELECT count(*) FROM blobs WHERE search_headers <> '' OR search_body <> ''").pluck().get() as number,
        marker: db.prepare("SELECT count(*) FROM meta WHERE key = 'pending_search_packing'").pluck().get() as number
    }));
}

test('a store from before migration 15 searches the same before, half-way through and after start-up packs its search text', () => {
    const dataDir = tempDir('mailmule-migrate-search-');
    try {
        let store = new Store({ dataDir });
        const originals = messages();
        const { userId, inboxId } = fillAliceInbox(store, originals);
        const expected = searchAll(store, userId, inboxId);
        assert.deepEqual(expected['TEXT pump'], [1, 3], 'the fixture finds something');
        assert.deepEqual(expected['FROM grüße'], [2]);
        assert.deepEqual(columns(dataDir), { packed: 4, plain: 0, marker: 0 }, 'new rows are stored packed only');
        store.close();

        withStoreDb(dataDir, db => {
            undoMigration15(db);
            db.pragma('user_version = 14');
        });
        store = new Store({ dataDir });
        assert.deepEqual(columns(dataDir), { packed: 0, plain: 4, marker: 1 });
        assert.deepEqual(searchAll(store, userId, inboxId), expected, 'rows not packed yet are searched as they are');
        store.close();

        // Start-up killed after its first batch: one row packed (and emptied), the marker still there.
        withStoreDb(dataDir, db => {
            const row = db.prepare('SELECT hash, search_headers, search_body FROM blobs ORDER BY hash LIMIT 1').get() as { hash: string; search_headers: string; search_body: string };
            db.prepare("UPDATE blobs SET search_text = ?, search_headers = '', search_body = '' WHERE hash = ?").run(packSearchText(row.search_headers, row.search_body), row.hash);
        });
        store = new Store({ dataDir });
        assert.deepEqual(searchAll(store, userId, inboxId), expected, 'half-way');
        store.recover();
        assert.deepEqual(columns(dataDir), { packed: 4, plain: 0, marker: 0 });
        assert.deepEqual(searchAll(store, userId, inboxId), expected, 'after');
        const fetched = store.messages.fetchPage(userId, inboxId, [1, 2, 3, 4], {});
        assert.deepEqual(
            fetched.map(message => store.messages.readRaw(message.blobHash)),
            originals
        );
        store.close();
    } finally {
        fs.rmSync(dataDir, { recursive: true, force: true });
    }
});
