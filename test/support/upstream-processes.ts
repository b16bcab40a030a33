/**
 * The processes of test/support/upstream.ts: running the commands that start Dovecot and Postfix
 * (both daemonise), their pid files, readiness (a greeting on each port, polled every 20 ms up to
 * a deadline), stopping the two masters (bounded), and the exit handler that stops every live
 * instance if a test crashes without calling stop().
 */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export function run(file: string, args: string[], timeoutMs = 10_000, env?: NodeJS.ProcessEnv): Promise<string> {
    return new Promise((resolve, reject) => {
        execFile(file, args, { timeout: timeoutMs, killSignal: 'SIGKILL', env: env ?? process.env, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
            if (err) {
                reject(new Error(`${path.basename(file)} ${args.join(' ')} failed: ${err.message}\n${stdout}${stderr}`.trim()));
            } else {
                resolve(stdout);
            }
        });
    });
}

/**
 * Run a command that daemonizes: its output goes to `outFile` (not a pipe, since the daemon it
 * leaves behind may keep inherited descriptors open), and we wait for the command's own exit.
 */
export function runDaemonStarter(file: string, args: string[], outFile: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
        const fd = fs.openSync(outFile, 'a');
        const child = spawn(file, args, { stdio: ['ignore', fd, fd] });
        fs.closeSync(fd);
        const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        child.once('error', err => {
            clearTimeout(timer);
            reject(err);
        });
        child.once('exit', (code, signal) => {
            clearTimeout(timer);
            if (code === 0) return resolve();
            let output = '';
            try {
                output = fs.readFileSync(outFile, 'utf8');
            } catch {
                /* none */
            }
            reject(new Error(`${file} ${args.join(' ')} exited with ${signal ?? code}${signal === 'SIGKILL' ? ` (timeout ${timeoutMs} ms)` : ''}\n${output}`.trim()));
        });
    });
}

/** True while a pid is a live (not zombie) process. PID 1 here does not always reap. */
export function alive(pid: number): boolean {
    try {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
        const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
        return state !== 'Z' && state !== 'X';
    } catch {
        return false;
    }
}

export function readPid(file: string): number | null {
    try {
        const pid = Number(fs.readFileSync(file, 'utf8').trim());
        return Number.isInteger(pid) && pid > 1 ? pid : null;
    } catch {
        return null;
    }
}

function kill(pid: number | null, signal: NodeJS.Signals): void {
    if (pid === null) return;
    try {
        process.kill(pid, signal);
    } catch {
        /* already gone */
    }
}

export const delay = (ms: number) => new Promise<void>(resolve => setTimeout(resolve, ms));

/** Live children of `pid`, from /proc. */
function childrenOf(pid: number): number[] {
    const out: number[] = [];
    for (const name of fs.readdirSync('/proc')) {
        if (!/^\d+$/.test(name)) continue;
        try {
            const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
            const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
            if (Number(fields[1]) === pid && fields[0] !== 'Z') out.push(Number(name));
        } catch {
            /* gone */
        }
    }
    return out;
}

/**
 * Stopping the two masters. Postfix's master stops its children and exits within milliseconds
 * of SIGTERM. Dovecot's master, after telling its children to go, sleeps a fixed second before
 * it exits; the instance's files are about to be deleted anyway, so whatever is left of its
 * process tree after a short grace period is SIGKILLed. Written as steps so that stop() can
 * wait asynchronously and the exit handler synchronously; bounded either way (≤ ~3 s).
 */
export function* terminateSteps(postfixPid: number | null, dovecotPid: number | null): Generator<{ waitMs: number; until: () => boolean }> {
    const pids = [postfixPid, dovecotPid].filter((p): p is number => p !== null);
    const dovecotTree = dovecotPid !== null ? childrenOf(dovecotPid) : [];
    for (const pid of pids) kill(pid, 'SIGTERM');
    yield { waitMs: 150, until: () => !pids.some(alive) };
    if (dovecotPid !== null && alive(dovecotPid)) {
        const tree = [...new Set([...dovecotTree, ...childrenOf(dovecotPid)])];
        kill(dovecotPid, 'SIGKILL');
        for (const pid of tree) kill(pid, 'SIGKILL');
    }
    yield { waitMs: 3000, until: () => !pids.some(alive) };
    for (const pid of pids.filter(alive)) kill(pid, 'SIGKILL');
}

/**
 * Wait until `port` accepts a connection and sends a greeting starting with `prefix`.
 * Retries every 20 ms until `deadline`; `check` aborts early (e.g. daemon died).
 */
export async function waitForGreeting(port: number, prefix: string, deadline: number, what: string, check: () => void): Promise<void> {
    let lastError = '';
    while (Date.now() < deadline) {
        check();
        const result = await new Promise<string | null>(resolve => {
            const socket = net.connect({ host: '127.0.0.1', port });
            let buffer = '';
            const timer = setTimeout(() => done('no greeting'), Math.max(50, Math.min(2000, deadline - Date.now())));
            function done(error: string | null): void {
                clearTimeout(timer);
                socket.destroy();
                resolve(error);
            }
            socket.on('data', chunk => {
                buffer += chunk.toString('latin1');
                if (buffer.includes('\n')) done(buffer.startsWith(prefix) ? null : `unexpected greeting ${JSON.stringify(buffer.slice(0, 100))}`);
            });
            socket.on('error', err => done(err.message));
            socket.on('close', () => done('closed before greeting'));
        });
        if (result === null) return;
        lastError = result;
        await delay(20);
    }
    throw new Error(`${what} on 127.0.0.1:${port} not ready: ${lastError}`);
}

/** Wait until `port` accepts a TCP connection (for implicit-TLS listeners). Bounded like waitForGreeting. */
export async function waitForPort(port: number, deadline: number, what: string, check: () => void): Promise<void> {
    let lastError = '';
    while (Date.now() < deadline) {
        check();
        const error = await new Promise<string | null>(resolve => {
            const socket = net.connect({ host: '127.0.0.1', port });
            socket.once('connect', () => {
                socket.destroy();
                resolve(null);
            });
            socket.once('error', err => resolve(err.message));
        });
        if (error === null) return;
        lastError = error;
        await delay(20);
    }
    throw new Error(`${what} on 127.0.0.1:${port} not ready: ${lastError}`);
}

// ---- crash safety: stop every live instance synchronously when the process exits ----
export const live = new Set<{ killSync(): void }>();
let exitHandlerInstalled = false;
function stopAllSync(): void {
    for (const instance of [...live]) instance.killSync();
}
export function installExitHandler(): void {
    if (exitHandlerInstalled) return;
    exitHandlerInstalled = true;
    process.on('exit', stopAllSync);
    // A signal skips 'exit': clean up, then let the signal do what it would have done.
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
        process.once(signal, () => {
            stopAllSync();
            if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
        });
    }
}

/** Synchronous bounded sleep (exit handlers cannot await). */
export function sleepSync(ms: number): void {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
