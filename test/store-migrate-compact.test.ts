/**
 * Migrations 12 to 14 (issue 17: header summaries per message, no header copy in the database,
 * compressed MIME trees) on a store written before them: after opening and start-up, every message
 * reads back byte for byte, and every FETCH column is what it was; an interrupted start-up goes on
 * where it stopped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { tempDir, makeMessage } from './support/gateway';
import { fillAliceInbox, messageFilePath, undoMigration12, withStoreDb } from './support/store';
import { rootHeaderLines, summariseHeader } from '../src/store/header-summary';
import { packMimeTree } from '../src/store/blob-rows';
import { Store, type FetchedMessage } from '../src/store';

const ALL = { envelope: true, bodystructure: true, mimeTree: true, headerLines: true };

/** Real-looking mail of several shapes: plain, multipart with a small and a large attachment, LF line ends, 8-bit headers. */
function messages(): Buffer[] {
    const attachment = Buffer.alloc(20_000, 'attachment ').toString('base64').replace(/.{76}/g, '$&\r\n');
    const multipart = Buffer.from(
        [
            'From: Bob <bob@example.org>',
            'To: alice@mailmule.lan',
            'Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=',
            'Date: Mon, 2 Feb 2026 10:00:00 +0000',
            'Message-ID: <multi@example.org>',
            'Content-Type: multipart/mixed; boundary="b"',
            '',
            '--b',
            'Content-Type: text/plain; charset=utf-8',
            '',
            'small text part',
            '--b',
            'Content-Type: application/octet-stream',
            'Content-Transfer-Encoding: base64',
            '',
            attachment,
            '--b--',
            ''
        ].join('\r\n'),
        'latin1'
    );
    const lf = Buffer.from(`From: carol@example.org\nSubject: ${Buffer.from('café').toString('latin1')}\nReferences: <a@x>\n <b@x>\n\nline one\nline two\n`, 'latin1');
    return [makeMessage({ subject: 'plain' }), multipart, lf, makeMessage({ subject: 'a subject long enough to be folded onto a second line by the mail client' })];
}

function snapshot(store: Store, userId: number, mailboxId: number): { fetched: FetchedMessage[]; raw: Buffer[] } {
    const fetched = store.messages.fetchPage(userId, mailboxId, [1, 2, 3, 4, 5], ALL);
    return { fetched, raw: fetched.map(message => store.messages.readRaw(message.blobHash)) };
}

test('a store from before migrations 12-14 reads back the same, byte for byte, and is compacted at start-up', () => {
    const dataDir = tempDir('mailmule-migrate-compact-');
    try {
        let store = new Store({ dataDir });
        const originals = messages();
        const { userId, inboxId } = fillAliceInbox(store, originals);
        const before = snapshot(store, userId, inboxId);
        assert.deepEqual(before.raw, originals);
        store.close();

        // As an older mailmule left it: trees plain, header lines in blob_headers, no summaries.
        withStoreDb(dataDir, db => {
            undoMigration12(db);
            db.pragma('user_version = 11');
        });
        const plainTrees = withStoreDb(dataDir, db => db.prepare('SELECT sum(length(mime_tree)) FROM blobs').pluck().get() as number);

        store = new Store({ dataDir });
        assert.equal(store.integrityCheck(), 'ok');
        // Before start-up's work: trees are read as they are, headers from the files.
        assert.deepEqual(snapshot(store, userId, inboxId), before);
        store.recover();
        assert.deepEqual(snapshot(store, userId, inboxId), before, 'every column and every byte as before');
        const after = withStoreDb(dataDir, db => ({
            trees: db.prepare('SELECT sum(length(mime_tree)) FROM blobs').pluck().get() as number,
            summaries: db.prepare('SELECT count(*) FROM message_headers').pluck().get() as number,
            marker: db.prepare("SELECT count(*) FROM meta WHERE key = 'pending_tree_compression'").pluck().get() as number
        }));
        assert.equal(after.summaries, originals.length);
        assert.equal(after.marker, 0);
        assert.ok(after.trees < plainTrees, `trees ${after.trees} bytes compressed, from ${plainTrees}`);
        assert.equal(
            withStoreDb(dataDir, db => db.prepare("SELECT count(*) FROM blobs WHERE substr(mime_tree, 1, 4) <> x'28b52ffd'").pluck().get()),
            0,
            'every tree compressed'
        );
        const summaries = store.messages.fetchPage(userId, inboxId, [1, 2, 3, 4], { headerSummary: true });
        assert.ok(summaries.every(message => message.headerSummary && /Subject:/i.test(message.headerSummary.lines)));
        store.close();
    } finally {
        fs.rmSync(dataDir, { recursive: true, force: true });
    }
});

test('interrupted half-way, start-up goes on where it stopped', () => {
    const dataDir = tempDir('mailmule-migrate-resume-');
    try {
        let store = new Store({ dataDir });
        const user = store.users.ensure('alice');
        const inbox = store.mailboxes.get(user.id, 'INBOX')!;
        for (const raw of messages()) store.messages.add(user.id, inbox.id, raw);
        const before = snapshot(store, user.id, inbox.id);
        store.close();
        withStoreDb(dataDir, db => {
            undoMigration12(db);
            db.pragma('user_version = 11');
        });
        store = new Store({ dataDir });
        store.close();
        // A start-up that got through part of the work, then was killed: one summary written, one tree compressed.
        withStoreDb(dataDir, db => {
            const first = db.prepare('SELECT id, blob_hash FROM messages ORDER BY id LIMIT 1').get() as { id: number; blob_hash: string };
            const summary = summariseHeader(rootHeaderLines(fs.readFileSync(messageFilePath(dataDir, first.blob_hash)), true).lines);
            db.prepare('INSERT INTO message_headers (id, fields, lines) VALUES (?, ?, ?)').run(first.id, summary.fields, summary.lines);
            const tree = db.prepare('SELECT mime_tree FROM blobs WHERE hash = ?').pluck().get(first.blob_hash) as Buffer;
            db.prepare('UPDATE blobs SET mime_tree = ? WHERE hash = ?').run(packMimeTree(tree), first.blob_hash);
        });
        store = new Store({ dataDir });
        store.recover();
        const fetched = snapshot(store, user.id, inbox.id);
        assert.deepEqual(fetched.raw, before.raw);
        assert.deepEqual(
            fetched.fetched.map(message => message.mimeTree),
            before.fetched.map(message => message.mimeTree)
        );
        const rows = withStoreDb(dataDir, db => db.prepare('SELECT count(*) FROM message_headers').pluck().get() as number);
        assert.equal(rows, 4);
        assert.deepEqual(
            store.messages.fetchPage(user.id, inbox.id, [1, 2, 3, 4], { headerSummary: true }).map(message => message.headerSummary),
            before.fetched.map(message => summariseHeader(message.headerLines!))
        );
        store.close();
    } finally {
        fs.rmSync(dataDir, { recursive: true, force: true });
    }
});
