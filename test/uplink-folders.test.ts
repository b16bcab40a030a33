/**
 * Upstream folders end to end, against both flavours of the REAL test provider
 * (test/support/upstream.ts): today's Dovecot ("/" delimiter, no namespace prefix, SPECIAL-USE,
 * CONDSTORE, COMPRESS) and the Courier-style one (namespace "INBOX." with ".", none of those
 * extensions, no UIDNEXT in SELECT), with a real in-process gateway:
 *
 * - nested folders land as local hierarchy ("Work/Projects", never "INBOX.Work.Projects");
 * - `folders:` names as people write them: "/" form, special-use names, any case, exact
 *   server paths and "Work/*" patterns;
 * - a name that matches nothing is reported once per run in plain words, at warn and in
 *   `mailmule status`, and creates nothing locally;
 * - a run with nothing to do stays under 3 KB on the wire (counted by a link proxy), yet new
 *   mail and local flag changes still travel;
 * - an installation from before keeps the local folder its mail is in (migration 10).
 *
 * Nothing sleeps to synchronise: runs are awaited. Figures are printed with t.diagnostic().
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import { ImapFlow } from 'imapflow';
import { startGateway, makeMessage, type Gateway } from './support/gateway';
import { startUpstream, type Upstream } from './support/upstream';
import { startLinkProxy, type LinkProxy } from './support/link-proxy';
import { ALICE, aliceAccountYaml, receiveRun } from './support/uplink-account';
import { undoMigration10, withStoreDb } from './support/store';
import { Daemon } from '../src/daemon';
import { createLogger } from '../src/log';
import type { RunReport } from '../src/uplink';

const TEST_TIMEOUT = 60_000;
const CLI = path.resolve(__dirname, '..', '..', 'dist', 'src', 'cli', 'main.js');
/** What the no-op run may cost on the wire, both ways, login and logout included. */
const NO_OP_LIMIT = 3 * 1024;

type Flavour = 'dovecot' | 'courier';
const FLAVOURS: Flavour[] = ['dovecot', 'courier'];

/** A folder's server path in a flavour, from its levels: ["Work", "Projects"] is "Work/Projects" or "INBOX.Work.Projects". */
function serverPath(flavour: Flavour, ...levels: string[]): string {
    return flavour === 'courier' ? ['INBOX', ...levels].join('.') : levels.join('/');
}

interface Env {
    upstream: Upstream;
    gateway: Gateway;
    link: LinkProxy;
}

/** An upstream of `flavour` with `folders` created, a link proxy in front of its IMAP port, and a gateway whose alice syncs `config`. */
async function withEnv(flavour: Flavour, setup: { create?: string[][]; folders: (flavour: Flavour) => string[]; extraYaml?: string }, fn: (env: Env) => Promise<void>): Promise<void> {
    const upstream = await startUpstream({ flavour });
    let link: LinkProxy | undefined;
    let gateway: Gateway | undefined;
    try {
        for (const levels of setup.create ?? []) await upstream.createFolder(ALICE, serverPath(flavour, ...levels));
        link = await startLinkProxy({ targetPort: upstream.imapPort });
        gateway = await startGateway({
            users: [{ name: 'alice', password: 'pw-alice', accountsYaml: aliceAccountYaml(link.port, upstream, setup.folders(flavour)) }],
            extraYaml: setup.extraYaml
        });
        await fn({ upstream, gateway, link });
    } finally {
        await gateway?.stop().catch(() => undefined);
        await link?.close();
        await upstream.stop();
    }
}

/** Appends `count` messages to an upstream folder (its server path). */
async function appendUpstream(upstream: Upstream, folder: string, subjects: string[]): Promise<void> {
    const client = await upstream.connect(ALICE);
    try {
        for (const subject of subjects) {
            await client.append(folder, makeMessage({ to: ALICE, subject, messageId: `<${subject.replace(/\W+/g, '-')}@example.org>`, body: `Body of ${subject}.` }), [], new Date());
        }
    } finally {
        await client.logout().catch(() => client.close());
    }
}

function account(report: RunReport) {
    const figures = report.accounts.find(a => a.account === ALICE);
    assert.ok(figures, JSON.stringify(report));
    return figures;
}

/** Alice's local folders, but "Fetch full", which every run makes. */
function localPaths(gateway: Gateway): string[] {
    const user = gateway.daemon.store.users.get('alice')!;
    return gateway.daemon.store.mailboxes
        .list(user.id)
        .map(mailbox => mailbox.path)
        .filter(path => path !== 'Fetch full')
        .sort();
}

