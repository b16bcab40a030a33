/**
 * The writes part of `npm run bench:disk` (issue 17, item 2): bytes written to the device per
 * message delivered over SMTP and per message downloaded by the uplink, mailmule against the
 * stack it replaces, every stack alone on a file system of its own (bench/device-io.ts).
 *
 * - SMTP, mailmule: `mailmule start` (the systemd unit's node flags); alice submits N real
 *   messages (SpamAssassin, each with its own Message-ID, From rewritten to her address) with
 *   AUTH PLAIN to bob@mailmule.lan, a local user: each 250 comes after the commit's fsync, and
 *   mailmule files alice's Sent copy as well (one shared blob).
 * - SMTP, anchor: Postfix (submission with AUTH through Dovecot SASL, test/support/upstream.ts)
 *   delivering over LMTP into Dovecot's Maildir; counted once bob's Maildir holds all N.
 *   Postfix fsyncs each queue file before 250, Dovecot each mail file (mail_fsync=optimized).
 *   The client then APPENDs its Sent copy to Dovecot over IMAP, as Thunderbird and K-9 do after
 *   each send (mailmule files it itself in the same commit): the same outcome on both sides.
 * - Uplink, mailmule: the daemon downloads the N messages of a loopback Dovecot provider (on
 *   another file system: the provider is not measured) with `mailmule sync --receive-only`.
 * - Uplink, anchor: mbsync (FSync on, its default) pulls them into a Maildir that a local
 *   Dovecot serves, then one listing session (bench/dovecot-listing.ts) builds Dovecot's index
 *   and cache, as mailmule builds its index rows while it downloads. fetchmail → Postfix → Dovecot
 *   would also write a queue file per message: mbsync + Dovecot is the smaller anchor.
 *
 * Counted: the device's bytes after syncfs (all of it: data, metadata, journal); and write_bytes
 * summed over the processes of each stack (mailmule: the daemon; Postfix: the master and its
 * children; Dovecot: the master and its children; mbsync through a shell that reads its own
 * /proc/<pid>/io after reaping it), log writers left out. Logs are kept off the measured device
 * on both sides (mailmule's go to a pipe). For mailmule the device figure includes a WAL
 * checkpoint taken at the end, so the pages its WAL still holds are counted where they will land.
 *
 * Environment: MAILMULE_BENCH_WRITE_MESSAGES (default 1000), MAILMULE_BENCH_WRITE_SESSIONS
 * (parallel SMTP sessions, default 1: one message at a time, as a village sends).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import Database from 'better-sqlite3';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { ImapFlow } from 'imapflow';
import { HOST, MAIN, log, sleep, withTimeout, runCli, makeLocalCa, daemonNodeArgs, daemonEnvironment, startDovecot, stopChild, intEnv } from './support';
import { mountLoopFileSystem, treeIo, ioBetween, parseIo, type IoCount, type LoopFileSystem } from './device-io';
import { dovecotListing } from './dovecot-listing';
import { corpusGroup } from '../test/support/fixtures/spam-assassin';
import { writeConfig } from '../test/support/gateway';
import { assignFreePorts, startDaemon, type DaemonProcess } from '../test/support/daemon-process';
import { startUpstream, type Upstream } from '../test/support/upstream';
import { runProcess } from '../test/support/run-process';
import { readPid } from '../test/support/upstream-processes';

export const WRITE_MESSAGES = intEnv('MAILMULE_BENCH_WRITE_MESSAGES', 1000);
const SESSIONS = intEnv('MAILMULE_BENCH_WRITE_SESSIONS', 1);
const MAIL_UID = 65534;
const PASSWORD = 'bench-pass-1';
/** Processes that write logs (kept off the measured device): Postfix's postlogd, Dovecot's log. */
const LOG_WRITERS = ['postlogd', 'log'];

export interface WriteFigures {
    /** What the processes' write_bytes say (cancelled_write_bytes beside it). */
    processes: IoCount;
    /** Bytes the device wrote. */
    device: number;
}

export interface WriteResults {
    messages: number;
    messageBytes: number;
    smtp: { mailmule: WriteFigures; anchor: WriteFigures };
    uplink: { mailmule: WriteFigures; anchor: WriteFigures & { mbsync: IoCount; dovecotIndexing: number } };
}

