/**
 * Summarises a daemon CPU profile taken with `MAILMULE_BENCH_CPU_PROF=<dir> npm run bench:imap`:
 * for each benchmark step (the windows in <dir>/steps.json), the functions with the most self
 * time and the most inclusive time, as file:line.
 *
 *   node dist/bench/profile-summary.js <dir> [top=15]
 *
 * V8 profile timestamps and process.hrtime() both read CLOCK_MONOTONIC, so the bench's step
 * windows line up with the daemon's samples.
 */
import fs from 'node:fs';
import path from 'node:path';

interface CallFrame {
    functionName: string;
    url: string;
    lineNumber: number;
}

interface ProfileNode {
    id: number;
    callFrame: CallFrame;
    children?: number[];
}

interface Profile {
    nodes: ProfileNode[];
    startTime: number;
    samples: number[];
    timeDeltas: number[];
}

function label(frame: CallFrame, root: string): string {
    const file = frame.url.replace(/^file:\/\//, '');
    const short = file.startsWith(root) ? path.relative(root, file) : file || '(native)';
    return `${frame.functionName || '(anonymous)'} ${short}${frame.url ? `:${frame.lineNumber + 1}` : ''}`;
}

function main(): void {
    const dir = path.resolve(process.argv[2] ?? '.');
    const top = Number(process.argv[3] ?? 15);
    const steps = JSON.parse(fs.readFileSync(path.join(dir, 'steps.json'), 'utf8')) as {
        windows: { server: string; run: number; step: string; start: string; end: string }[];
    };
    const file = fs
        .readdirSync(dir)
        .filter(name => name.endsWith('.cpuprofile'))
        .sort()
        .pop();
    if (!file) throw new Error(`no .cpuprofile in ${dir}`);
    const profile = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as Profile;
    const root = path.resolve(__dirname, '..', '..');

    const byId = new Map(profile.nodes.map(node => [node.id, node]));
    const parent = new Map<number, number>();
    for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);

    // Sample times in µs on the monotonic clock.
    const times: number[] = [];
    let t = profile.startTime;
    for (const delta of profile.timeDeltas) {
        t += delta;
        times.push(t);
    }

    const windows = steps.windows.filter(w => w.server === 'mailmule' && w.run >= 0);
    const stepNames = [...new Set(windows.map(w => w.step))];
    for (const step of stepNames) {
        const ranges = windows.filter(w => w.step === step).map(w => [Number(BigInt(w.start) / 1000n), Number(BigInt(w.end) / 1000n)] as const);
        const wall = ranges.reduce((sum, [a, b]) => sum + (b - a), 0);
        const self = new Map<string, number>();
        const inclusive = new Map<string, number>();
        let sampled = 0;
        let idle = 0;
        for (let i = 0; i < profile.samples.length; i++) {
            const at = times[i];
            if (!ranges.some(([a, b]) => at >= a && at <= b)) continue;
            const dt = profile.timeDeltas[i + 1] ?? 0;
            sampled += dt;
            const node = byId.get(profile.samples[i])!;
            const name = label(node.callFrame, root);
            if (node.callFrame.functionName === '(idle)') idle += dt;
            self.set(name, (self.get(name) ?? 0) + dt);
            const seen = new Set<string>();
            for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
                const frameName = label(byId.get(id)!.callFrame, root);
                if (seen.has(frameName)) continue;
                seen.add(frameName);
                inclusive.set(frameName, (inclusive.get(frameName) ?? 0) + dt);
            }
        }
        const ms = (us: number) => (us / 1000).toFixed(1).padStart(8);
        console.log(`\n=== ${step}: wall ${ms(wall)} ms over ${ranges.length} runs, sampled ${ms(sampled)} ms, idle ${ms(idle)} ms`);
        console.log('  self time:');
        for (const [name, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${ms(us)} ms  ${name}`);
        console.log('  inclusive time:');
        for (const [name, us] of [...inclusive]
            .sort((a, b) => b[1] - a[1])
            .filter(([name]) => !/^\((root|program|idle|garbage collector)\)/.test(name))
            .slice(0, top)) {
            console.log(`  ${ms(us)} ms  ${name}`);
        }
    }
}

main();
