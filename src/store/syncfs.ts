/**
 * syncfs(2), which Node has no binding for: one long-lived `sh` that runs coreutils `sync -f DIR`
 * (syncfs on the file system holding DIR) for each request and answers with a line. Spawning
 * `sync` from the daemon itself would fork the whole daemon each time, which holds its event loop
 * until the child has exec'd (tens of milliseconds on a loaded machine); forking a small shell
 * costs the daemon nothing.
 *
 * Requests are answered in order. The helper is started on first use, and again after it died;
 * it exits by itself when its stdin closes (the daemon is gone), and with close().
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import type { Socket } from 'node:net';

/** `sync -f` cannot be run here (no such program, or one without -f). */
export class SyncfsUnavailableError extends Error {}

/** The longest one sync may take before it counts as failed (a very slow card under a large write-back). */
const SYNC_TIMEOUT_MS = 120000;

// $0 is the directory. "unavailable" once, or "ready" and then one "ok"/"failed" per line read.
const SCRIPT = [
    "sync --help 2>/dev/null | grep -q -- '--file-system' || { echo unavailable; exit 0; }",
    'echo ready',
    'while read -r _; do if sync -f "$0"; then echo ok; else echo failed; fi; done'
].join('\n');

interface Waiter {
    resolve: () => void;
    reject: (err: Error) => void;
}

export class FileSystemSync {
    private child: ChildProcessWithoutNullStreams | null = null;
    private waiting: Waiter[] = [];
    private pendingOutput = '';
    private stderr = '';
    private unavailable = false;
    private timer: NodeJS.Timeout | null = null;

    constructor(private readonly dir: string) {}

    /** Resolves once everything written to the file system of `dir` is on disk. */
    sync(): Promise<void> {
        if (this.unavailable) return Promise.reject(new SyncfsUnavailableError('sync -f is not available'));
        const child = this.child ?? this.start();
        return new Promise<void>((resolve, reject) => {
            this.waiting.push({ resolve, reject });
            this.holdLoop(true);
            this.armTimer();
            child.stdin.write('\n');
        });
    }

    close(): void {
        const child = this.child;
        this.child = null;
        if (child) {
            child.stdin.end();
            child.kill();
        }
        this.fail(new Error('closed'));
    }

    private start(): ChildProcessWithoutNullStreams {
        const child = spawn('sh', ['-c', SCRIPT, this.dir], { stdio: 'pipe' });
        this.child = child;
        this.pendingOutput = '';
        this.stderr = '';
        child.stdout.setEncoding('utf8');
        child.stderr.setEncoding('utf8');
        child.stdout.on('data', (chunk: string) => this.onOutput(chunk));
        child.stderr.on('data', (chunk: string) => (this.stderr = (this.stderr + chunk).slice(-500)));
        child.stdin.on('error', () => undefined);
        child.on('error', err => this.died(child, err));
        child.on('exit', (code, signal) => this.died(child, new Error(`the sync helper exited (${signal ?? code})${this.stderr ? `: ${this.stderr.trim()}` : ''}`)));
        this.holdLoop(false);
        return child;
    }

    private onOutput(chunk: string): void {
        const lines = (this.pendingOutput + chunk).split('\n');
        this.pendingOutput = lines.pop() ?? '';
        for (const line of lines) {
            if (line === 'ready') continue;
            if (line === 'unavailable') {
                this.unavailable = true;
                this.fail(new SyncfsUnavailableError('sync -f is not available'));
                continue;
            }
            const waiter = this.waiting.shift();
            if (!waiter) continue;
            if (line === 'ok') waiter.resolve();
            else waiter.reject(new Error(`sync -f ${this.dir} failed${this.stderr ? `: ${this.stderr.trim()}` : ''}`));
            this.stderr = '';
        }
        this.armTimer();
        if (!this.waiting.length) this.holdLoop(false);
    }

    private died(child: ChildProcessWithoutNullStreams, err: Error): void {
        if (this.child !== child) return;
        this.child = null;
        // A shell that cannot be started at all: treat like a missing `sync`.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') this.unavailable = true;
        this.fail(this.unavailable ? new SyncfsUnavailableError(err.message) : err);
    }

    private fail(err: Error): void {
        if (this.timer) clearTimeout(this.timer);
        this.timer = null;
        const waiting = this.waiting;
        this.waiting = [];
        for (const waiter of waiting) waiter.reject(err);
    }

    /** A sync that takes too long: the helper is killed, and every request waiting fails. */
    private armTimer(): void {
        if (this.timer) clearTimeout(this.timer);
        this.timer = null;
        if (!this.waiting.length) return;
        this.timer = setTimeout(() => {
            const child = this.child;
            this.child = null;
            child?.kill('SIGKILL');
            this.fail(new Error(`sync -f ${this.dir} took over ${SYNC_TIMEOUT_MS / 1000} s`));
        }, SYNC_TIMEOUT_MS);
        this.timer.unref();
    }

    /** An idle helper must not keep the process alive; one with a request in flight must. */
    private holdLoop(hold: boolean): void {
        const child = this.child;
        if (!child) return;
        // The pipes of a child are sockets; the stream types do not say so.
        const pipes = [child.stdin, child.stdout, child.stderr] as unknown as Socket[];
        if (hold) {
            child.ref();
            for (const pipe of pipes) pipe.ref();
        } else {
            child.unref();
            for (const pipe of pipes) pipe.unref();
        }
    }
}
