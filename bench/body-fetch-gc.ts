/**
 * `node dist/bench/body-fetch-gc.js <mailmule.yaml>`: what one `UID FETCH <uid> BODY.PEEK[]` costs
 * the daemon in garbage and CPU, in figures the machine's load barely moves (bench:imap step 4
 * times 100 of them; this counts thousands).
 *
 * Starts the daemon on an existing configuration (a data directory kept by
 * `MAILMULE_BENCH_KEEP=1 npm run bench:imap`, user `bench`) under `--trace-gc-nvp`, with the node
 * flags of the systemd unit, runs WARMUP commands, then COUNT commands one after another (seeded
 * random UIDs of 1..MESSAGES), and prints per 1,000 commands: scavenges, mark-compacts, bytes the
 * heap allocated (the sum of trace-gc-nvp's `allocated=`), and the daemon's CPU time (main thread,
 * /proc schedstat). The measured window is cut by a marker the daemon prints on SIGUSR2 (a
 * preloaded module), on the same stdout as the GC lines, so no line is counted on the wrong side.
 *
 * Environment: BODY_GC_COUNT (default 3000), BODY_GC_WARMUP (300), BODY_GC_MESSAGES (10000),
 * BODY_GC_SEED (1), BODY_GC_REASONS=1 (--trace-gc instead: why each mark-compact ran, no bytes),
 * BODY_GC_LOG=<file> (the daemon's output: the GC trace), BODY_GC_CPU_PROF=<dir> (a CPU profile of the daemon; `node dist/bench/profile-summary.js <dir>`).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { Rng } from './corpus';
import { MeteredImapClient } from './metered-imap-client';
import { HOST, MAIN, cpuNsOf, daemonEnvironment, daemonNodeArgs, intEnv, track, killAll, stopChild, waitForImap } from './support';

const COUNT = intEnv('BODY_GC_COUNT', 3000);
const WARMUP = intEnv('BODY_GC_WARMUP', 300);
const MESSAGES = intEnv('BODY_GC_MESSAGES', 10000);
const SEED = intEnv('BODY_GC_SEED', 1);
/** --trace-gc instead of --trace-gc-nvp: why each mark-compact ran, but no bytes allocated. */
const REASONS = process.env.BODY_GC_REASONS === '1';
/** A file for the daemon's standard output (the GC trace), as it came. */
const LOG_FILE = process.env.BODY_GC_LOG ? path.resolve(process.env.BODY_GC_LOG) : null;
/** A directory: the daemon runs under --cpu-prof, and the measured window goes to steps.json (bench/profile-summary.ts reads both). */
const PROFILE_DIR = process.env.BODY_GC_CPU_PROF ? path.resolve(process.env.BODY_GC_CPU_PROF) : null;

const MARKER = 'body-fetch-gc-marker';

interface GcTally {
    scavenges: number;
    markCompacts: number;
    other: number;
    allocated: number;
    promoted: number;
    /** Main-thread pause of each kind, ms (trace-gc-nvp's pause=). */
    scavengePause: number;
    markCompactPause: number;
    /** Why V8 ran each mark-compact (--trace-gc's reason), by reason. */
    reasons: Map<string, number>;
}