/** N real messages, each with its own Message-ID; `from` replaces the From field and the sender-like fields are renamed. */
function messages(count: number, from: string): Buffer[] {
    const corpus = ['easy-ham-1', 'easy-ham-2', 'hard-ham-1'].flatMap(group => corpusGroup(group));
    return Array.from({ length: count }, (_, n) => {
        const text = corpus[n % corpus.length].toString('latin1');
        const end = text.search(/\r?\n\r?\n/);
        const header = (end < 0 ? text : text.slice(0, end))
            .replace(/^message-id:.*(?:\r?\n[ \t].*)*\r?\n?/gim, '')
            .replace(/^from:.*(?:\r?\n[ \t].*)*/im, `From: ${from}`)
            .replace(/^(sender|resent-from|resent-sender):/gim, 'X-Original-$1:');
        return Buffer.from(`Message-ID: <disk-writes-${n + 1}@mailmule.bench>\n${header}${end < 0 ? '' : text.slice(end)}`, 'latin1');
    });
}

/**
 * Submits `raws` over SESSIONS sessions, one message at a time in each; `afterSend`, when given,
 * runs after each 250 (the anchor's mail client filing its Sent copy).
 */
async function submit(port: number, user: string, from: string, to: string, raws: Buffer[], afterSend?: (raw: Buffer) => Promise<void>): Promise<void> {
    let next = 0;
    const session = async () => {
        const connection = new SMTPConnection({ host: HOST, port, secure: false, ignoreTLS: true, name: 'bench.client', connectionTimeout: 10000, greetingTimeout: 10000, socketTimeout: 60000 });
        connection.on('error', () => {});
        await withTimeout(new Promise<void>((resolve, reject) => connection.connect(err => (err ? reject(err) : resolve()))), 15000, 'SMTP connect');
        await withTimeout(new Promise<void>((resolve, reject) => connection.login({ user, pass: PASSWORD, method: 'PLAIN' }, err => (err ? reject(err) : resolve()))), 30000, 'SMTP AUTH');
        while (next < raws.length) {
            const raw = raws[next++];
            const info = await withTimeout(
                new Promise<SMTPConnection.SentMessageInfo>((resolve, reject) => connection.send({ from, to: [to] }, raw, (err, result) => (err ? reject(err) : resolve(result)))),
                60000,
                'SMTP send'
            );
            if (!/^250[ -]/.test(info.response)) throw new Error(`unexpected reply ${info.response}`);
            if (afterSend) await afterSend(raw);
        }
        connection.quit();
    };
    await Promise.all(Array.from({ length: SESSIONS }, session));
}

/** Waits (bounded) until `count()` has not changed for `quietMs`: the stack's background work after the run is counted too. */
async function settle(count: () => number, quietMs = 3000, limitMs = 120000): Promise<void> {
    const deadline = Date.now() + limitMs;
    let last = count();
    let since = Date.now();
    while (Date.now() < deadline && Date.now() - since < quietMs) {
        await sleep(250);
        const now = count();
        if (now !== last) [last, since] = [now, Date.now()];
    }
}

/** Counts what `work()` makes the processes of `roots()` and the device write, after they settle. */
async function measure(loop: LoopFileSystem, roots: () => number[], work: () => Promise<void>, beforeDevice?: () => void): Promise<WriteFigures> {
    const deviceBefore = loop.bytesWritten();
    const ioBefore = treeIo(roots(), LOG_WRITERS);
    await work();
    await settle(() => treeIo(roots(), LOG_WRITERS).writeBytes);
    const processes = ioBetween(ioBefore, treeIo(roots(), LOG_WRITERS));
    beforeDevice?.();
    return { processes, device: loop.bytesWritten() - deviceBefore };
}

/** A mailmule on the measured device, users given as writeConfig's; returns it with its SMTP port. */
async function startMailmule(dir: string, users: { name: string; accountsYaml?: string }[]): Promise<{ daemon: DaemonProcess; smtpPort: number; configFile: string }> {
    fs.mkdirSync(dir, { recursive: true });
    const { configFile } = writeConfig(dir, { users: users.map(user => ({ ...user, password: PASSWORD })) });
    const ports = await assignFreePorts(configFile);
    for (const user of users) runCli(['passwd', user.name, '-c', configFile], `${PASSWORD}\n`, 60000);
    makeLocalCa(configFile);
    const daemon = await startDaemon(configFile, daemonNodeArgs(), [], { env: daemonEnvironment() });
    return { daemon, smtpPort: ports[2], configFile };
}

