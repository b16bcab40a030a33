/**
 * mailmule as a separate process: the daemon (`node dist/src/cli/main.js start`), for tests that
 * kill it, restart it, signal it, read its log or run it with other node flags than the test
 * runner's; and any other command run to completion (runMailmule).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { tempDir, writeConfig, type GatewayOptions, type TestUser } from './gateway';
import { freePort } from './ports';
import { settleOn, withTimeout } from './wait';
import { runToCompletion, type ProcessResult } from './run-process';

export const MAIN = path.resolve(__dirname, '..', '..', 'src', 'cli', 'main.js');

/**
 * `mailmule ARGS` run to completion: stdin is a pipe (never a TTY, as under cron) given `input`,
 * the working directory os.tmpdir() unless `cwd` (so a lost -c finds no config/ of ours). Fails,
 * with its output, when it has not ended within `timeoutMs`.
 */
export function runMailmule(args: string[], options: { input?: string; cwd?: string; timeoutMs?: number } = {}): Promise<ProcessResult> {
    return runToCompletion(process.execPath, [MAIN, ...args], { timeoutMs: options.timeoutMs ?? 20_000, cwd: options.cwd ?? os.tmpdir(), input: options.input }, `mailmule ${args.join(' ')}`);
}

export interface Setup {
    dir: string;
    configFile: string;
    dataDir: string;
    /** The listeners of writeConfig(), in order: IMAP STARTTLS, IMAP TLS, SMTP STARTTLS, SMTP TLS. */
    imapPort: number;
    smtpPort: number;
}

/**
 * Gives every listener of a config file written by writeConfig() (`port: 0`) a free port of its
 * own: a process started from the file cannot report the ports the kernel would pick for 0.
 * Returns the ports in the order of the listeners in the file.
 */
export async function assignFreePorts(configFile: string): Promise<number[]> {
    let yaml = fs.readFileSync(configFile, 'utf8');
    const ports: number[] = [];
    while (yaml.includes('port: 0\n')) {
        const port = await freePort();
        ports.push(port);
        yaml = yaml.replace('port: 0\n', `port: ${port}\n`);
    }
    fs.writeFileSync(configFile, yaml);
    return ports;
}

/**
 * Config from writeConfig() with real free ports, and each user's password set with
 * `mailmule passwd` (the CLI, as an admin would).
 */
export async function setup(options: GatewayOptions & { users: TestUser[]; prefix?: string }): Promise<Setup> {
    const dir = tempDir(options.prefix ?? 'mailmule-daemon-');
    const { configFile } = writeConfig(dir, options);
    // Listener order in writeConfig: IMAP starttls, IMAP tls, SMTP starttls (plaintext AUTH allowed), SMTP tls.
    const ports = await assignFreePorts(configFile);
    assert.equal(ports.length, 4, 'writeConfig has four listeners');
    for (const user of options.users) {
        const passwd = spawnSync(process.execPath, [MAIN, 'passwd', user.name, '-c', configFile], { input: `${user.password}\n`, timeout: 30000, encoding: 'utf8' });
        assert.equal(passwd.status, 0, `mailmule passwd failed: ${passwd.stdout}${passwd.stderr}`);
    }
    return { dir, configFile, dataDir: path.join(dir, 'data'), imapPort: ports[0], smtpPort: ports[2] };
}

export interface Exit {
    code: number | null;
    signal: NodeJS.Signals | null;
}

/** One line of the daemon's log (pino JSON on stdout). */
export interface LogRecord {
    level: number;
    msg: string;
    [key: string]: unknown;
}

export interface SpawnOptions {
    /** Node flags before the script, e.g. `--stack-size=…`. */
    nodeArgs?: string[];
    /** A command that runs node with its arguments appended (e.g. `unshare …` to give the daemon its own mounts). */
    wrapper?: string[];
    /** The working directory (default: the config file's directory); a relative config path is read from here. */
    cwd?: string;
    /** Another build's CLI (an unpacked release) instead of this tree's dist. */
    main?: string;
    /** The daemon's environment (default: this process's). */
    env?: NodeJS.ProcessEnv;
}