async function main(): Promise<void> {
    const configFile = path.resolve(process.argv[2] ?? '');
    if (!fs.existsSync(configFile)) throw new Error('usage: body-fetch-gc <mailmule.yaml of a kept bench:imap directory>');
    const port = Number(/port:\s*(\d+)/.exec(fs.readFileSync(configFile, 'utf8'))?.[1]);
    const preload = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'body-fetch-gc-')), 'marker.js');
    fs.writeFileSync(preload, `process.on('SIGUSR2', () => process.stdout.write('${MARKER}\\n'));\n`);

    const child = track(
        spawn(
            process.execPath,
            [
                ...daemonNodeArgs(),
                ...(REASONS ? ['--trace-gc', '--trace-incremental-marking'] : ['--trace-gc-nvp']),
                '--require',
                preload,
                ...(PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : []),
                MAIN,
                'start',
                '-c',
                configFile
            ],
            {
                stdio: ['ignore', 'pipe', 'pipe'],
                cwd: path.dirname(configFile),
                env: daemonEnvironment()
            }
        )
    );
    const tally: GcTally = { scavenges: 0, markCompacts: 0, other: 0, allocated: 0, promoted: 0, scavengePause: 0, markCompactPause: 0, reasons: new Map() };
    const markers: (() => void)[] = [];
    const lines: string[] = [];
    let rest = '';
    child.stdout!.setEncoding('latin1');
    child.stdout!.on('data', (chunk: string) => {
        const parts = (rest + chunk).split('\n');
        rest = parts.pop()!;
        for (const line of parts) {
            if (LOG_FILE) fs.appendFileSync(LOG_FILE, line + '\n');
            if (line === MARKER) {
                markers.shift()?.();
                continue;
            }
            const started = /\[IncrementalMarking\] Start (.*)$/.exec(line)?.[1];
            if (started) {
                tally.reasons.set(`marking started: ${started}`, (tally.reasons.get(`marking started: ${started}`) ?? 0) + 1);
                continue;
            }
            const reason = /Mark-Compact .*current mu = [\d.]+\) (.*)$/.exec(line)?.[1];
            if (reason) {
                tally.reasons.set(reason, (tally.reasons.get(reason) ?? 0) + 1);
                tally.markCompacts++;
                continue;
            }
            if (/ ms: Scavenge /.test(line)) {
                tally.scavenges++;
                continue;
            }
            const kind = / gc=(\w+) /.exec(line)?.[1];
            if (!kind) {
                lines.push(line);
                continue;
            }
            const pause = Number(/ pause=([\d.]+)/.exec(line)?.[1] ?? 0);
            if (kind === 's') {
                tally.scavenges++;
                tally.scavengePause += pause;
            } else if (kind === 'mc') {
                tally.markCompacts++;
                tally.markCompactPause += pause;
            } else {
                tally.other++;
            }
            tally.allocated += Number(/ allocated=(\d+)/.exec(line)?.[1] ?? 0);
            tally.promoted += Number(/ promoted=(\d+)/.exec(line)?.[1] ?? 0);
        }
    });
    child.stderr!.on('data', (chunk: Buffer) => lines.push(chunk.toString()));
    await waitForImap('mailmule', port, child, lines, () => false, 60000);
    const pid = child.pid!;
    const snapshot = async () => {
        const seen = new Promise<void>(resolve => markers.push(resolve));
        process.kill(pid, 'SIGUSR2');
        await seen;
        return { ...tally, reasons: new Map(tally.reasons), cpu: cpuNsOf(pid).main };
    };

    const { client } = await MeteredImapClient.connect(HOST, port, 10000);
    try {
        await client.command('LOGIN bench "bench-pass-1"', { timeoutMs: 30000 });
        await client.command('SELECT INBOX', { timeoutMs: 300000 });
        const rng = new Rng(SEED);
        const run = async (count: number) => {
            let bytes = 0;
            for (let index = 0; index < count; index++) {
                const result = await client.command(`UID FETCH ${rng.int(1, MESSAGES)} BODY.PEEK[]`, { timeoutMs: 60000 });
                if (result.status !== 'OK') throw new Error(result.line);
                bytes += result.bytes;
            }
            return bytes;
        };
        await run(WARMUP);
        const before = await snapshot();
        const start = process.hrtime.bigint();
        const bytes = await run(COUNT);
        const end = process.hrtime.bigint();
        const after = await snapshot();
        if (PROFILE_DIR) {
            const windows = [{ server: 'mailmule', run: 0, step: 'bodies', start: String(start), end: String(end) }];
            fs.mkdirSync(PROFILE_DIR, { recursive: true });
            fs.writeFileSync(path.join(PROFILE_DIR, 'steps.json'), JSON.stringify({ pid, windows }));
        }
        const per1000 = (value: number) => ((value * 1000) / COUNT).toFixed(1);
        console.log(`${COUNT} × UID FETCH <uid> BODY.PEEK[] (after ${WARMUP} warm-up), ${(bytes / COUNT / 1024).toFixed(1)} KB received per command; load ${os.loadavg()[0].toFixed(2)}`);
        console.log(
            `per 1,000 commands: scavenges ${per1000(after.scavenges - before.scavenges)}, mark-compacts ${per1000(after.markCompacts - before.markCompacts)}, other GCs ${per1000(after.other - before.other)}`
        );
        const reasons = [...after.reasons].map(([reason, count]) => `${reason}: ${count - (before.reasons.get(reason) ?? 0)}`).filter(entry => !entry.endsWith(': 0'));
        console.log(`mark-compacts by reason (all ${COUNT}): ${reasons.join(', ') || 'none'}`);
        console.log(
            `heap allocated per command: ${((after.allocated - before.allocated) / COUNT / 1024).toFixed(1)} KB (counted up to the last GC), promoted to the old generation ${((after.promoted - before.promoted) / COUNT / 1024).toFixed(2)} KB`
        );
        const perCommand = (ms: number) => ((ms * 1000) / COUNT).toFixed(1);
        console.log(
            `GC pauses per command (main thread): scavenges ${perCommand(after.scavengePause - before.scavengePause)} µs, mark-compacts ${perCommand(after.markCompactPause - before.markCompactPause)} µs (incremental marking steps not included)`
        );
        console.log(`daemon CPU (main thread) per command: ${((after.cpu - before.cpu) / COUNT / 1000).toFixed(1)} µs`);
    } finally {
        await client.close();
        await stopChild(child);
    }
}

main().catch(err => {
    console.error(err);
    process.exitCode = 1;
    killAll('SIGKILL');
});
