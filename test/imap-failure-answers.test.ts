/**
 * A command whose storage work fails is answered for what went wrong (issue 15, issue 10: a
 * permanent problem is never reported as temporary), over real TCP to a running gateway whose
 * SQLite store and message files are made to fail for real:
 *   - disk full (SQLITE_FULL, here from max_page_count)  → NO [OVERQUOTA] Not enough disk space
 *   - database locked by another process (SQLITE_BUSY)   → NO [INUSE], and the retry succeeds
 *   - a message past a limit (MIME nested 3,000 deep)    → NO [LIMIT], for APPEND and MULTIAPPEND
 *   - anything else (a trigger's error, a missing file) → NO [SERVERBUG] with Dovecot's text
 * Each command gets exactly one tagged reply, no reply says TEMPFAIL (no RFC 5530 code, and
 * untrue for a bug), no internal text (SQL error, file path) reaches the client, and the real
 * error is logged at error level with the handler's name but not the command's arguments.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { startGateway, makeMessage, DEFAULT_USERS, type Gateway } from './support/gateway';
import { RawImapConnection, appendRaw } from './support/raw-imap-connection';
import { classifyFailure } from '../src/imap/failure';
import { MessageTooComplexError, MAX_MIME_DEPTH } from '../src/store';
import { connectionLimits, messageFilePath, newestMessageHash, orphanFiles, setConnectionLimits, tmpFiles } from './support/store';
import { nestedMultipart } from './support/fixtures/malformed-mime';

const TEST_MS = 30_000;
const WAIT_MS = 10_000;
const user = DEFAULT_USERS[0];
const SERVERBUG = /^\S+ NO \[SERVERBUG\] Internal error occurred\. Refer to server log for more information\. \[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\]$/;

let gateway: Gateway;
let dbFile: string;

before(async () => {
    gateway = await startGateway();
    dbFile = path.join(gateway.dir, 'data', 'mailmule.sqlite');
});
after(async () => {
    await gateway?.stop();
});

/** Sends one command; checks it got exactly one tagged reply (a NOOP after it has its own) and nothing said TEMPFAIL. */
async function once(connection: RawImapConnection, command: string): Promise<string> {
    const { tag, tagged } = await connection.command(command, WAIT_MS);
    assert.match((await connection.command('NOOP', WAIT_MS)).tagged, /^\S+ OK /, 'the session goes on');
    assert.equal(connection.responses.filter(r => r.text.startsWith(`${tag} `)).length, 1, `one tagged reply to ${command.slice(0, 40)}`);
    assertNoTempfail(connection);
    return tagged;
}

function assertNoTempfail(connection: RawImapConnection): void {
    const said = connection.responses.find(r => /TEMPFAIL/i.test(r.text));
    assert.equal(said, undefined, 'no reply says TEMPFAIL');
}

/** Log records of failed handlers since `from`. */
function failures(from: number): { level: number; handler: string; answer: string; line: string }[] {
    return gateway.logLines
        .slice(from)
        .map(line => ({ line, record: JSON.parse(line) as { level: number; handler?: string; answer?: string; msg?: string } }))
        .filter(({ record }) => record.msg === 'IMAP handler failed')
        .map(({ line, record }) => ({ level: record.level, handler: String(record.handler), answer: String(record.answer), line }));
}

/** A message whose multiparts nest `depth` deep: well under any size limit, past what the parser can recurse. */
test('each class of failure has its RFC 5530 code', () => {
    const errno = (code: string) => Object.assign(new Error(`${code}: /var/lib/mailmule/blobs/ab/cd`), { code });
    assert.deepEqual(classifyFailure(errno('ENOSPC')), { code: 'OVERQUOTA', text: 'Not enough disk space' });
    assert.deepEqual(classifyFailure(errno('SQLITE_FULL')), { code: 'OVERQUOTA', text: 'Not enough disk space' });
    assert.deepEqual(classifyFailure(errno('EDQUOT')), { code: 'OVERQUOTA', text: 'Not enough disk quota' });
    for (const code of ['SQLITE_BUSY', 'SQLITE_BUSY_SNAPSHOT', 'SQLITE_LOCKED']) assert.equal(classifyFailure(errno(code)).code, 'INUSE', code);
    assert.equal(classifyFailure(new MessageTooComplexError(new RangeError('Maximum call stack size exceeded'))).code, 'LIMIT');
    assert.equal(classifyFailure(errno('SQLITE_TOOBIG')).code, 'LIMIT');
    // A RangeError outside message parsing is a bug like any other.
    for (const err of [new RangeError('Maximum call stack size exceeded'), new TypeError('x is undefined'), errno('EIO'), errno('SQLITE_CORRUPT'), 'a string', null]) {
        assert.deepEqual(classifyFailure(err), { code: 'SERVERBUG' });
    }
});