const daemons = new Set<DaemonProcess>();

export class DaemonProcess {
    /** All the daemon wrote on stdout and on stderr so far. */
    stdout = '';
    stderr = '';
    /** The complete non-empty stdout lines so far (its log, one JSON record a line); an index here marks a point in the log. */
    readonly stdoutLines: string[] = [];
    /** The last 200 lines the daemon wrote (stdout and stderr). */
    readonly lines: string[] = [];
    /** How it ended, once it has. */
    exit: Exit | null = null;
    /** Settles at 'close' (the process has ended and all its output is read). */
    private readonly closed: Promise<Exit>;
    /** Settles at 'exit' (the process has ended; output may still be arriving). */
    private readonly ended: Promise<void>;
    private readonly watchers: { pattern: RegExp; count: number }[] = [];
    private readonly waiters = new Set<() => void>();

    private constructor(readonly child: ChildProcess) {
        for (const [stream, name] of [
            [child.stdout!, 'stdout'],
            [child.stderr!, 'stderr']
        ] as const) {
            let rest = '';
            stream.setEncoding('utf8').on('data', (chunk: string) => {
                this[name] += chunk;
                const parts = (rest + chunk).split('\n');
                rest = parts.pop() ?? '';
                for (const line of parts) {
                    if (name === 'stdout' && line.trim()) this.stdoutLines.push(line);
                    this.lines.push(line);
                    for (const watcher of this.watchers) if (watcher.pattern.test(line)) watcher.count++;
                    if (this.lines.length > 200) this.lines.shift();
                }
                this.changed();
            });
        }
        this.ended = new Promise(resolve => child.once('exit', () => resolve()));
        this.closed = new Promise(resolve =>
            child.once('close', (code, signal) => {
                this.exit = { code, signal };
                this.changed();
                resolve(this.exit);
            })
        );
    }