/** A passive WAL checkpoint from another connection: the pages the WAL holds go where they will land. */
function checkpoint(dataDir: string): void {
    const db = new Database(path.join(dataDir, 'mailmule.sqlite'), { fileMustExist: true });
    try {
        db.pragma('wal_checkpoint(PASSIVE)');
    } finally {
        db.close();
    }
}

function countFiles(maildir: string): number {
    let n = 0;
    for (const sub of ['new', 'cur']) {
        try {
            n += fs.readdirSync(path.join(maildir, sub)).length;
        } catch {
            // Not made yet.
        }
    }
    return n;
}

async function waitFor(what: string, done: () => boolean, limitMs = 600000): Promise<void> {
    const deadline = Date.now() + limitMs;
    while (!done()) {
        if (Date.now() > deadline) throw new Error(`${what}: not done within ${limitMs} ms`);
        await sleep(100);
    }
}

const upstreamPids = (upstream: Upstream) =>
    [readPid(path.join(upstream.dir, 'postfix', 'spool', 'pid', 'master.pid')), readPid(path.join(upstream.dir, 'dovecot', 'run', 'master.pid'))].filter((pid): pid is number => pid !== null);

/** Keeps a stack's logs off the measured device. */
const logsElsewhere = (dir: string) => ({
    dovecotExtra: `log_path = ${dir}/dovecot.log\n`,
    postfixExtra: `maillog_file = ${dir}/postfix.log\nmaillog_file_prefixes = /\n`
});

async function smtpMailmule(loop: LoopFileSystem, count: number): Promise<WriteFigures> {
    const { daemon, smtpPort } = await startMailmule(path.join(loop.dir, 'mailmule-smtp'), [{ name: 'alice' }, { name: 'bob' }]);
    try {
        const raws = messages(count, 'Alice <alice@mailmule.lan>');
        const dataDir = path.join(loop.dir, 'mailmule-smtp', 'data');
        return await measure(
            loop,
            () => [daemon.child.pid!],
            () => submit(smtpPort, 'alice', 'alice@mailmule.lan', 'bob@mailmule.lan', raws),
            () => checkpoint(dataDir)
        );
    } finally {
        await daemon.stop();
    }
}

async function smtpAnchor(loop: LoopFileSystem, off: string, count: number): Promise<WriteFigures> {
    const users = ['alice', 'bob'].map(name => ({ address: `${name}@upstream.test`, password: PASSWORD }));
    const upstream = await startUpstream({ users, parentDir: loop.dir, ...logsElsewhere(off) });
    try {
        const raws = messages(count, 'Alice <alice@upstream.test>');
        const inbox = path.join(upstream.dir, 'dovecot', 'mail', 'upstream.test', 'bob', 'Maildir');
        return await measure(
            loop,
            () => upstreamPids(upstream),
            async () => {
                // alice's client keeps one IMAP session for its Sent copies, as a mail client does.
                const imap = new ImapFlow({ host: HOST, port: upstream.imapPort, secure: false, doSTARTTLS: false, auth: { user: 'alice@upstream.test', pass: PASSWORD }, logger: false });
                await withTimeout(imap.connect(), 30000, 'IMAP connect to Dovecot');
                try {
                    await imap.mailboxCreate('Sent').catch(() => undefined);
                    const fileSent = async (raw: Buffer) => {
                        if (!(await withTimeout(imap.append('Sent', raw, ['\\Seen']), 60000, 'APPEND to Sent'))) throw new Error('APPEND to Sent failed');
                    };
                    await submit(upstream.submissionPort, 'alice@upstream.test', 'alice@upstream.test', 'bob@upstream.test', raws, fileSent);
                } finally {
                    await imap.logout().catch(() => imap.close());
                }
                await waitFor('Postfix delivering to Dovecot', () => countFiles(inbox) >= count);
            }
        );
    } finally {
        await upstream.stop();
    }
}

/** The provider for the downloads: Dovecot on the other file system, its INBOX holding the N messages. */
async function startProvider(off: string, count: number): Promise<{ upstream: Upstream; address: string }> {
    const address = 'village@upstream.test';
    const upstream = await startUpstream({ users: [{ address, password: PASSWORD }], parentDir: off });
    const maildir = path.join(upstream.dir, 'dovecot', 'mail', 'upstream.test', 'village', 'Maildir');
    for (const sub of ['cur', 'new', 'tmp']) fs.mkdirSync(path.join(maildir, sub), { recursive: true });
    const now = Math.floor(Date.now() / 1000) - count;
    messages(count, 'Carol <carol@example.net>').forEach((raw, i) => {
        const file = path.join(maildir, 'cur', `${now + i}.M${i + 1}P1.bench:2,S`);
        fs.writeFileSync(file, raw);
        fs.utimesSync(file, now + i, now + i);
    });
    execFileSync('chown', ['-R', `${MAIL_UID}:${MAIL_UID}`, path.join(upstream.dir, 'dovecot', 'mail')], { timeout: 60000 });
    return { upstream, address };
}