/** Sources of the local messages in `folder`, by subject. */
function localSources(gateway: Gateway, folder: string): Map<string, Buffer> {
    const store = gateway.daemon.store;
    const user = store.users.get('alice')!;
    const mailbox = store.mailboxes.get(user.id, folder);
    assert.ok(mailbox, `no local folder ${folder}; have ${localPaths(gateway).join(', ')}`);
    const out = new Map<string, Buffer>();
    withStoreDb(store, db => {
        const hashes = db.prepare('SELECT blob_hash FROM messages WHERE mailbox_id = ? ORDER BY uid').pluck().all(mailbox.id) as string[];
        for (const hash of hashes) {
            const raw = store.messages.readRaw(hash);
            const subject = /^Subject: (.*)$/m.exec(raw.toString('latin1'))?.[1]?.trim() ?? '';
            out.set(subject, raw);
        }
    });
    return out;
}

/** Upstream sources of a folder, by subject. */
async function upstreamSources(upstream: Upstream, folder: string): Promise<Map<string, Buffer>> {
    const messages = await upstream.listMessages(ALICE, folder);
    return new Map(messages.map(message => [/^Subject: (.*)$/m.exec(message.headers)?.[1]?.trim() ?? '', message.source]));
}

function assertSameMessages(local: Map<string, Buffer>, upstream: Map<string, Buffer>, what: string): void {
    assert.deepEqual([...local.keys()].sort(), [...upstream.keys()].sort(), what);
    for (const [subject, raw] of upstream) assert.ok(local.get(subject)!.equals(raw), `${what}: ${subject} byte for byte`);
}

function cli(args: string[], timeoutMs = 20_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
        const child = spawn(process.execPath, [CLI, ...args], { cwd: os.tmpdir(), stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
        child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
        const timer = setTimeout(() => {
            child.kill('SIGKILL');
            reject(new Error(`mailmule ${args.join(' ')} did not finish within ${timeoutMs} ms`));
        }, timeoutMs);
        child.on('close', code => {
            clearTimeout(timer);
            resolve({ code, stdout, stderr });
        });
    });
}

