/**
 * Running third-party clients (mbsync, python3, swaks) and other commands from tests.
 *
 * Always asynchronous: the gateway under test runs in this same process, so a spawnSync would
 * freeze its event loop and the client would wait for a server that cannot answer.
 */
import { spawn } from 'node:child_process';

export interface ProcessResult {
    code: number | null;
    signal: NodeJS.Signals | null;
    stdout: string;
    stderr: string;
    ms: number;
    timedOut: boolean;
}

/** Runs `command` to completion, killing it (by its own pid) after `timeoutMs`. */
export function runProcess(command: string, args: string[], options: { timeoutMs: number; cwd?: string; env?: NodeJS.ProcessEnv; input?: string }): Promise<ProcessResult> {
    const started = Date.now();
    return new Promise((resolve, reject) => {
        const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
        const stdout: Buffer[] = [];
        const stderr: Buffer[] = [];
        let timedOut = false;
        const timer = setTimeout(() => {
            timedOut = true;
            child.kill('SIGKILL');
        }, options.timeoutMs);
        child.stdout.on('data', chunk => stdout.push(chunk));
        child.stderr.on('data', chunk => stderr.push(chunk));
        child.on('error', err => {
            clearTimeout(timer);
            reject(err);
        });
        child.on('close', (code, signal) => {
            clearTimeout(timer);
            resolve({
                code,
                signal,
                stdout: Buffer.concat(stdout).toString('utf8'),
                stderr: Buffer.concat(stderr).toString('utf8'),
                ms: Date.now() - started,
                timedOut
            });
        });
        // A child that exits without reading its input must not turn into an uncaught EPIPE here.
        child.stdin.on('error', () => undefined);
        child.stdin.end(options.input ?? '');
    });
}

/** runProcess, failing with describeRun() when the command has not ended within `timeoutMs`. */
export async function runToCompletion(
    command: string,
    args: string[],
    options: { timeoutMs: number; cwd?: string; env?: NodeJS.ProcessEnv; input?: string },
    name = `${command} ${args.join(' ')}`
): Promise<ProcessResult> {
    const result = await runProcess(command, args, options);
    if (result.timedOut) throw new Error(describeRun(name, result));
    return result;
}

/** A one-paragraph description of a failed run, for assertion messages. */
export function describeRun(name: string, result: ProcessResult): string {
    return `${name} exited with code ${result.code} signal ${result.signal}${result.timedOut ? ' (timed out)' : ''} after ${result.ms} ms\n--- stdout\n${result.stdout.slice(-4000)}\n--- stderr\n${result.stderr.slice(-4000)}`;
}