async function uplinkMailmule(loop: LoopFileSystem, provider: { upstream: Upstream; address: string }, count: number): Promise<WriteFigures> {
    const account = [
        `      - address: ${provider.address}`,
        `        imap: { host: ${HOST}, port: ${provider.upstream.imapPort}, tls: none }`,
        `        smtp: { host: ${HOST}, port: ${provider.upstream.submissionPort}, tls: none }`,
        `        credentials: { password: ${PASSWORD} }`,
        '        folders: [INBOX]',
        '        maxMessageSize: 1GB',
        '        since: 3650d'
    ].join('\n');
    const dir = path.join(loop.dir, 'mailmule-uplink');
    const { daemon, configFile } = await startMailmule(dir, [{ name: 'village', accountsYaml: account }]);
    try {
        return await measure(
            loop,
            () => [daemon.child.pid!],
            async () => {
                const result = await runProcess(process.execPath, [MAIN, 'sync', '-c', configFile, '--receive-only'], { timeoutMs: 900000, cwd: dir });
                if (result.code !== 0 || !/ ok\b/.test(result.stdout)) throw new Error(`mailmule sync failed:\n${result.stdout}${result.stderr}`);
                const db = new Database(path.join(dir, 'data', 'mailmule.sqlite'), { readonly: true, fileMustExist: true });
                try {
                    const n = db.prepare("SELECT COUNT(*) FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id WHERE b.path = 'INBOX'").pluck().get() as number;
                    if (n !== count) throw new Error(`mailmule downloaded ${n} of ${count} messages`);
                } finally {
                    db.close();
                }
            },
            () => checkpoint(path.join(dir, 'data'))
        );
    } finally {
        await daemon.stop();
    }
}

async function uplinkAnchor(loop: LoopFileSystem, off: string, provider: { upstream: Upstream; address: string }, count: number): Promise<WriteResults['uplink']['anchor']> {
    const local = path.join(loop.dir, 'dovecot-local');
    fs.mkdirSync(local, { recursive: true });
    // startDovecot logs to DIR/log: keep that off the measured device.
    fs.mkdirSync(path.join(off, 'dovecot-local-log'), { recursive: true });
    fs.symlinkSync(path.join(off, 'dovecot-local-log'), path.join(local, 'log'));
    const dovecot = await startDovecot(local, [{ name: 'village', password: PASSWORD }]);
    try {
        const maildir = path.join(local, 'home', 'village', 'Maildir');
        // mbsync wants its store's Path to exist, owned by whoever runs it (the mail's owner, below).
        const folders = path.join(local, 'home', 'village', 'folders');
        fs.mkdirSync(folders);
        fs.chownSync(folders, MAIL_UID, MAIL_UID);
        const config = path.join(off, 'mbsyncrc');
        fs.writeFileSync(
            config,
            [
                'IMAPAccount provider',
                `Host ${HOST}`,
                `Port ${provider.upstream.imapPort}`,
                `User ${provider.address}`,
                `Pass ${PASSWORD}`,
                'SSLType None',
                'AuthMechs PLAIN',
                '',
                'IMAPStore remote',
                'Account provider',
                '',
                'MaildirStore local',
                `Path ${folders}/`,
                `Inbox ${maildir}`,
                'SubFolders Verbatim',
                '',
                'Channel provider',
                'Far :remote:',
                'Near :local:',
                'Patterns INBOX',
                'Create Near',
                'Sync Pull',
                'SyncState *',
                ''
            ].join('\n'),
            { mode: 0o644 }
        );
        let mbsync: IoCount = { writeBytes: 0, cancelledBytes: 0 };
        let indexingStart = 0;
        const figures = await measure(
            loop,
            () => [dovecot.child.pid!],
            async () => {
                // As the mail's owner (Dovecot will not serve root's files); the shell reads its own counters once it has reaped mbsync.
                const script = 'mbsync -c "$1" -a; rc=$?; cat /proc/$$/io; exit $rc';
                const result = await runProcess('setpriv', [`--reuid=${MAIL_UID}`, `--regid=${MAIL_UID}`, '--clear-groups', 'sh', '-c', script, 'sh', config], { timeoutMs: 900000, cwd: off });
                if (result.code !== 0) throw new Error(`mbsync failed:\n${result.stdout}${result.stderr}`);
                mbsync = parseIo(result.stdout) ?? mbsync;
                if (countFiles(maildir) !== count) throw new Error(`mbsync fetched ${countFiles(maildir)} of ${count} messages`);
                indexingStart = loop.bytesWritten();
                await dovecotListing(dovecot.port, 'village', PASSWORD);
            }
        );
        const dovecotIndexing = loop.bytesWritten() - indexingStart;
        const processes = { writeBytes: figures.processes.writeBytes + mbsync.writeBytes, cancelledBytes: figures.processes.cancelledBytes + mbsync.cancelledBytes };
        return { processes, device: figures.device, mbsync, dovecotIndexing };
    } finally {
        await stopChild(dovecot.child, 10000);
    }
}