test('a failure inside the server: NO [SERVERBUG] with the generic text, never the error', { timeout: TEST_MS }, async () => {
    const connection = await RawImapConnection.session(gateway.imapPort, user.name, user.password);
    const other = new Database(dbFile);
    const from = gateway.logLines.length;
    try {
        // A schema change under the daemon, as a bad migration or a damaged file would make: its
        // error text names tables and columns.
        other.exec("CREATE TRIGGER broken_insert BEFORE INSERT ON mailboxes BEGIN SELECT RAISE(ABORT, 'internal: INSERT INTO mailboxes (user_id, path) failed'); END");
        const create = await once(connection, 'CREATE private-folder-name');
        assert.match(create, SERVERBUG);
        assert.ok(!connection.responses.some(r => /INSERT|mailboxes|SQLITE/i.test(r.text)), 'no SQL reaches the client');
        const logged = failures(from);
        assert.equal(logged.length, 1);
        assert.equal(logged[0].level, 50, 'logged at error level');
        assert.equal(logged[0].handler, 'create');
        assert.equal(logged[0].answer, 'SERVERBUG');
        assert.match(logged[0].line, /INSERT INTO mailboxes/, 'the real error is in the log');
        assert.ok(!logged[0].line.includes('private-folder-name'), 'the log names the handler, not the arguments');
    } finally {
        other.exec('DROP TRIGGER IF EXISTS broken_insert');
        other.close();
        connection.destroy();
    }
    // The same command works once the cause is gone.
    const again = await RawImapConnection.session(gateway.imapPort, user.name, user.password);
    try {
        assert.match(await once(again, 'CREATE private-folder-name'), /^\S+ OK /);
    } finally {
        again.destroy();
    }
});

test('a message file gone missing: FETCH answers NO [SERVERBUG], and the file path stays in the log', { timeout: TEST_MS }, async () => {
    const connection = await RawImapConnection.session(gateway.imapPort, user.name, user.password);
    try {
        assert.match((await connection.command('CREATE lost-file')).tagged, /OK/);
        // Larger than what is kept inline (src/store/inline-messages.ts): a message with a file to lose.
        const raw = makeMessage({ subject: 'lost file', body: 'a line of text long enough to count\r\n'.repeat(2000) });
        assert.match(await appendRaw(connection, 'lost-file', raw), /OK/);
        assert.match((await connection.command('SELECT lost-file')).tagged, /OK/);
        const hash = newestMessageHash(gateway.daemon.store);
        const file = messageFilePath(gateway.daemon.store, hash);
        fs.rmSync(file);
        const from = gateway.logLines.length;
        assert.match(await once(connection, 'FETCH 1 (BODY.PEEK[])'), SERVERBUG);
        assert.ok(!connection.responses.some(r => r.text.includes(gateway.dir) || r.text.includes(hash) || /ENOENT/.test(r.text)), 'no path reaches the client');
        const logged = failures(from);
        assert.deepEqual(
            logged.map(entry => [entry.handler, entry.answer]),
            [['fetch', 'SERVERBUG']]
        );
        assert.ok(logged[0].line.includes('ENOENT'), 'the real error is in the log');
    } finally {
        connection.destroy();
    }
});

test('disk full: NO [OVERQUOTA] Not enough disk space; the next APPEND after space is freed succeeds', { timeout: TEST_MS }, async () => {
    const connection = await RawImapConnection.session(gateway.imapPort, user.name, user.password);
    const { pageCount } = connectionLimits(gateway.daemon.store);
    const from = gateway.logLines.length;
    // The database may not grow: SQLite answers a write that needs a new page as it does when the
    // disk is full, with SQLITE_FULL. (A per-connection limit: the daemon's own connection.)
    setConnectionLimits(gateway.daemon.store, { maxPageCount: pageCount });
    // Random text: the database packs what it keeps (search text, small messages), and repeated words would fit in the pages it has.
    const raw = makeMessage({ subject: 'no room', body: crypto.randomBytes(90_000).toString('base64').replace(/.{76}/g, '$& \r\n') });
    try {
        const tagged = await appendRaw(connection, 'INBOX', raw);
        assert.equal(tagged.replace(/^\S+ /, ''), 'NO [OVERQUOTA] Not enough disk space');
        assert.match((await connection.command('NOOP')).tagged, /OK/);
        assertNoTempfail(connection);
        assert.deepEqual(
            failures(from).map(entry => [entry.handler, entry.answer, entry.level]),
            [['append', 'OVERQUOTA', 50]]
        );
    } finally {
        setConnectionLimits(gateway.daemon.store, { maxPageCount: 1073741823 });
    }
    try {
        assert.match(await appendRaw(connection, 'INBOX', raw), /^\S+ OK /);
    } finally {
        connection.destroy();
    }
});