for (const flavour of FLAVOURS) {
    describe(`${flavour} upstream`, () => {
        test('nested folders land as hierarchy; names written with "/" and special-use names find their folders; each message once, byte for byte', { timeout: TEST_TIMEOUT }, async () => {
            await withEnv(flavour, { create: [['Work', 'Projects']], folders: () => ['INBOX', 'Sent', 'Work/Projects'] }, async ({ upstream, gateway }) => {
                const projects = serverPath(flavour, 'Work', 'Projects');
                const sent = serverPath(flavour, 'Sent');
                await appendUpstream(upstream, 'INBOX', ['inbox one', 'inbox two']);
                await appendUpstream(upstream, projects, ['project one', 'project two', 'project three']);
                await appendUpstream(upstream, sent, ['sent one']);

                const report = await receiveRun(gateway, 'first');
                assert.equal(report.status, 'ok', JSON.stringify(report));
                assert.deepEqual(account(report).errors, []);
                assert.equal(account(report).messagesReceived, 6);
                const paths = localPaths(gateway);
                assert.ok(paths.includes('Work/Projects'), `Work/Projects is a local folder: ${paths.join(', ')}`);
                assert.ok(!paths.some(p => p.startsWith('INBOX.') || p.includes('Work.')), `no server spelling locally: ${paths.join(', ')}`);
                assertSameMessages(localSources(gateway, 'INBOX'), await upstreamSources(upstream, 'INBOX'), 'INBOX');
                assertSameMessages(localSources(gateway, 'Work/Projects'), await upstreamSources(upstream, projects), 'Work/Projects');
                assertSameMessages(localSources(gateway, 'Sent'), await upstreamSources(upstream, sent), 'Sent');

                // Over local IMAP, Work/Projects is a child of Work.
                const client = new ImapFlow({ host: '127.0.0.1', port: gateway.imapPort, secure: false, auth: { user: 'alice', pass: 'pw-alice' }, logger: false, tls: { rejectUnauthorized: false } });
                client.on('error', () => undefined);
                await client.connect();
                try {
                    const entry = (await client.list()).find(e => e.path === 'Work/Projects');
                    assert.ok(entry, 'listed');
                    assert.equal(entry.delimiter, '/');
                    assert.deepEqual(entry.parent, ['Work']);
                } finally {
                    await client.logout().catch(() => client.close());
                }

                // A second run brings nothing twice.
                const again = await receiveRun(gateway, 'again');
                assert.equal(again.status, 'ok', JSON.stringify(again));
                assert.equal(account(again).messagesReceived, 0);
                assert.equal(localSources(gateway, 'Work/Projects').size, 3);
            });
        });

        test('names in any case, exact server paths and "Work/*" patterns', { timeout: TEST_TIMEOUT }, async () => {
            await withEnv(
                flavour,
                { create: [['Work', 'Projects'], ['Work', 'Minutes'], ['Lists']], folders: f => ['inbox', 'SENT', 'Work/*', serverPath(f, 'Lists')] },
                async ({ upstream, gateway }) => {
                    await appendUpstream(upstream, serverPath(flavour, 'Work', 'Projects'), ['project']);
                    await appendUpstream(upstream, serverPath(flavour, 'Work', 'Minutes'), ['minutes']);
                    await appendUpstream(upstream, serverPath(flavour, 'Lists'), ['list mail']);
                    await appendUpstream(upstream, serverPath(flavour, 'Sent'), ['sent mail']);
                    const report = await receiveRun(gateway, 'first');
                    assert.equal(report.status, 'ok', JSON.stringify(report));
                    assert.equal(account(report).messagesReceived, 4);
                    assert.deepEqual([...localSources(gateway, 'Work/Projects').keys()], ['project']);
                    assert.deepEqual([...localSources(gateway, 'Work/Minutes').keys()], ['minutes']);
                    assert.deepEqual([...localSources(gateway, 'Lists').keys()], ['list mail']);
                    assert.deepEqual([...localSources(gateway, 'Sent').keys()], ['sent mail']);
                }
            );
        });

        test('a name that matches nothing: reported once per run in plain words, at warn and in mailmule status; nothing created locally', { timeout: TEST_TIMEOUT }, async () => {
            await withEnv(flavour, { create: [['Work', 'Projects']], folders: () => ['INBOX', 'Work/Projekte', 'Archiv/*'] }, async ({ upstream, gateway }) => {
                await appendUpstream(upstream, 'INBOX', ['inbox mail']);
                const before = localPaths(gateway);
                const has = flavour === 'courier' ? 'INBOX, INBOX.Work.Projects, INBOX.Drafts, INBOX.Sent, INBOX.Trash' : 'Work/Projects, Drafts, Sent, Trash, Junk, INBOX';
                const expected = [`upstream folder 'Work/Projekte' not found; the account has: `, `upstream folder 'Archiv/*' matches no folder; the account has: `];
                for (const trigger of ['first', 'second']) {
                    const report = await receiveRun(gateway, trigger);
                    assert.equal(report.status, 'partial', JSON.stringify(report));
                    const errors = account(report).errors;
                    assert.equal(errors.length, 2, `once per run: ${JSON.stringify(errors)}`);
                    errors.forEach((error, i) => assert.ok(error.startsWith(expected[i]), error));
                    // Every folder of the account is named (the order is the server's).
                    for (const name of has.split(', ')) assert.ok(errors[0].includes(name), `${errors[0]} names ${name}`);
                    assert.deepEqual(localPaths(gateway), before, 'no local folder for a name that matches nothing');
                }
                assert.equal(localSources(gateway, 'INBOX').size, 1, 'the folders that were found still arrive');

                const warnings = gateway.logLines.map(line => JSON.parse(line) as { level: number; msg: string }).filter(line => line.level === 40 && line.msg.startsWith('upstream folder '));
                assert.equal(warnings.length, 4, 'two names, two runs, one warning each');

                const status = await cli(['status', '-c', gateway.configFile]);
                assert.equal(status.code, 0, status.stderr);
                assert.match(status.stdout, /^alice@upstream\.test: upstream folder 'Work\/Projekte' not found; the account has: /m, status.stdout);
            });
        });

        test('a run with nothing to do stays under 3 KB on the wire; new mail and local flag changes still travel', { timeout: TEST_TIMEOUT }, async t => {
            await withEnv(flavour, { create: [['Work', 'Projects']], folders: () => ['INBOX', 'Sent', 'Work/Projects'] }, async ({ upstream, gateway, link }) => {
                await appendUpstream(upstream, 'INBOX', ['a', 'b']);
                await appendUpstream(upstream, serverPath(flavour, 'Work', 'Projects'), ['c']);
                assert.equal((await receiveRun(gateway, 'first')).status, 'ok');

                link.reset();
                const noop = await receiveRun(gateway, 'no-op');
                assert.equal(noop.status, 'ok', JSON.stringify(noop));
                const stats = link.stats();
                const onWire = stats.bytesUp + stats.bytesDown;
                assert.equal(account(noop).bytesSent + account(noop).bytesReceived, onWire, 'the run counts what the link carried');
                assert.ok(onWire < NO_OP_LIMIT, `no-op run: ${onWire} bytes`);
                t.diagnostic(`${flavour}: no-op run over INBOX, Sent, Work/Projects: ${onWire} bytes on the wire (${stats.bytesUp} up, ${stats.bytesDown} down)`);

                // New mail in a nested folder comes down.
                await appendUpstream(upstream, serverPath(flavour, 'Work', 'Projects'), ['d']);
                const fresh = await receiveRun(gateway, 'new mail');
                assert.equal(account(fresh).messagesReceived, 1, JSON.stringify(fresh));
                assert.deepEqual([...localSources(gateway, 'Work/Projects').keys()].sort(), ['c', 'd']);

                // A local \Seen goes up although nothing changed upstream.
                const store = gateway.daemon.store;
                const user = store.users.get('alice')!;
                const inbox = store.mailboxes.get(user.id, 'INBOX')!;
                store.messages.updateFlags(user.id, inbox.id, [1], 'add', ['\\Seen']);
                assert.equal((await receiveRun(gateway, 'push')).status, 'ok');
                const seen = (await upstream.listMessages(ALICE, 'INBOX')).filter(m => m.flags.includes('\\Seen'));
                assert.equal(seen.length, 1, 'the one message marked read locally is read upstream');
            });
        });
    });
}

