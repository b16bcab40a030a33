/**
 * What the benchmarks share: logging, child processes that are always cleaned up, waiting for an
 * IMAP or SMTP greeting, memory figures from /proc, a throw-away Dovecot on loopback (the anchor), the
 * mailmule CLI, its config files and its daemon (under the node flags of the shipped unit), lines
 * describing the machine, and the results file.
 *
 * Free ports and bounded waits are the tests' own (test/support/ports.ts and wait.ts), so that
 * tests and benchmarks have one copy of each.
 *
 * Everything listens on and connects to 127.0.0.1 only. Every wait is bounded.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync, execFileSync, type ChildProcess } from 'node:child_process';
import { MeteredImapClient } from './metered-imap-client';
import { freePort } from '../test/support/ports';
import { sleep, withTimeout } from '../test/support/wait';

export { freePort, sleep, withTimeout };

export const ROOT = path.resolve(__dirname, '..', '..');
export const MAIN = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');

/**
 * Node flags for the mailmule daemon under benchmark: MAILMULE_BENCH_NODE_ARGS when set ("none"
 * for no flags), else the flags the shipped systemd unit (systemd/mailmule.service) starts it
 * with, so the benchmarks measure the daemon as it runs on the Pi. Node 24 sizes the young
 * generation from the machine's memory: on this 24 GB VM a daemon without flags peaks near twice
 * the RSS of one with the unit's --max-semi-space-size.
 */
export function daemonNodeArgs(): string[] {
    const fromEnv = process.env.MAILMULE_BENCH_NODE_ARGS;
    if (fromEnv !== undefined && fromEnv.trim()) {
        return fromEnv.trim() === 'none' ? [] : fromEnv.trim().split(/\s+/);
    }
    const unit = fs.readFileSync(path.join(ROOT, 'systemd', 'mailmule.service'), 'utf8');
    const execStart = /^ExecStart=(.*)$/m.exec(unit);
    if (!execStart) throw new Error('systemd/mailmule.service has no ExecStart line');
    const words = execStart[1].trim().split(/\s+/);
    const script = words.findIndex(word => word.endsWith('main.js'));
    return words.slice(1, script).filter(word => word.startsWith('--'));
}
/**
 * The environment for the mailmule daemon under benchmark: this process's, plus the glibc
 * allocator settings (MALLOC_*) of the shipped systemd unit's Environment= lines, which change its
 * RSS as the node flags do. MAILMULE_BENCH_NODE_ARGS=none leaves them out too.
 */
export function daemonEnvironment(): NodeJS.ProcessEnv {
    if (process.env.MAILMULE_BENCH_NODE_ARGS?.trim() === 'none') return process.env;
    const unit = fs.readFileSync(path.join(ROOT, 'systemd', 'mailmule.service'), 'utf8');
    const env = { ...process.env };
    for (const [, name, value] of unit.matchAll(/^Environment=(MALLOC_\w+)=(\S+)$/gm)) env[name] = value;
    return env;
}
export const HOST = '127.0.0.1';
/** The uid Dovecot's users run as (nobody). */
const MAIL_UID = 65534;

/** "[bench:smtp]" for dist/bench/smtp.js: which benchmark a log line is from. */
const LOG_PREFIX = process.argv[1] ? `[bench:${path.basename(process.argv[1], '.js')}]` : '[bench]';

/** A progress line on stderr (stdout is left to the results). */
export function log(line: string): void {
    process.stderr.write(`${LOG_PREFIX} ${line}\n`);
}

