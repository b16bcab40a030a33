/**
 * The daemon as a separate process (`node dist/src/cli/main.js start`), for tests that kill it,
 * restart it, or run it with other node flags than the test runner's.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { tempDir, writeConfig, type GatewayOptions, type TestUser } from './gateway';
import { freePort } from './ports';
import { sleep, withTimeout } from './wait';

export const MAIN = path.resolve(__dirname, '..', '..', 'src', 'cli', 'main.js');

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

export class DaemonProcess {
    /** The last 200 lines the daemon wrote (stdout and stderr). */
    readonly lines: string[] = [];
    private readonly watchers: { pattern: RegExp; count: number }[] = [];
    private constructor(readonly child: ChildProcess) {}

    /**
     * `nodeArgs` go before the script, e.g. `--stack-size=…`; `wrapper` is a command that runs
     * node with its arguments appended (e.g. `unshare …` to give the daemon its own mounts);
     * `main` is another build's CLI (an unpacked release), `env` the daemon's environment.
     */
    static async start(configFile: string, nodeArgs: string[] = [], wrapper: string[] = [], options: { main?: string; env?: NodeJS.ProcessEnv } = {}): Promise<DaemonProcess> {
        const command = [...wrapper, process.execPath, ...nodeArgs, options.main ?? MAIN, 'start', '-c', configFile];
        const child = spawn(command[0], command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], cwd: path.dirname(configFile), env: options.env ?? process.env });
        const daemon = new DaemonProcess(child);
        let started = false;
        for (const stream of [child.stdout, child.stderr]) {
            let rest = '';
            stream.on('data', (chunk: Buffer) => {
                const parts = (rest + chunk.toString('utf8')).split('\n');
                rest = parts.pop() ?? '';
                for (const line of parts) {
                    if (line.includes('"msg":"mailmule started"')) started = true;
                    daemon.lines.push(line);
                    for (const watcher of daemon.watchers) if (watcher.pattern.test(line)) watcher.count++;
                    if (daemon.lines.length > 200) daemon.lines.shift();
                }
            });
        }
        const deadline = Date.now() + 20000;
        while (!started) {
            if (child.exitCode !== null || child.signalCode !== null) {
                throw new Error(`mailmule exited (${child.exitCode ?? child.signalCode}) before it started:\n${daemon.lines.join('\n')}`);
            }
            if (Date.now() > deadline) {
                child.kill('SIGKILL');
                throw new Error(`mailmule did not start within 20 s:\n${daemon.lines.join('\n')}`);
            }
            await sleep(20);
        }
        return daemon;
    }

    /** Counts the daemon's output lines that match `pattern` from now on; call the result to read the count. */
    watch(pattern: RegExp): () => number {
        const watcher = { pattern, count: 0 };
        this.watchers.push(watcher);
        return () => watcher.count;
    }

    get running(): boolean {
        return this.child.exitCode === null && this.child.signalCode === null;
    }

    exited(): Promise<void> {
        return this.running ? new Promise(resolve => this.child.once('exit', () => resolve())) : Promise.resolve();
    }

    async kill9(): Promise<void> {
        if (this.running) this.child.kill('SIGKILL');
        await withTimeout(this.exited(), 10000, 'exit after SIGKILL');
    }

    /** SIGTERM, then SIGKILL after 10 s; resolves with the exit code (null when it had to be killed). */
    async stop(): Promise<number | null> {
        if (!this.running) return this.child.exitCode;
        this.child.kill('SIGTERM');
        try {
            await withTimeout(this.exited(), 10000, 'exit after SIGTERM');
        } catch {
            this.child.kill('SIGKILL');
            await withTimeout(this.exited(), 5000, 'exit after SIGKILL');
            return null;
        }
        return this.child.exitCode;
    }
}

const daemons = new Set<DaemonProcess>();

/** SIGKILLs every daemon this process started that is still running. */
export async function killAllDaemons(): Promise<void> {
    for (const daemon of [...daemons]) await daemon.kill9();
}

/** Starts `mailmule start` as a child process; every one still running is SIGKILLed at exit. */
export async function startDaemon(configFile: string, nodeArgs: string[] = [], wrapper: string[] = [], options: { main?: string; env?: NodeJS.ProcessEnv } = {}): Promise<DaemonProcess> {
    const daemon = await DaemonProcess.start(configFile, nodeArgs, wrapper, options);
    daemons.add(daemon);
    daemon.child.once('exit', () => daemons.delete(daemon));
    return daemon;
}
process.on('exit', () => {
    for (const daemon of daemons) daemon.child.kill('SIGKILL');
});