describe('an installation from before', () => {
    test('keeps its flat local folder (migration 10), and new mail goes there too; renamed locally, the folder is followed', { timeout: TEST_TIMEOUT }, async () => {
        const upstream = await startUpstream({ flavour: 'courier' });
        let gateway: Gateway | undefined;
        let daemon: Daemon | undefined;
        try {
            await upstream.createFolder(ALICE, 'INBOX.Work.Projects');
            await appendUpstream(upstream, 'INBOX.Work.Projects', ['old one', 'old two']);
            gateway = await startGateway({ users: [{ name: 'alice', password: 'pw-alice', accountsYaml: aliceAccountYaml(upstream.imapPort, upstream, ['INBOX', 'INBOX.Work.Projects']) }] });
            assert.equal((await receiveRun(gateway, 'first')).status, 'ok');
            await gateway.daemon.stop();

            // As the version before this one left it: the folder flat under its server name, no local_path.
            withStoreDb(path.join(gateway.dir, 'data'), db => {
                db.prepare("UPDATE mailboxes SET path = 'INBOX.Work.Projects' WHERE path = 'Work/Projects'").run();
                db.prepare("UPDATE subscriptions SET path = 'INBOX.Work.Projects' WHERE path = 'Work/Projects'").run();
                undoMigration10(db);
                db.pragma('user_version = 9');
            });

            await appendUpstream(upstream, 'INBOX.Work.Projects', ['new one']);
            const sink = new Writable({ write: (_chunk, _encoding, done) => done() });
            daemon = new Daemon(gateway.configFile, { logger: createLogger('warn', sink) });
            await daemon.start();
            // Migration 10 found where the folder's mail is (INBOX has none home: it gets its place at the run).
            assert.deepEqual([...daemon.store.sync.localPaths(ALICE)], [['INBOX.Work.Projects', 'INBOX.Work.Projects']]);
            const report = await daemon.uplink!.run({ trigger: 'after upgrade', receiveOnly: true });
            assert.equal(report.status, 'ok', JSON.stringify(report));
            const user = daemon.store.users.get('alice')!;
            const paths = daemon.store.mailboxes.list(user.id).map(mailbox => mailbox.path);
            assert.ok(!paths.includes('Work/Projects'), `no second folder: ${paths.join(', ')}`);
            assert.equal(daemon.store.mailboxes.status(user.id, 'INBOX.Work.Projects')!.messages, 3);
            assert.deepEqual([...daemon.store.sync.localPaths(ALICE)].sort(), [
                ['INBOX', 'INBOX'],
                ['INBOX.Work.Projects', 'INBOX.Work.Projects']
            ]);

            // Renamed locally (as Thunderbird would), the folder is followed there, with its mail.
            daemon.store.mailboxes.rename(user.id, 'INBOX.Work.Projects', 'Work/Projects');
            await appendUpstream(upstream, 'INBOX.Work.Projects', ['after rename']);
            assert.equal((await daemon.uplink!.run({ trigger: 'after rename', receiveOnly: true })).status, 'ok');
            assert.ok(!daemon.store.mailboxes.get(user.id, 'INBOX.Work.Projects'), 'the old name is not made again');
            assert.equal(daemon.store.mailboxes.status(user.id, 'Work/Projects')!.messages, 4);
            assert.equal(daemon.store.sync.localPaths(ALICE).get('INBOX.Work.Projects'), 'Work/Projects');
        } finally {
            await daemon?.stop().catch(() => undefined);
            await gateway?.stop().catch(() => undefined);
            await upstream.stop();
        }
    });
});
