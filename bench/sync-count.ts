/**
 * Counts the calls that put data on disk (fsync, fdatasync, sync_file_range, msync, syncfs,
 * sync) made by a set of processes, their threads and whatever they fork meanwhile, with
 * `strace -f -c` attached for as long as the caller wants. bench/smtp.ts divides the total by the
 * messages acknowledged meanwhile: the disk flushes each 250 cost, background ones included.
 *
 * strace slows what it traces, so a counted run is never a timed one. Every wait is bounded.
 */
import fs from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { log, sleep, stopChild, tail, track } from './support';

/** Every system call that flushes written data to the device (strace 6 has no class for them). */
export const SYNC_CALLS = ['fsync', 'fdatasync', 'sync_file_range', 'msync', 'syncfs', 'sync'] as const;

export interface SyncCounter {
    /** Detaches strace and returns the calls it counted, by name (names never seen are absent). */
    stop(): Promise<Record<string, number>>;
}

/** Attaches to `pids` (and, with -f, their threads and future children); null when strace is missing or cannot attach. */
export async function countSyncCalls(pids: readonly number[], outFile: string): Promise<SyncCounter | null> {
    if (spawnSync('sh', ['-c', 'command -v strace'], { encoding: 'utf8' }).status !== 0) {
        log('strace is not installed: fsyncs are not counted');
        return null;
    }
    const strace = track(
        spawn('strace', ['-f', '-c', '-e', `trace=${SYNC_CALLS.join(',')}`, '-o', outFile, ...pids.flatMap(pid => ['-p', String(pid)])], {
            stdio: ['ignore', 'pipe', 'pipe']
        })
    );
    const lines: string[] = [];
    let attached = false;
    tail(strace, lines, 20, line => {
        if (/attached/.test(line)) attached = true;
    });
    const deadline = Date.now() + 10000;
    while (!attached && Date.now() < deadline && strace.exitCode === null) await sleep(20);
    if (!attached) {
        await stopChild(strace, 3000);
        log(`strace could not attach (${lines.join(' ')}): fsyncs are not counted`);
        return null;
    }
    // Attaching to every thread is reported one line at a time; let it finish.
    await sleep(300);
    return {
        async stop() {
            strace.kill('SIGINT');
            await Promise.race([new Promise(resolve => strace.once('exit', resolve)), sleep(10000)]);
            if (strace.exitCode === null && strace.signalCode === null) strace.kill('SIGKILL');
            return parseSummary(fs.existsSync(outFile) ? fs.readFileSync(outFile, 'utf8') : '');
        }
    };
}

/** The "calls" column of `strace -c`'s table, by syscall name. */
export function parseSummary(text: string): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const line of text.split('\n')) {
        // % time, seconds, usecs/call, calls, [errors], syscall
        const match = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$/.exec(line);
        if (match && match[2] !== 'total') counts[match[2]] = Number(match[1]);
    }
    return counts;
}

/** The sum of the counted calls. */
export function totalSyncs(counts: Record<string, number>): number {
    return Object.values(counts).reduce((sum, n) => sum + n, 0);
}