export async function measureWrites(count = WRITE_MESSAGES): Promise<WriteResults> {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mailmule-disk-writes-'));
    fs.chmodSync(work, 0o755);
    const off = path.join(work, 'off-device');
    fs.mkdirSync(off, { mode: 0o755 });
    const loop = mountLoopFileSystem(work, 4096);
    try {
        const messageBytes = messages(count, 'x').reduce((sum, raw) => sum + raw.length, 0);
        log(`writes: ${count} messages, ext4 on a loop device at ${loop.dir}`);
        const smtp = { mailmule: await smtpMailmule(loop, count), anchor: await smtpAnchor(loop, off, count) };
        log(`writes: SMTP done (mailmule ${smtp.mailmule.device} B, Postfix + Dovecot ${smtp.anchor.device} B at the device)`);
        const provider = await startProvider(off, count);
        try {
            const uplink = { mailmule: await uplinkMailmule(loop, provider, count), anchor: await uplinkAnchor(loop, off, provider, count) };
            log(`writes: uplink done (mailmule ${uplink.mailmule.device} B, mbsync + Dovecot ${uplink.anchor.device} B at the device)`);
            return { messages: count, messageBytes, smtp, uplink };
        } finally {
            await provider.upstream.stop();
        }
    } finally {
        loop.close();
        fs.rmSync(work, { recursive: true, force: true });
    }
}

const perMessage = (bytes: number, count: number) => `${(bytes / count / 1024).toFixed(1)} KB`;

/** The results as markdown lines: one table, bytes per message, and the ratios of the aim. */
export function writesReport(r: WriteResults): string[] {
    const n = r.messages;
    const row = (what: string, f: WriteFigures) => `| ${what} | ${perMessage(f.processes.writeBytes, n)} | ${perMessage(f.processes.cancelledBytes, n)} | ${perMessage(f.device, n)} |`;
    const ratio = (a: WriteFigures, b: WriteFigures) => `${(a.device / b.device).toFixed(2)} at the device, ${(a.processes.writeBytes / b.processes.writeBytes).toFixed(2)} by write_bytes`;
    return [
        `- bytes written per message, ${n} real messages (${perMessage(r.messageBytes, n)} each on average), each stack alone on its own ext4 (loop device); SMTP in ${SESSIONS} session(s), one message at a time each`,
        '',
        '| per message | write_bytes (processes) | cancelled_write_bytes | at the device (after syncfs) |',
        '| --- | ---: | ---: | ---: |',
        row('SMTP: mailmule (INBOX delivery + Sent copy)', r.smtp.mailmule),
        row("SMTP: Postfix → LMTP → Dovecot Maildir, and the client's Sent copy APPENDed to Dovecot", r.smtp.anchor),
        row('uplink: mailmule download', r.uplink.mailmule),
        row('uplink: mbsync → Maildir, then Dovecot indexing', r.uplink.anchor),
        `| — of which mbsync | ${perMessage(r.uplink.anchor.mbsync.writeBytes, n)} | ${perMessage(r.uplink.anchor.mbsync.cancelledBytes, n)} | |`,
        `| — of which Dovecot's indexing session | | | ${perMessage(r.uplink.anchor.dovecotIndexing, n)} |`,
        '',
        `- mailmule / anchor, SMTP: **${ratio(r.smtp.mailmule, r.smtp.anchor)}**; uplink: **${ratio(r.uplink.mailmule, r.uplink.anchor)}**`
    ];
}