/** The 1, 5 and 15 minute load averages, as a benchmark prints them beside its figures. */
export function loadAverage(): string {
    return os
        .loadavg()
        .map(value => value.toFixed(2))
        .join(' ');
}
export const fmtMB = (bytes: number) => (bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} KB` : `${(bytes / 1024 / 1024).toFixed(1)} MB`);

/** The middle value (the mean of the two middle ones for an even count). */
export function median(values: number[]): number {
    const sorted = [...values].sort((a, b) => a - b);
    const mid = Math.floor(sorted.length / 2);
    return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

// ------------------------------------------------------------------ child processes

const children = new Set<ChildProcess>();

export function killAll(signal: NodeJS.Signals): void {
    for (const child of children) {
        if (child.exitCode === null && child.signalCode === null && child.pid) {
            try {
                process.kill(child.pid, signal);
            } catch {
                // Already gone.
            }
        }
    }
}

process.on('exit', () => killAll('SIGKILL'));
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
        log(`${signal}: stopping the servers`);
        killAll('SIGTERM');
        setTimeout(() => process.exit(130), 2000).unref();
    });
}

export function track(child: ChildProcess): ChildProcess {
    children.add(child);
    child.once('exit', () => children.delete(child));
    return child;
}

/** SIGTERM, wait up to `ms`, then SIGKILL. */
export async function stopChild(child: ChildProcess, ms = 10000): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>(resolve => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = sleep(ms).then(() => 'timeout');
    if ((await Promise.race([exited.then(() => 'exited'), timer])) === 'timeout') {
        log(`pid ${child.pid} did not stop within ${ms} ms: SIGKILL`);
        child.kill('SIGKILL');
        await Promise.race([exited, sleep(5000)]);
    }
}

/** Keeps the last lines a child wrote, for error messages. */
export function tail(child: ChildProcess, lines: string[], max = 50, onLine?: (line: string) => void): void {
    for (const stream of [child.stdout, child.stderr]) {
        let rest = '';
        stream?.on('data', (chunk: Buffer) => {
            const parts = (rest + chunk.toString('utf8')).split('\n');
            rest = parts.pop() ?? '';
            for (const line of parts) {
                lines.push(line);
                if (lines.length > max) lines.shift();
                onLine?.(line);
            }
        });
    }
}

/** Waits until `port` sends an IMAP greeting (or `ready()` says so), the child dies, or time runs out. */
export async function waitForImap(name: string, port: number, child: ChildProcess, lines: string[], ready: () => boolean, timeoutMs = 60000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
        if (child.exitCode !== null || child.signalCode !== null) {
            throw new Error(`${name} exited (${child.exitCode ?? child.signalCode}) before listening:\n${lines.join('\n')}`);
        }
        if (ready()) return;
        try {
            const { client, greeting } = await MeteredImapClient.connect(HOST, port, 2000);
            await client.close();
            if (greeting.startsWith('* OK')) return;
        } catch {
            // Not yet.
        }
        await sleep(100);
    }
    throw new Error(`${name} did not accept IMAP connections on ${HOST}:${port} within ${timeoutMs} ms:\n${lines.join('\n')}`);
}

/** Waits until `port` greets with 220, the check says the server died, or time runs out. */
export async function waitForSmtp(name: string, port: number, dead: () => string | null, lines: () => string[], timeoutMs = 60000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
        const why = dead();
        if (why) throw new Error(`${name} ${why} before listening:\n${lines().join('\n')}`);
        const greeting = await new Promise<string>(resolve => {
            const socket = net.connect(port, HOST);
            let text = '';
            const done = (value: string) => {
                socket.destroy();
                resolve(value);
            };
            socket.setTimeout(2000, () => done(''));
            socket.on('data', chunk => {
                text += chunk.toString('latin1');
                if (text.includes('\r\n')) done(text);
            });
            socket.on('error', () => done(''));
        });
        if (greeting.startsWith('220')) return;
        await sleep(100);
    }
    throw new Error(`${name} did not greet on ${HOST}:${port} within ${timeoutMs} ms:\n${lines().join('\n')}`);
}

// ------------------------------------------------------------------ memory

export function readStatus(pid: number): Record<string, string> {
    const out: Record<string, string> = {};
    try {
        for (const line of fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
            const colon = line.indexOf(':');
            if (colon > 0) out[line.slice(0, colon)] = line.slice(colon + 1).trim();
        }
    } catch {
        // Gone.
    }
    return out;
}

/**
 * CPU time a process has run, in ns (schedstat's sum_exec_runtime): of its main thread (the
 * event loop, with V8's GC pauses), of V8's helper threads (`V8Worker`: concurrent marking and
 * sweeping, parallel scavenges, and the optimising compilers' background jobs), and of all its
 * threads. On-CPU time only, so unlike wall time it barely moves with the load of the machine.
 * Zeros where /proc has no schedstat.
 */
export function cpuNsOf(pid: number): { main: number; v8: number; all: number } {
    const read = (file: string) => {
        try {
            return Number(fs.readFileSync(file, 'latin1').split(' ')[0]) || 0;
        } catch {
            return 0;
        }
    };
    let all = 0;
    let v8 = 0;
    try {
        for (const task of fs.readdirSync(`/proc/${pid}/task`)) {
            const ns = read(`/proc/${pid}/task/${task}/schedstat`);
            all += ns;
            if (task !== String(pid) && threadName(pid, task).startsWith('V8')) v8 += ns;
        }
    } catch {
        // The process is gone.
    }
    return { main: read(`/proc/${pid}/task/${pid}/schedstat`), v8, all };
}

function threadName(pid: number, task: string): string {
    try {
        return fs.readFileSync(`/proc/${pid}/task/${task}/comm`, 'latin1').trim();
    } catch {
        return '';
    }
}

/** VmHWM / VmRSS of a process in bytes (0 when unknown). */
export function memoryOf(pid: number): { hwm: number; rss: number } {
    const status = readStatus(pid);
    const kb = (value: string | undefined) => (value ? Number(value.replace(/\s*kB$/, '')) * 1024 : 0);
    return { hwm: kb(status.VmHWM), rss: kb(status.VmRSS) };
}

/** Peak RSS of Dovecot's per-connection imap processes (children of the master). */
export function dovecotImapHwm(masterPid: number): number {
    let max = 0;
    for (const entry of fs.readdirSync('/proc')) {
        if (!/^\d+$/.test(entry)) continue;
        const status = readStatus(Number(entry));
        if (status.PPid === String(masterPid) && status.Name === 'imap') {
            max = Math.max(max, memoryOf(Number(entry)).hwm);
        }
    }
    return max;
}

/** RSS of a process and all its descendants, in bytes (Dovecot is a master plus one process per service and connection). */
export function treeRss(rootPid: number): number {
    const parents = new Map<number, number>();
    for (const entry of fs.readdirSync('/proc')) {
        if (!/^\d+$/.test(entry)) continue;
        const ppid = Number(readStatus(Number(entry)).PPid);
        if (ppid) parents.set(Number(entry), ppid);
    }
    const inTree = (pid: number): boolean => {
        for (let p: number | undefined = pid, depth = 0; p && depth < 20; p = parents.get(p), depth++) {
            if (p === rootPid) return true;
        }
        return false;
    };
    let total = 0;
    for (const pid of parents.keys()) if (inTree(pid)) total += memoryOf(pid).rss;
    if (!parents.has(rootPid)) total += memoryOf(rootPid).rss;
    return total;
}

// ------------------------------------------------------------------ Dovecot

export interface DovecotUser {
    name: string;
    password: string;
    /** A Maildir to copy in as the user's mail; none: an empty mailbox. */
    maildir?: string;
}

export interface RunningDovecot {
    port: number;
    child: ChildProcess;
    lines: string[];
}

/** Stock Dovecot with its own config under `dir`: IMAP on a free loopback port, plaintext LOGIN, maildir, no LMTP. */
export async function startDovecot(dir: string, users: DovecotUser[]): Promise<RunningDovecot> {
    for (const sub of ['run', 'state', 'log', 'home']) fs.mkdirSync(path.join(dir, sub), { recursive: true });
    fs.chmodSync(dir, 0o755);
    const entries: string[] = [];
    for (const user of users) {
        const home = path.join(dir, 'home', user.name);
        fs.mkdirSync(home, { recursive: true });
        if (user.maildir) {
            log(`dovecot: copying the Maildir of ${user.name}`);
            fs.cpSync(user.maildir, path.join(home, 'Maildir'), { recursive: true, preserveTimestamps: true });
        }
        entries.push(`${user.name}:{PLAIN}${user.password}:${MAIL_UID}:${MAIL_UID}::${home}::\n`);
    }
    execFileSync('chown', ['-R', `${MAIL_UID}:${MAIL_UID}`, path.join(dir, 'home')]);
    const port = await freePort();
    const usersFile = path.join(dir, 'users');
    fs.writeFileSync(usersFile, entries.join(''), { mode: 0o644 });
    const conf = path.join(dir, 'dovecot.conf');
    fs.writeFileSync(
        conf,
        [
            `instance_name = mailmule-bench-${process.pid}`,
            `base_dir = ${dir}/run`,
            `state_dir = ${dir}/state`,
            'protocols = imap',
            `listen = ${HOST}`,
            'shutdown_clients = yes',
            `log_path = ${dir}/log/dovecot.log`,
            'ssl = no',
            'disable_plaintext_auth = no',
            'auth_mechanisms = plain login',
            'auth_failure_delay = 0',
            'passdb {',
            '  driver = passwd-file',
            `  args = scheme=PLAIN username_format=%Lu ${usersFile}`,
            '}',
            'userdb {',
            '  driver = passwd-file',
            `  args = username_format=%Lu ${usersFile}`,
            '}',
            'default_internal_user = dovecot',
            'default_internal_group = dovecot',
            'default_login_user = dovenull',
            'first_valid_uid = 100',
            'last_valid_uid = 0',
            'mail_location = maildir:~/Maildir',
            'namespace inbox {',
            '  inbox = yes',
            '  separator = /',
            '}',
            'protocol imap {',
            '  mail_max_userip_connections = 100',
            '}',
            'service imap-login {',
            '  inet_listener imap {',
            `    address = ${HOST}`,
            `    port = ${port}`,
            '  }',
            '  inet_listener imaps {',
            '    port = 0',
            '  }',
            '}',
            'service stats {',
            '  unix_listener stats-reader {',
            '    mode = 0666',
            '  }',
            '  unix_listener stats-writer {',
            '    mode = 0666',
            '  }',
            '}',
            'service anvil {',
            '  unix_listener anvil-auth-penalty {',
            '    mode = 0',
            '  }',
            '}',
            ''
        ].join('\n')
    );
    // -F: stay in the foreground, so the child's pid is the master's.
    const child = track(spawn('dovecot', ['-F', '-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] }));
    const lines: string[] = [];
    tail(child, lines);
    try {
        await waitForImap('dovecot', port, child, lines, () => false, 30000);
    } catch (err) {
        const logFile = path.join(dir, 'log', 'dovecot.log');
        if (fs.existsSync(logFile)) lines.push(...fs.readFileSync(logFile, 'utf8').split('\n').slice(-20));
        throw new Error(`${(err as Error).message}\n${lines.join('\n')}`, { cause: err });
    }
    log(`dovecot: master pid ${child.pid}, listening on ${HOST}:${port}`);
    return { port, child, lines };
}

// ------------------------------------------------------------------ mailmule

export function runCli(args: string[], input: string | null, timeoutMs: number): string {
    const result = spawnSync(process.execPath, [MAIN, ...args], {
        input: input ?? undefined,
        stdio: [input === null ? 'ignore' : 'pipe', 'pipe', 'pipe'],
        timeout: timeoutMs,
        maxBuffer: 64 * 1024 * 1024
    });
    if (result.error || result.status !== 0) {
        throw new Error(`mailmule ${args[0]} failed (${result.error?.message ?? `exit ${result.status}`}):\n${result.stdout.toString()}\n${result.stderr.toString()}`);
    }
    return String(result.stdout);
}

export function duBytes(dir: string): number {
    try {
        return Number(execFileSync('du', ['-sb', dir]).toString().split(/\s/)[0]);
    } catch {
        return 0;
    }
}

/** The last line a command prints (a version, a file system type), or "unknown" when it cannot be run. */
export function commandOutput(command: string, args: string[]): string {
    try {
        return (
            execFileSync(command, args, { stdio: ['ignore', 'pipe', 'pipe'] })
                .toString()
                .trim()
                .split('\n')
                .pop() ?? 'unknown'
        );
    } catch {
        return 'unknown';
    }
}

/** The machine as a line for a results section: CPUs, model, architecture, memory, kernel; `extra` is appended. */
export function machineLine(extra = ''): string {
    const cpu = /model name\s*:\s*(.*)/.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown';
    let nproc = String(os.availableParallelism());
    try {
        nproc = execFileSync('nproc').toString().trim();
    } catch {
        // os.availableParallelism() then.
    }
    return `- machine: ${nproc} CPUs (nproc), ${cpu}, ${os.arch()} (uname -m: ${os.machine()}), ${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB RAM, Linux ${os.release()}${extra}`;
}

/** The machine, Node and Dovecot, as lines for a results section. */
export function machine(dovecotNote = '(maildir, default indexes, no FTS)'): string[] {
    return [machineLine(), `- Node ${process.version}, Dovecot ${commandOutput('dovecot', ['--version'])} ${dovecotNote}`];
}

export interface MailmuleConfigOptions {
    /** What the one listener speaks (default imap; the other protocol has no listener). */
    protocol?: 'imap' | 'smtp';
    /** The daemon's log level (default warn). */
    logLevel?: string;
    /** An upstream address per user name (its IMAP and SMTP point at port 1: never contacted); others have no account. */
    upstream?: Record<string, string>;
}

/**
 * mailmule.yaml and accounts.yaml for a benchmark: one starttls listener with plaintext AUTH on
 * `port` (IMAP unless options.protocol), data under `dir`/data, the given users. Returns the config path.
 */
export function writeMailmuleConfig(dir: string, port: number, users: string[], options: MailmuleConfigOptions = {}): string {
    const protocol = options.protocol ?? 'imap';
    const listener = [`    - host: ${HOST}`, `      port: ${port}`, '      security: starttls', '      allowPlaintextAuth: true'];
    const section = (name: 'imap' | 'smtp') => (name === protocol ? [`${name}:`, '  listeners:', ...listener] : [`${name}:`, '  listeners: []']);
    const configFile = path.join(dir, 'mailmule.yaml');
    fs.writeFileSync(
        configFile,
        [
            'dataDir: ./data',
            'localDomain: mailmule.lan',
            'hostname: mailmule.bench',
            'accounts: ./accounts.yaml',
            'log:',
            `  level: ${options.logLevel ?? 'warn'}`,
            ...section('imap'),
            ...section('smtp'),
            ''
        ].join('\n')
    );
    const user = (name: string) => {
        const address = options.upstream?.[name];
        if (!address) return `  - name: ${name}\n    accounts: []\n`;
        return [
            `  - name: ${name}`,
            '    accounts:',
            `      - address: ${address}`,
            `        imap: { host: ${HOST}, port: 1, tls: none }`,
            `        smtp: { host: ${HOST}, port: 1, tls: none }`,
            '        credentials: { password: x }',
            ''
        ].join('\n');
    };
    fs.writeFileSync(path.join(dir, 'accounts.yaml'), `users:\n${users.map(user).join('')}`, { mode: 0o600 });
    return configFile;
}

/**
 * Makes the local CA and serving certificate of the daemon of `configFile` (its dataDir/tls, for
 * its hostname and localDomain), as `mailmule init` does at install, in a child process so that
 * this one does not load the X.509 library. A daemon that starts without them issues both and
 * keeps @peculiar/x509 loaded (about 10 MB of RSS): what a Pi does once in its life, not at every
 * start, so the benchmarks measure the start a Pi sees.
 */
export function makeLocalCa(configFile: string): void {
    const text = fs.readFileSync(configFile, 'utf8');
    const field = (name: string) => {
        const value = new RegExp(`^${name}:\\s*(\\S+)`, 'm').exec(text)?.[1];
        if (!value) throw new Error(`${configFile} has no ${name}`);
        return value;
    };
    const options = { certFile: null, keyFile: null, dataDir: path.resolve(path.dirname(configFile), field('dataDir')), hostname: field('hostname'), localDomain: field('localDomain') };
    const script = `require(${JSON.stringify(path.join(ROOT, 'dist', 'src', 'tls'))}).ServingTls.open(${JSON.stringify(options)}).catch(err => { console.error(err); process.exit(1); })`;
    const result = spawnSync(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 60000 });
    if (result.status !== 0) throw new Error(`making the local CA for ${configFile} failed: ${String(result.stderr)}`);
}

/**
 * `mailmule start -c configFile` under daemonNodeArgs() plus `extraNodeArgs` (e.g. --cpu-prof) and daemonEnvironment(),
 * in the config file's directory, tracked (killed at exit). Its last 50 output lines are kept in
 * `lines`, each also given to `onLine`; `started()` is true once it logged "mailmule started"
 * (info level: at warn the caller waits for a greeting instead).
 */
export function spawnMailmule(configFile: string, extraNodeArgs: string[] = [], onLine?: (line: string) => void): { child: ChildProcess; lines: string[]; started: () => boolean } {
    const child = track(
        spawn(process.execPath, [...daemonNodeArgs(), ...extraNodeArgs, MAIN, 'start', '-c', configFile], {
            stdio: ['ignore', 'pipe', 'pipe'],
            cwd: path.dirname(configFile),
            env: daemonEnvironment()
        })
    );
    const lines: string[] = [];
    let started = false;
    tail(child, lines, 50, line => {
        if (line.includes('"mailmule started"')) started = true;
        onLine?.(line);
    });
    return { child, lines, started: () => started };
}

/**
 * Adds `section` at the end of one benchmark's part of the results file (`heading` starts that
 * part; other benchmarks have their own). The part, with `intro()`, is created when missing.
 */
export function writeResultsSection(file: string, heading: string, intro: () => string, section: string): void {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '# Benchmarks\n\n';
    const start = text.indexOf(heading);
    if (start < 0) {
        fs.writeFileSync(file, `${text.replace(/\n*$/, '\n\n')}${intro()}\n${section}`);
        return;
    }
    const next = text.indexOf('\n## ', start + heading.length);
    if (next < 0) fs.writeFileSync(file, `${text.replace(/\n*$/, '\n\n')}${section}`);
    else fs.writeFileSync(file, `${text.slice(0, next).replace(/\n*$/, '\n\n')}${section}\n${text.slice(next + 1)}`);
}

/** A positive whole number from the environment, or `fallback` when unset. */
export function intEnv(name: string, fallback: number): number {
    const value = process.env[name];
    if (value === undefined || value === '') return fallback;
    const n = Number(value);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer`);
    return n;
}
