import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLogger } from './index';
import { formatLine, isJournalStream, journalLines, prettyLines, resolveFormat, syslogPriority } from './format';

/** What a logger writes to a sink, line by line. */
function capture(format: 'json' | 'journal' | 'pretty', level = 'trace') {
    const lines: string[] = [];
    const sink = new Writable({
        write(chunk: Buffer, _encoding, done) {
            lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
            done();
        }
    });
    return { logger: createLogger(level, sink, format), lines };
}

test('each pino level carries its journald priority', () => {
    assert.deepEqual([10, 20, 30, 40, 50, 60].map(syslogPriority), [7, 7, 6, 4, 3, 2]);
    const { logger, lines } = capture('journal');
    logger.trace('t');
    logger.debug('d');
    logger.info('i');
    logger.warn('w');
    logger.error('e');
    logger.fatal('f');
    assert.deepEqual(lines, ['<7>t', '<7>d', '<6>i', '<4>w', '<3>e', '<2>f']);
});

test('journal lines: component first, fields as key=value, no time stamp; every line of a stack keeps the prefix', () => {
    const { logger, lines } = capture('journal');
    const child = logger.child({ component: 'uplink' });
    child.warn({ account: 'amina@example.com', error: 'connection refused', run: 12 }, 'receiving failed');
    const err = new Error('boom');
    child.error({ err: { message: err.message, code: 'EBOOM', stack: err.stack } }, 'uplink run failed');
    child.info('two\nlines');
    assert.equal(lines[0], '<4>uplink: receiving failed  account=amina@example.com error="connection refused" run=12');
    assert.equal(lines[1], '<3>uplink: uplink run failed  err={"message":"boom","code":"EBOOM"}');
    assert.ok(lines.length > 4, 'the stack follows');
    const stackLines = lines.slice(2, -2);
    assert.ok(stackLines.length >= 1);
    for (const line of stackLines) assert.match(line, /^<3> {4}at /);
    assert.deepEqual(lines.slice(-2), ['<6>uplink: two', '<6>lines']);
});

test('secrets stay redacted in every format', () => {
    for (const format of ['json', 'journal', 'pretty'] as const) {
        const { logger, lines } = capture(format);
        logger.info({ account: { address: 'a@b.c', credentials: { password: 'hunter2' } }, password: 'hunter3', auth: { pass: 'hunter4' } }, 'login');
        assert.equal(lines.length, 1);
        assert.doesNotMatch(lines[0], /hunter/, `${format}: ${lines[0]}`);
        assert.match(lines[0], /\[redacted\]/);
    }
});

test('pretty lines: time, level, message, fields; no colour into a pipe', () => {
    const line = prettyLines({ level: 40, time: '2026-12-02T10:04:31.000Z', msg: 'sending failed', component: 'uplink', account: 'a@b.c' });
    assert.match(line, /^\d\d:\d\d:\d\d WARN {2}uplink: sending failed {2}account=a@b\.c\n$/);
    const { logger, lines } = capture('pretty');
    logger.info({ users: 2, imap: ['127.0.0.1:1143/starttls'] }, 'mailmule started');
    assert.match(lines[0], /^\d\d:\d\d:\d\d INFO {2}mailmule started {2}users=2 imap=\["127\.0\.0\.1:1143\/starttls"\]$/);
    assert.doesNotMatch(lines[0], /\x1b/);
    assert.match(prettyLines({ level: 50, msg: 'x' }, { colour: true }), /\x1b\[31mERROR\x1b\[0m x/);
});

test('json stays pino JSON; a line that is not JSON passes through', () => {
    const { logger, lines } = capture('json');
    logger.info({ a: 1 }, 'hello');
    const record = JSON.parse(lines[0]) as Record<string, unknown>;
    assert.equal(record.msg, 'hello');
    assert.equal(record.level, 30);
    assert.equal(formatLine('not json\n', 'journal'), 'not json\n');
    assert.equal(journalLines({ level: 30, msg: 'a value with "quotes"', k: 'x y' }), '<6>a value with "quotes"  k="x y"\n');
});

test('auto: the journal only when JOURNAL_STREAM names this very file; else json for a file', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailmule-logfmt-'));
    const fd = fs.openSync(path.join(dir, 'out'), 'w');
    const other = fs.openSync(path.join(dir, 'other'), 'w');
    try {
        const stat = fs.fstatSync(fd);
        const env = { JOURNAL_STREAM: `${stat.dev}:${stat.ino}` };
        assert.equal(isJournalStream(fd, env), true);
        assert.equal(resolveFormat('auto', fd, env), 'journal');
        // Inherited by a child whose output goes elsewhere: not the journal.
        assert.equal(isJournalStream(other, env), false);
        assert.equal(resolveFormat('auto', other, env), 'json');
        assert.equal(resolveFormat('auto', fd, {}), 'json');
        assert.equal(resolveFormat('pretty', fd, env), 'pretty');
    } finally {
        fs.closeSync(fd);
        fs.closeSync(other);
        fs.rmSync(dir, { recursive: true, force: true });
    }
});
