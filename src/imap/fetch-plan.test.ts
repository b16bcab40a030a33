/**
 * Unit tests for FETCH's plan (src/imap/fetch-plan.ts): which columns the store reads, which items
 * are read directly, and how big a page is, for the options imap-core's own FETCH handler builds
 * from a command line (as a session hands them to onFetch).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { imapHandler } from './engine';
import { ascendingUnique, planFetch, type FetchOptions } from './fetch-plan';

// Loaded after ./engine, which sets up imap-core's environment.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const fetchCommand = require('@zone-eu/wildduck/imap-core/lib/commands/fetch.js') as { handler(this: unknown, command: unknown, callback: (err: unknown, result?: unknown) => void): void };

/** The options imap-core's FETCH handler passes to onFetch for `UID FETCH 1:* <items>`. */
function optionsOf(items: string, readOnly = true): FetchOptions {
    let options: FetchOptions | null = null;
    const connection = {
        id: 'unit',
        selected: { uidList: [1, 2, 3], mailbox: 'mailbox', path: 'INBOX', readOnly, condstoreEnabled: false },
        session: { user: { id: 'user' } },
        _server: {
            logger: { debug() {} },
            loggelf() {},
            onFetch(_mailbox: unknown, given: FetchOptions, _session: unknown, callback: (err: null, success: boolean) => void) {
                options = given;
                callback(null, true);
            }
        }
    };
    fetchCommand.handler.call(connection, imapHandler.parser(`A1 UID FETCH 1:* ${items}`), () => undefined);
    assert.ok(options, `imap-core accepted ${items}`);
    return options;
}

test('FLAGS of a folder listing: read from the mailbox index, lines written directly, big pages', () => {
    const plan = planFetch(optionsOf('(UID FLAGS)'));
    assert.deepEqual(plan.columns, { envelope: false, bodystructure: false, mimeTree: false, headerLines: false, headerSummary: false });
    assert.ok(plan.direct);
    assert.ok(plan.writeLine, 'each line written directly');
    assert.equal(plan.pageSize, 2500);
    assert.equal(plan.needsDate, false, 'no Date per message for nothing');
});

test('header fields a client lists folders by come from the header summary, in pages of 100', () => {
    const plan = planFetch(optionsOf('(UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From Subject Date)])'));
    assert.equal(plan.columns.headerSummary, true);
    assert.equal(plan.columns.headerLines, false);
    assert.equal(plan.columns.mimeTree, false);
    assert.ok(plan.direct);
    assert.equal(plan.needsSize, true);
    assert.equal(plan.pageSize, 100);
});

test('a header field outside the summary reads the header lines instead', () => {
    const plan = planFetch(optionsOf('(BODY.PEEK[HEADER.FIELDS (X-Mailer)])'));
    assert.equal(plan.columns.headerSummary, false);
    assert.equal(plan.columns.headerLines, true);
    assert.ok(plan.direct);
});

test('the whole message is its own item: no MIME tree, no line writer', () => {
    const plan = planFetch(optionsOf('(BODY.PEEK[])'));
    assert.deepEqual([...plan.wholeIndexes], [0]);
    assert.equal(plan.columns.mimeTree, false);
    assert.equal(plan.writeLine, null);
    assert.ok(plan.direct);
    assert.equal(plan.pageSize, 100);
});

test('a part, ENVELOPE or BODYSTRUCTURE goes through getQueryResponse over the stored tree', () => {
    const part = planFetch(optionsOf('(BODY.PEEK[1.2])'));
    assert.equal(part.columns.mimeTree, true);
    assert.equal(part.direct, false);
    assert.ok(part.treeQuery.some(item => item.item === 'body' && item.path === '1.2'));
    const envelope = planFetch(optionsOf('(ENVELOPE BODYSTRUCTURE)'));
    assert.equal(envelope.columns.envelope, true);
    assert.equal(envelope.columns.bodystructure, true);
    assert.equal(envelope.direct, false);
    assert.equal(envelope.needsDate, true);
});

test('BINARY items are decoded from the tree, apart from the other items', () => {
    const plan = planFetch(optionsOf('(UID BINARY.PEEK[1])'));
    assert.deepEqual([...plan.binaryIndexes], [1]);
    assert.equal(plan.columns.mimeTree, true);
    assert.equal(plan.writeLine, null);
    assert.ok(!plan.treeQuery.some(item => item.item.startsWith('binary')));
});

test('BODY[] without PEEK in a read-write mailbox marks messages seen, a page of 100 at a time', () => {
    const plan = planFetch(optionsOf('(FLAGS BODY[])', false));
    assert.equal(plan.markAsSeen, true);
    assert.equal(plan.pageSize, 100);
    assert.equal(planFetch(optionsOf('(FLAGS BODY[])', true)).markAsSeen, false, 'not in a read-only one');
});

test('ascendingUnique keeps an ascending list as it is and sorts out anything else', () => {
    const ascending = [1, 5, 9];
    assert.equal(ascendingUnique(ascending), ascending);
    assert.deepEqual(ascendingUnique([9, 1, 5, 1]), [1, 5, 9]);
    assert.deepEqual(ascendingUnique([]), []);
});
