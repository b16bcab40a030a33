/**
 * Bringing the link up and down around a run: the `uplink.up` and `uplink.down` hook commands
 * (dial the modem, hang up), and the probe that checks the link answers before anything is
 * spent on it. A run whose up hook fails or whose probe gets no answer is skipped.
 */
import net from 'node:net';
import { spawn } from 'node:child_process';
import type { Logger } from '../log';

/** The last this many characters of a hook's output go to the log. */
const HOOK_OUTPUT_KEPT = 8192;

/** Runs a hook command with a time limit; its output goes to the log. True when it exited 0. */
export function runHook(command: string, timeoutMs: number, logger: Logger, name: string): Promise<boolean> {
    return new Promise(resolve => {
        const child = spawn('/bin/sh', ['-c', command], { stdio: ['ignore', 'pipe', 'pipe'] });
        let output = '';
        const keep = (chunk: Buffer) => {
            output += chunk.toString();
            if (output.length > HOOK_OUTPUT_KEPT) output = output.slice(-HOOK_OUTPUT_KEPT);
        };
        child.stdout.on('data', keep);
        child.stderr.on('data', keep);
        const timer = setTimeout(() => {
            child.kill('SIGKILL');
            logger.warn({ hook: name, timeoutMs }, `uplink ${name} hook timed out`);
        }, timeoutMs);
        child.on('close', code => {
            clearTimeout(timer);
            logger.info({ hook: name, exitCode: code, output: output.trim().slice(-2000) }, `uplink ${name} hook finished`);
            resolve(code === 0);
        });
        child.on('error', err => {
            clearTimeout(timer);
            logger.warn({ hook: name, err: { message: err.message } }, `uplink ${name} hook could not run`);
            resolve(false);
        });
    });
}

/** Whether a TCP connection to `host:port` opens within the time limit (nothing is sent). */
export function probe(target: string, timeoutMs: number): Promise<boolean> {
    const colon = target.lastIndexOf(':');
    const [host, port] = [target.slice(0, colon), Number(target.slice(colon + 1))];
    return new Promise(resolve => {
        const socket = net.connect({ host, port });
        const done = (ok: boolean) => {
            socket.destroy();
            resolve(ok);
        };
        socket.setTimeout(timeoutMs, () => done(false));
        socket.once('connect', () => done(true));
        socket.once('error', () => done(false));
    });
}
