/**
 * Crash safety of SMTP submission: a 250 is a promise that survives `kill -9`.
 *
 * The daemon runs as a child process (`mailmule start`). Each round submits up to 500 messages
 * (unique Message-ID, two external recipients, from alice's upstream address) over 20 parallel
 * nodemailer SMTP connections (each one AUTH PLAIN, then MAIL/RCPT/DATA in a loop), and
 * SIGKILLs the daemon the moment the K-th 250 arrives, K drawn from a seeded generator in
 * [20, 480]. Replies already on their way are still read and count as accepted. Then the daemon
 * is restarted on the same data directory (its start-up recovery runs), must accept a new
 * message, is stopped with SIGTERM, and the store is inspected with the daemon gone:
 *
 *   - every Message-ID that got a 250 is in the queue exactly once (with the queue id the 250
 *     named, both recipients, and a Sent copy);
 *   - no Message-ID is in the queue or in Sent twice (accepted or not);
 *   - every queue row's and every blob row's file exists and hashes to its name (no torn file),
 *     no file in blobs/ lacks a row, tmp/ is empty;
 *   - PRAGMA integrity_check and foreign_key_check are clean.
 *
 * The three rounds share one data directory, so later rounds also check that earlier crashes
 * left nothing that breaks the next one. A separate test kills the daemon while a 5 MB message
 * is half-way through DATA, and once right after its final dot.
 *
 * SIGKILL stops the process, not the machine: the page cache survives, so these tests show that
 * no crash point leaves a torn or half-committed submission, not that the fsyncs reach the disk
 * (that part is the ordering in MessageFiles (src/store/message-files.ts) and synchronous=FULL).
 *
 * MAILMULE_CRASH_SEEDS=7,8,9 picks other seeds (the kill points are printed).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import Database from 'better-sqlite3';
import { MAIN, killAllDaemons, setup as setupDaemon, startDaemon, type DaemonProcess, type Setup } from './support/daemon-process';
import { sleep, withTimeout } from './support/wait';
import { Store, normaliseMessageId } from '../src/store';
import { messageFilePath, messageFiles } from './support/store';
import { unpackRaw } from '../src/store/inline-messages';
import { rng } from './support/fixtures/mail-corpus';
import { upstreamAccount } from './support/gateway';
import { beginData, loggedIn } from './support/raw-smtp';

const HOST = '127.0.0.1';
const PASSWORD = 'alice-crash-pw';
const FROM = 'alice@upstream.test';
const ACCOUNTS_YAML = upstreamAccount(FROM);
const MESSAGES_PER_ROUND = 500;
const CONNECTIONS = 20;
const SEEDS = (process.env.MAILMULE_CRASH_SEEDS ?? '7,10,4').split(',').map(Number);

// ------------------------------------------------------------------ helpers

function makeRaw(messageId: string, index: number, bodyBytes: number, random: () => number): Buffer {
    const words: string[] = [];
    let length = 0;
    while (length < bodyBytes) {
        const word = Math.floor(random() * 36 ** 6).toString(36);
        words.push(word);
        length += word.length + 1;
    }
    const body = words.join(' ').replace(/(.{1,72})(\s|$)/g, '$1\r\n');
    return Buffer.from(
        [
            `From: Alice <${FROM}>`,
            `To: Rcpt One <one-${index}@example.net>, two@example.org`,
            `Subject: crash test ${index}`,
            'Date: Mon, 23 Nov 2026 10:00:00 +0000',
            `Message-ID: ${messageId}`,
            'MIME-Version: 1.0',
            'Content-Type: text/plain; charset=utf-8',
            '',
            body
        ].join('\r\n')
    );
}

function connectSmtp(port: number): Promise<SMTPConnection> {
    const connection = new SMTPConnection({
        host: HOST,
        port,
        secure: false,
        ignoreTLS: true,
        connectionTimeout: 10000,
        greetingTimeout: 10000,
        socketTimeout: 20000
    });
    // Errors also reach the callbacks; without a listener an 'error' event would throw.
    connection.on('error', () => {});
    return new Promise((resolve, reject) => {
        connection.connect(err => {
            if (err) return reject(err);
            connection.login({ user: 'alice', pass: PASSWORD, method: 'PLAIN' }, loginErr => (loginErr ? reject(loginErr) : resolve(connection)));
        });
    });
}

function sendOne(connection: SMTPConnection, to: string[], raw: Buffer): Promise<SMTPConnection.SentMessageInfo> {
    return new Promise((resolve, reject) => connection.send({ from: FROM, to }, raw, (err, info) => (err ? reject(err) : resolve(info))));
}

interface Accepted {
    messageId: string;
    queueId: number;
}

interface RoundResult {
    killAt: number;
    attempted: number;
    accepted: Accepted[];
    failures: number;
}

/**
 * Submits up to MESSAGES_PER_ROUND messages over CONNECTIONS connections; SIGKILLs the daemon
 * when the killAt-th 250 arrives. Every 250 counts as accepted, including those read after the kill.
 */