test('database locked by another process: NO [INUSE], and the same command succeeds once it is free', { timeout: TEST_MS }, async () => {
    const connection = await RawImapConnection.session(gateway.imapPort, user.name, user.password, 'INBOX');
    const { busyTimeoutMs } = connectionLimits(gateway.daemon.store);
    const other = new Database(dbFile);
    const from = gateway.logLines.length;
    try {
        assert.match(await appendRaw(connection, 'INBOX', makeMessage({ subject: 'to flag' })), /OK/);
        // Another process (mailmule import, passwd) holds the write lock; the daemon waits for it
        // busy_timeout long, shortened here so the test does not wait five seconds.
        setConnectionLimits(gateway.daemon.store, { busyTimeoutMs: 100 });
        other.prepare('BEGIN IMMEDIATE').run();
        assert.equal((await once(connection, 'STORE 1 +FLAGS (\\Flagged)')).replace(/^\S+ /, ''), 'NO [INUSE] Mail store is busy, try again later');
        assert.deepEqual(
            failures(from).map(entry => [entry.handler, entry.answer]),
            [['store', 'INUSE']]
        );
        other.prepare('ROLLBACK').run();
        assert.match(await once(connection, 'STORE 1 +FLAGS (\\Flagged)'), /^\S+ OK /);
    } finally {
        if (other.inTransaction) other.prepare('ROLLBACK').run();
        other.close();
        setConnectionLimits(gateway.daemon.store, { busyTimeoutMs });
        connection.destroy();
    }
});

test('MIME nested past 100 levels: NO [LIMIT] at any depth, for APPEND and MULTIAPPEND (nothing stored, no file left)', { timeout: TEST_MS }, async () => {
    const connection = await RawImapConnection.session(gateway.imapPort, user.name, user.password);
    const from = gateway.logLines.length;
    const depths = [MAX_MIME_DEPTH, ...Array.from({ length: 21 }, (_, i) => 1_300 + 20 * i), 3_000];
    try {
        assert.match((await connection.command('CREATE nested')).tagged, /OK/);
        const limit = 'NO [LIMIT] Message structure is too complex to store';
        // One level past the limit; 1,300 to 1,700 in steps of 20, where the parser coped and
        // (around 1,500, depending on the stack) the store's insert ran out of stack serialising
        // the tree after the file was written; 3,000, where the parser itself runs out.
        for (const depth of depths) assert.equal((await appendRaw(connection, 'nested', nestedMultipart(depth))).replace(/^\S+ /, ''), limit, `${depth} levels`);
        const nested = nestedMultipart(1_480);

        // MULTIAPPEND: a good message with the nested one; all or none (RFC 3502).
        const good = makeMessage({ subject: 'fine' });
        const tag = connection.nextTag();
        const start = connection.responses.length;
        connection.write(`${tag} APPEND nested {${good.length}}\r\n`);
        await connection.waitFor(r => r.text.startsWith('+'), 'continuation', WAIT_MS, start);
        const second = connection.responses.length;
        connection.write(good);
        connection.write(` {${nested.length}}\r\n`);
        await connection.waitFor(r => r.text.startsWith('+'), 'second continuation', WAIT_MS, second);
        connection.write(Buffer.concat([nested, Buffer.from('\r\n')]));
        const tagged = await connection.waitFor(r => r.text.startsWith(`${tag} `), `tagged reply to ${tag}`, WAIT_MS, start);
        assert.equal(tagged.text.replace(/^\S+ /, ''), limit);

        const status = await connection.command('STATUS nested (MESSAGES)');
        assert.match(status.untagged.map(r => r.text).join('\n'), /MESSAGES 0/);
        assert.match((await connection.command('NOOP')).tagged, /OK/);
        assertNoTempfail(connection);
        assert.deepEqual(
            failures(from).map(entry => [entry.handler, entry.answer]),
            [...depths, 'multiappend'].map(() => ['append', 'LIMIT'])
        );
        assert.deepEqual(orphanFiles(gateway.daemon.store), []);
        assert.deepEqual(tmpFiles(gateway.daemon.store), [], 'no temporary file left');
    } finally {
        connection.destroy();
    }
});
