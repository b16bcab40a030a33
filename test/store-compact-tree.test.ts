/**
 * Stored MIME trees without the root header (issue 17): the lines come back from the message file
 * at FETCH, exactly as imap-core's parser made them, for every shape of header (folded, LF or lone
 * CR line ends, 8-bit, no body, no blank line); of the root's parsed header the Content-* fields stay.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import v8 from 'node:v8';
import zlib from 'node:zlib';
import { tempDir, makeMessage } from './support/gateway';
import { withStoreDb } from './support/store';
import { Store } from '../src/store';
import { analyseMessage, type MimeNode } from '../src/store/mime';

const SHAPES: Record<string, Buffer> = {
    plain: makeMessage({ subject: 'a subject long enough to be folded onto a second line by the mail client, as they do' }),
    multipart: Buffer.from(
        'From: b@example.org\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nContent-Type: multipart/mixed;\r\n boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsmall\r\n--b--\r\n'
    ),
    'LF line ends, 8-bit': Buffer.from('From: carol@example.org\nSubject: caf\xe9\nReferences: <a@x>\n\t<b@x>\n\nline one\n', 'latin1'),
    'lone CR': Buffer.from('From: d@example.org\rSubject: cr\r\r\nbody\r\n', 'latin1'),
    'no body': Buffer.from('From: e@example.org\r\nSubject: header only\r\n'),
    'no blank line, no final line break': Buffer.from('From: f@example.org\r\nSubject: x'),
    'empty multipart, demoted': Buffer.from('From: g@example.org\r\nContent-Type: multipart/mixed; boundary="nope"\r\n\r\nno parts at all\r\n')
};

const ALL = { envelope: true, bodystructure: true, mimeTree: true, headerLines: false };

test('a tree is stored without its root header and FETCH gets the whole tree back', () => {
    const dataDir = tempDir('mailmule-compact-tree-');
    try {
        const store = new Store({ dataDir });
        const user = store.users.ensure('alice');
        const inbox = store.mailboxes.get(user.id, 'INBOX')!;
        const names = Object.keys(SHAPES);
        for (const name of names) store.messages.add(user.id, inbox.id, SHAPES[name]);
        const fetched = store.messages.fetchPage(
            user.id,
            inbox.id,
            names.map((_name, index) => index + 1),
            ALL
        );
        const stored = withStoreDb(
            dataDir,
            db => new Map((db.prepare('SELECT hash, mime_tree FROM blobs').raw().all() as [string, Buffer][]).map(([hash, tree]) => [hash, v8.deserialize(zlib.zstdDecompressSync(tree)) as MimeNode]))
        );
        names.forEach((name, index) => {
            const analysed = analyseMessage(SHAPES[name]);
            const tree = fetched[index].mimeTree!;
            assert.deepEqual(tree.header, analysed.mimeTree.header, `${name}: root header lines`);
            const contentFields = Object.fromEntries(Object.entries(analysed.mimeTree.parsedHeader).filter(([field]) => field.startsWith('content-')));
            assert.deepEqual({ ...tree, parsedHeader: {} }, { ...analysed.mimeTree, parsedHeader: {} }, `${name}: the rest of the tree`);
            assert.deepEqual(tree.parsedHeader, contentFields, `${name}: Content-* fields of the root`);
            assert.deepEqual(fetched[index].envelope, analysed.envelope, `${name}: envelope`);
            const row = stored.get(analysed.hash)!;
            assert.equal(row.header, undefined, `${name}: no root header lines stored`);
        });
        store.close();
    } finally {
        fs.rmSync(dataDir, { recursive: true, force: true });
    }
});