async function submitAndKill(daemon: DaemonProcess, port: number, round: string, killAt: number, random: () => number): Promise<RoundResult> {
    const accepted: Accepted[] = [];
    let next = 0;
    let failures = 0;
    let killed = false;

    const loop = async (): Promise<void> => {
        let connection: SMTPConnection;
        try {
            connection = await connectSmtp(port);
        } catch {
            // Only possible once the daemon is gone (a few connections may still be opening then).
            assert.ok(killed, 'connecting and AUTH work while the daemon runs');
            return;
        }
        try {
            while (!killed && next < MESSAGES_PER_ROUND) {
                const index = next++;
                const messageId = `<crash-${round}-${index}-${crypto.randomBytes(6).toString('hex')}@upstream.test>`;
                const raw = makeRaw(messageId, index, 600 + Math.floor(random() * 6000), random);
                let info: SMTPConnection.SentMessageInfo;
                try {
                    info = await sendOne(connection, [`one-${index}@example.net`, 'two@example.org'], raw);
                } catch (err) {
                    failures++;
                    assert.ok(killed, `submission failed while the daemon was running: ${(err as Error).message}`);
                    return;
                }
                const match = /^250 .*queued as (\d+)/.exec(info.response);
                assert.ok(match, `unexpected reply: ${info.response}`);
                accepted.push({ messageId, queueId: Number(match[1]) });
                if (accepted.length === killAt && !killed) {
                    killed = true;
                    daemon.child.kill('SIGKILL');
                }
            }
        } finally {
            connection.close();
        }
    };
    await withTimeout(Promise.all(Array.from({ length: CONNECTIONS }, loop)), 45000, 'submission round');
    return { killAt, attempted: next, accepted, failures };
}

