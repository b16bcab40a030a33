/**
 * SIGKILL of the daemon while a group of downloaded bodies is written but not committed
 * (src/uplink/download-group.ts): nothing lost, nothing twice.
 *
 * alice's upstream INBOX (real Dovecot) holds 150 real messages (SpamAssassin easy-ham-1, unique
 * Message-IDs); `mailmule start` runs as a child process and syncs them over a shaped link (256
 * kbit/s), so that groups stay open for a while. The daemon is killed at a moment when 20
 * messages are committed and an open group's bodies are downloaded but not committed. These
 * messages are small: they are kept in the database (src/store/inline-messages.ts), so the open
 * group's bodies are in memory only, not files written ahead of the commit (a large message's
 * file would be, and the restart's sweep would move it to lost+found). After a restart and an
 * unshaped run: the local INBOX holds every upstream message exactly once, byte-identical, nothing
 * is pending, integrity_check is ok, and each file in lost+found, if any, is the content of a
 * message that is home (a copy, nothing that only lives there).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { tempDir, writeConfig } from './support/gateway';
import { startUpstream } from './support/upstream';
import { startLinkProxy } from './support/link-proxy';
import { runProcess, describeRun } from './support/run-process';
import { MAIN, assignFreePorts, startDaemon, type DaemonProcess } from './support/daemon-process';
import { sleep } from './support/wait';
import { messageBytes, withStoreDb } from './support/store';
import { corpusGroup } from './support/fixtures/spam-assassin';
import { listMessageHashes } from '../src/store/message-files';

const ALICE = 'alice@upstream.test';
const KATE = 'kate-local';
const MESSAGES = 150;

async function until(what: string, predicate: () => boolean, timeoutMs: number): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!predicate()) {
        if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
        await sleep(10);
    }
}

const sha = (raw: Buffer) => crypto.createHash('sha256').update(raw).digest('hex');

function uniqueByMessageId(messages: Buffer[], count: number): Buffer[] {
    const seen = new Set<string>();
    const chosen: Buffer[] = [];
    for (const raw of messages) {
        const head = raw.subarray(0, raw.indexOf('\n\n')).toString('latin1');
        const id = /^message-id:\s*(\S+)/im.exec(head)?.[1]?.toLowerCase();
        if (!id || seen.has(id)) continue;
        seen.add(id);
        chosen.push(raw);
        if (chosen.length === count) break;
    }
    return chosen;
}

test('SIGKILL with a group of bodies written but not committed: after a restart every message home once', { timeout: 180_000 }, async t => {
    const up = await startUpstream();
    const imapLink = await startLinkProxy({ targetPort: up.imapPort, bandwidthBps: 256_000, latencyMs: 20 });
    const dir = tempDir('mailmule-group-crash-');
    let daemon: DaemonProcess | null = null;
    try {
        for (const raw of uniqueByMessageId(corpusGroup('easy-ham-1'), MESSAGES)) await up.deliver(ALICE, raw);
        const upstreamSources = (await up.listMessages(ALICE)).map(m => sha(m.source)).sort();
        assert.equal(upstreamSources.length, MESSAGES);

        const accountsYaml = [
            `      - address: ${ALICE}`,
            `        imap: { host: 127.0.0.1, port: ${imapLink.port}, tls: none }`,
            `        smtp: { host: 127.0.0.1, port: ${up.submissionPort}, tls: none }`,
            '        credentials: { password: alice-pass }',
            '        folders: [INBOX]'
        ].join('\n');
        const { configFile } = writeConfig(dir, { users: [{ name: KATE, password: 'kate-local-pw', accountsYaml }] });
        await assignFreePorts(configFile);
        const dataDir = path.join(dir, 'data');
        const passwd = spawnSync(process.execPath, [MAIN, 'passwd', KATE, '-c', configFile], { input: 'kate-local-pw\n', timeout: 30_000, encoding: 'utf8' });
        assert.equal(passwd.status, 0, `mailmule passwd: ${passwd.stdout}${passwd.stderr}`);
        const sync = () => runProcess(process.execPath, [MAIN, 'sync', '-c', configFile, '--receive-only'], { timeoutMs: 120_000, cwd: dir });

        daemon = await startDaemon(configFile);
        const blobsDir = path.join(dataDir, 'blobs');
        const rows = () => withStoreDb(dataDir, db => (db.prepare('SELECT COUNT(*) AS n FROM blobs').get() as { n: number }).n);
        const files = () => [...listMessageHashes(blobsDir)].length;
        const first = sync();
        // Groups committed (past the first small batches, whose groups are open only briefly).
        await until('groups committed', () => rows() >= 20, 120_000);
        await daemon.kill9();
        daemon = null;
        await first;
        const atKill = { rows: rows(), files: files() };
        assert.ok(atKill.rows < MESSAGES, `killed mid-download (${atKill.rows} of ${MESSAGES} committed)`);

        imapLink.setShaping({ bandwidthBps: null, latencyMs: 0 });
        daemon = await startDaemon(configFile);
        const final = await sync();
        assert.equal(final.code, 0, describeRun('mailmule sync', { ...final, signal: null, ms: 0, timedOut: false }));
        await daemon.stop();
        daemon = null;

        const local = withStoreDb(dataDir, db => {
            assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
            return {
                hashes: (db.prepare("SELECT m.blob_hash AS h FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id WHERE b.path = 'INBOX'").all() as { h: string }[]).map(r => r.h),
                pending: (db.prepare('SELECT COUNT(*) AS n FROM sync_pending').get() as { n: number }).n,
                known: new Set((db.prepare('SELECT hash FROM blobs').all() as { hash: string }[]).map(r => r.hash))
            };
        });
        assert.equal(local.pending, 0, 'nothing pending');
        const localSources = local.hashes.map(hash => sha(messageBytes(dataDir, hash)!)).sort();
        assert.deepEqual(localSources, upstreamSources, 'every upstream message home once, byte-identical');
        const lostFound = path.join(dataDir, 'lost+found');
        const swept = fs.existsSync(lostFound) ? fs.readdirSync(lostFound) : [];
        for (const hash of swept) assert.ok(local.known.has(hash), `${hash} in lost+found is home too`);
        t.diagnostic(`killed with ${atKill.rows} committed (${atKill.files} message files); ${swept.length} in lost+found; all ${MESSAGES} home once`);
    } finally {
        if (daemon) await daemon.kill9().catch(() => undefined);
        await imapLink.close();
        await up.stop();
        fs.rmSync(dir, { recursive: true, force: true });
    }
});