    /**
     * Starts `mailmule start -c configFile` without waiting for it to serve (see waitForStart);
     * every one still running is SIGKILLed by killAllDaemons() and at exit.
     */
    static spawn(configFile: string, options: SpawnOptions = {}): DaemonProcess {
        const command = [...(options.wrapper ?? []), process.execPath, ...(options.nodeArgs ?? []), options.main ?? MAIN, 'start', '-c', configFile];
        const child = spawn(command[0], command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], cwd: options.cwd ?? path.dirname(configFile), env: options.env ?? process.env });
        const daemon = new DaemonProcess(child);
        daemons.add(daemon);
        child.once('exit', () => daemons.delete(daemon));
        return daemon;
    }

    /** Starts it and waits (20 s at most) for its "mailmule started" line. */
    static async start(configFile: string, nodeArgs: string[] = [], wrapper: string[] = [], options: Pick<SpawnOptions, 'main' | 'env'> = {}): Promise<DaemonProcess> {
        const daemon = DaemonProcess.spawn(configFile, { nodeArgs, wrapper, ...options });
        try {
            await daemon.until('"mailmule started"', () => daemon.started(), 20000);
        } catch (err) {
            if (daemon.running) daemon.child.kill('SIGKILL');
            throw err;
        }
        return daemon;
    }

    /** The process is alive (its output may still be arriving after it ends: see `exit`). */
    get running(): boolean {
        return this.child.exitCode === null && this.child.signalCode === null;
    }

    /** Both streams, for assertion messages. */
    get output(): string {
        return `--- stdout\n${this.stdout}\n--- stderr\n${this.stderr}`;
    }

    /** Counts the daemon's output lines that match `pattern` from now on; call the result to read the count. */
    watch(pattern: RegExp): () => number {
        const watcher = { pattern, count: 0 };
        this.watchers.push(watcher);
        return () => watcher.count;
    }

    /** The log records from stdout line `from` on; a line that is not JSON fails (the daemon logs nothing else there). */
    records(from = 0): LogRecord[] {
        return this.stdoutLines.slice(from).map(line => {
            try {
                return JSON.parse(line) as LogRecord;
            } catch {
                throw new Error(`a stdout line is not JSON: ${line}`);
            }
        });
    }

    /**
     * Resolves once `predicate` holds (checked on every output and at exit); rejects, with the
     * output, if the daemon exits first or `timeoutMs` passes.
     */
    until(what: string, predicate: () => boolean, timeoutMs = 15000): Promise<void> {
        return settleOn(
            this.waiters,
            () => (predicate() ? { value: undefined } : this.exit ? new Error(`mailmule exited (${JSON.stringify(this.exit)}) before ${what}\n${this.output}`) : undefined),
            timeoutMs,
            () => new Error(`no ${what} within ${timeoutMs} ms\n${this.output}`)
        );
    }

    /** The first log record (from stdout line `from` on) that matches; rejects on timeout or exit. */
    async waitForLog(what: string, predicate: (record: LogRecord) => boolean, options: { from?: number; timeoutMs?: number } = {}): Promise<LogRecord> {
        let found: LogRecord | undefined;
        await this.until(what, () => (found = this.records(options.from).find(predicate)) !== undefined, options.timeoutMs ?? 10_000);
        return found!;
    }

    /** Its "mailmule started" record (the listeners, the config file, the number of users). */
    waitForStart(timeoutMs = 20000): Promise<LogRecord> {
        return this.waitForLog('"mailmule started"', record => record.msg === 'mailmule started', { timeoutMs });
    }

    signal(name: NodeJS.Signals): void {
        assert.ok(this.running, 'the daemon is not running');
        this.child.kill(name);
    }

    /** Waits for the exit, SIGKILLing the daemon (and failing, with its output) if it has not ended within `timeoutMs`. */
    async exited(timeoutMs = 15000): Promise<Exit> {
        try {
            return await withTimeout(this.closed, timeoutMs, 'mailmule start to exit');
        } catch (err) {
            if (this.running) this.child.kill('SIGKILL');
            throw new Error(`${(err as Error).message}\n${this.output}`, { cause: err });
        }
    }

    async kill9(): Promise<void> {
        if (this.running) this.child.kill('SIGKILL');
        await withTimeout(this.ended, 10000, 'exit after SIGKILL');
        await this.drained();
    }

    /** SIGTERM, then SIGKILL after 10 s; resolves with the exit code (null when it had to be killed). */
    async stop(): Promise<number | null> {
        if (this.running) {
            this.child.kill('SIGTERM');
            try {
                await withTimeout(this.ended, 10000, 'exit after SIGTERM');
            } catch {
                this.child.kill('SIGKILL');
                await withTimeout(this.ended, 5000, 'exit after SIGKILL');
                return null;
            }
        }
        await this.drained();
        return this.child.exitCode;
    }

    /** After the exit: its last output, unless something it started still holds the pipes (then 2 s at most). */
    private async drained(): Promise<void> {
        await withTimeout(this.closed, 2000, 'output after the exit').catch(() => undefined);
    }

    private started(): boolean {
        // JSON, or a journal line (log.format, src/log/format.ts).
        return this.stdoutLines.some(line => line.includes('"msg":"mailmule started"') || /^<6>mailmule started\b/.test(line));
    }

    private changed(): void {
        for (const waiter of [...this.waiters]) waiter();
    }
}

/** SIGKILLs every daemon this process started that is still running. */
export async function killAllDaemons(): Promise<void> {
    for (const daemon of [...daemons]) await daemon.kill9();
}

/** Starts `mailmule start` as a child process and waits until it serves; every one still running is SIGKILLed at exit. */
export function startDaemon(configFile: string, nodeArgs: string[] = [], wrapper: string[] = [], options: Pick<SpawnOptions, 'main' | 'env'> = {}): Promise<DaemonProcess> {
    return DaemonProcess.start(configFile, nodeArgs, wrapper, options);
}
process.on('exit', () => {
    for (const daemon of daemons) daemon.child.kill('SIGKILL');
});