function sha256File(file: string): string {
    return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** Invariants of a stopped daemon's data directory; `accepted` are the Message-IDs that got a 250. */
function checkStore(dataDir: string, accepted: Accepted[]): { queueRows: number; sentRows: number; blobFiles: number } {
    // integrity_check through the store, as an operator would (the daemon is stopped).
    const store = new Store({ dataDir });
    try {
        assert.equal(store.integrityCheck(), 'ok', 'PRAGMA integrity_check');
    } finally {
        store.close();
    }
    const db = new Database(path.join(dataDir, 'mailmule.sqlite'), { readonly: true, fileMustExist: true });
    try {
        assert.deepEqual(db.pragma('foreign_key_check'), [], 'PRAGMA foreign_key_check');
        const queue = db.prepare('SELECT id, message_id AS messageId, blob_hash AS hash, size, state FROM queue ORDER BY id').all() as {
            id: number;
            messageId: string | null;
            hash: string;
            size: number;
            state: string;
        }[];
        const queueById = new Map<string, typeof queue>();
        for (const row of queue) {
            assert.ok(row.messageId, `queue row ${row.id} has a Message-ID`);
            const list = queueById.get(row.messageId) ?? [];
            list.push(row);
            queueById.set(row.messageId, list);
        }
        const twice = [...queueById].filter(([, rows]) => rows.length > 1).map(([id, rows]) => `${id} (queue ids ${rows.map(r => r.id).join(', ')})`);
        assert.deepEqual(twice, [], 'no Message-ID is queued twice');

        const sentCounts = new Map<string, number>();
        const sentRows = db
            .prepare(
                "SELECT m.message_id AS messageId FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id JOIN users u ON u.id = mb.user_id WHERE u.name = 'alice' AND mb.special_use = '\\Sent'"
            )
            .all() as { messageId: string | null }[];
        for (const row of sentRows) sentCounts.set(row.messageId ?? '', (sentCounts.get(row.messageId ?? '') ?? 0) + 1);
        const sentTwice = [...sentCounts].filter(([, n]) => n > 1).map(([id]) => id);
        assert.deepEqual(sentTwice, [], 'Sent holds no message twice');

        const recipients = db.prepare('SELECT address FROM queue_recipients WHERE queue_id = ? ORDER BY rowid').pluck();
        const missing: string[] = [];
        for (const item of accepted) {
            const id = normaliseMessageId(item.messageId);
            const rows = queueById.get(id);
            if (!rows) {
                missing.push(id);
                continue;
            }
            assert.equal(rows[0].id, item.queueId, `${id}: the queue id the 250 named`);
            assert.equal(rows[0].state, 'queued', `${id}: still queued`);
            const index = /^<crash-[^-]+-(\d+)-/.exec(id)?.[1];
            if (index !== undefined) assert.deepEqual(recipients.all(rows[0].id), [`one-${index}@example.net`, 'two@example.org'], `${id}: envelope recipients`);
            assert.equal(sentCounts.get(id), 1, `${id}: exactly one Sent copy`);
        }
        assert.deepEqual(missing, [], 'every Message-ID that got a 250 is queued');

        // Messages: every row's bytes are whole (hash to its name), in the row (a small message, src/store/inline-messages.ts)
        // or in its file; nothing in blobs/ lacks a row, tmp/ is empty.
        const blobRows = db.prepare('SELECT hash, size, raw FROM blobs').all() as { hash: string; size: number; raw: Buffer | null }[];
        const known = new Set(blobRows.map(row => row.hash));
        for (const row of queue) assert.ok(known.has(row.hash), `queue row ${row.id}: blob row exists`);
        for (const row of blobRows) {
            if (row.raw) {
                const raw = unpackRaw(row.raw);
                assert.equal(raw.length, row.size, `inline message ${row.hash} has its full size`);
                assert.equal(crypto.createHash('sha256').update(raw).digest('hex'), row.hash, `inline message ${row.hash} hashes to its name`);
                continue;
            }
            const file = messageFilePath(dataDir, row.hash);
            assert.ok(fs.existsSync(file), `blob file ${row.hash} exists`);
            assert.equal(fs.statSync(file).size, row.size, `blob file ${row.hash} has its full size`);
            assert.equal(sha256File(file), row.hash, `blob file ${row.hash} hashes to its name`);
        }
        const files = messageFiles(dataDir);
        assert.deepEqual(
            files.filter(name => !known.has(name)),
            [],
            'no file in blobs/ without a row'
        );
        assert.deepEqual(fs.readdirSync(path.join(dataDir, 'tmp')), [], 'tmp/ is empty');
        return { queueRows: queue.length, sentRows: sentRows.length, blobFiles: files.length };
    } finally {
        db.close();
    }
}

/** Restart on the same data dir, prove the daemon works, stop it cleanly. */
async function restartCheckStop(s: Setup, tag: string): Promise<Accepted> {
    const daemon = await startDaemon(s.configFile);
    const connection = await connectSmtp(s.smtpPort);
    const messageId = `<after-${tag}-${crypto.randomBytes(6).toString('hex')}@upstream.test>`;
    const info = await sendOne(connection, ['one-0@example.net', 'two@example.org'], makeRaw(messageId, 0, 500, rng(99)));
    connection.close();
    const match = /^250 .*queued as (\d+)/.exec(info.response);
    assert.ok(match, `the restarted daemon accepts mail: ${info.response}`);
    assert.equal(await daemon.stop(), 0, 'the restarted daemon stops cleanly on SIGTERM');
    return { messageId, queueId: Number(match[1]) };
}

// ------------------------------------------------------------------ tests

let shared: Setup;
const allAccepted: Accepted[] = [];

before(async () => {
    assert.ok(fs.existsSync(MAIN), `${MAIN} is missing: run npm run build`);
    shared = await setupDaemon({ users: [{ name: 'alice', password: PASSWORD, accountsYaml: ACCOUNTS_YAML }], prefix: 'mailmule-crash-' });
});

after(async () => {
    await killAllDaemons();
    if (shared && !process.env.MAILMULE_CRASH_KEEP) fs.rmSync(shared.dir, { recursive: true, force: true });
});

for (const [roundIndex, seed] of SEEDS.entries()) {
    test(`kill -9 after a seeded number of 250s (round ${roundIndex + 1}, seed ${seed})`, { timeout: 60000 }, async t => {
        const random = rng(seed);
        const killAt = 20 + Math.floor(random() * 461); // 20..480
        const daemon = await startDaemon(shared.configFile);
        const result = await submitAndKill(daemon, shared.smtpPort, `r${roundIndex + 1}s${seed}`, killAt, random);
        await daemon.kill9();
        assert.equal(daemon.child.signalCode, 'SIGKILL', 'the daemon died of SIGKILL');
        assert.ok(result.accepted.length >= killAt, 'the kill came after killAt 250s');
        allAccepted.push(...result.accepted);

        allAccepted.push(await restartCheckStop(shared, `r${roundIndex + 1}`));
        const figures = checkStore(shared.dataDir, allAccepted);
        t.diagnostic(
            `seed ${seed}: SIGKILL at the ${killAt}th 250; ${result.accepted.length} got 250 (${result.accepted.length - killAt} read after the kill), ` +
                `${result.failures} failed with the connection, ${result.attempted} started; queue now ${figures.queueRows} rows ` +
                `(${figures.queueRows - allAccepted.length} committed without a 250 reaching the client), Sent ${figures.sentRows}, blob files ${figures.blobFiles}`
        );
    });
}

/** Bytes the process has read so far (all read syscalls, sockets included); null when /proc says nothing. */
function readBytes(pid: number): number | null {
    try {
        const match = /^rchar:\s*(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/io`, 'utf8'));
        return match ? Number(match[1]) : null;
    } catch {
        return null;
    }
}

function bigMessage(messageId: string): Buffer {
    const random = rng(42);
    const head = Buffer.from([`From: ${FROM}`, 'To: big@example.net', 'Subject: five megabytes', `Message-ID: ${messageId}`, 'MIME-Version: 1.0', 'Content-Type: text/plain', '', ''].join('\r\n'));
    const lines: string[] = [];
    let size = head.length;
    while (size < 5 * 1024 * 1024) {
        let line = '';
        while (line.length < 76) line += Math.floor(random() * 36 ** 6).toString(36);
        lines.push(line.slice(0, 76));
        size += 78;
    }
    return Buffer.concat([head, Buffer.from(lines.join('\r\n') + '\r\n')]);
}

test('kill -9 while a 5 MB message is in DATA leaves no queue row and no file', { timeout: 60000 }, async t => {
    const s = await setupDaemon({ users: [{ name: 'alice', password: PASSWORD, accountsYaml: ACCOUNTS_YAML }], prefix: 'mailmule-crash-' });
    try {
        for (const phase of ['mid-DATA', 'after the final dot'] as const) {
            const daemon = await startDaemon(s.configFile);
            const pid = daemon.child.pid!;
            const messageId = `<big-${phase === 'mid-DATA' ? 'mid' : 'dot'}-${crypto.randomBytes(6).toString('hex')}@upstream.test>`;
            const raw = bigMessage(messageId);
            // A raw client: nodemailer does not stop half-way through DATA.
            const client = await loggedIn(s.smtpPort, 'alice', PASSWORD);
            await beginData(client, FROM, ['big@example.net'], ` SIZE=${raw.length}`);
            let got250 = false;
            if (phase === 'mid-DATA') {
                const half = raw.subarray(0, Math.floor(raw.length / 2));
                const before = readBytes(pid);
                await client.write(half);
                // Wait (bounded) until the daemon has read the half, so it dies holding a partial message.
                const deadline = Date.now() + 10000;
                while (before !== null && (readBytes(pid) ?? Infinity) - before < half.length && Date.now() < deadline) await sleep(5);
                if (before === null) await sleep(300);
                await daemon.kill9();
            } else {
                // The whole message and the dot, then kill as soon as the bytes are handed to the kernel:
                // the daemon is then parsing it, writing its file or committing. Either outcome is fine,
                // as long as it is all or nothing.
                await client.write(Buffer.concat([raw, Buffer.from('.\r\n')]));
                const reply = client.reply(2000).then(
                    answer => {
                        got250 = answer.code === 250;
                    },
                    () => {}
                );
                await daemon.kill9();
                await reply;
            }
            client.destroy();
            const restarted = await startDaemon(s.configFile);
            assert.equal(await restarted.stop(), 0);
            const id = normaliseMessageId(messageId);
            const db = new Database(path.join(s.dataDir, 'mailmule.sqlite'), { readonly: true });
            const rows = db.prepare('SELECT id, blob_hash AS hash, size FROM queue WHERE message_id = ?').all(id) as { id: number; hash: string; size: number }[];
            db.close();
            if (phase === 'mid-DATA') {
                assert.deepEqual(rows, [], 'no queue row for a message cut off in DATA');
            } else {
                assert.ok(rows.length <= 1, 'queued at most once');
                if (got250) assert.equal(rows.length, 1, 'a 250 means queued');
                if (rows.length) assert.ok(rows[0].size >= raw.length, 'the queued copy is the whole message (plus Received)');
            }
            // No row for it means no file for it either; every file is whole and referenced.
            checkStore(s.dataDir, []);
            t.diagnostic(`${phase}: ${rows.length ? `queued (${got250 ? 'with' : 'without'} a 250 reaching the client)` : 'not queued'}; blobs/ and tmp/ clean`);
        }
    } finally {
        fs.rmSync(s.dir, { recursive: true, force: true });
    }
});
