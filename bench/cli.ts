/**
 * `npm run bench:cli`: how long `mailmule --version`, `status`, `queue` and `users` take, above
 * what `node -e 0` takes on the same machine (issue 11's aim: at most 0.3 s more).
 *
 * The data directory is made by `mailmule init` with two users, one with a password. Each command
 * runs ROUNDS times (default 20), the commands interleaved so that load from other jobs on the
 * machine falls on all of them alike; the median and the fastest run are reported.
 * MAILMULE_MAIN=path/to/dist/src/cli/main.js measures another build (a before/after comparison).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { MAIN, log, median } from './support';

const AIM_SECONDS = 0.3;
const cli = process.env.MAILMULE_MAIN ? path.resolve(process.env.MAILMULE_MAIN) : MAIN;
const rounds = Number(process.env.ROUNDS ?? 20);

function runOnce(args: string[], input = ''): number {
    const started = process.hrtime.bigint();
    const result = spawnSync(process.execPath, args, { input, encoding: 'utf8', timeout: 60_000 });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    if (result.status !== 0) throw new Error(`node ${args.join(' ')} exited ${result.status}: ${result.stderr}`);
    return seconds;
}

function benchmark(): void {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailmule-bench-cli-'));
    try {
        runOnce([cli, 'init', '--dir', dir, '--data-dir', path.join(dir, 'data'), '--hostname', 'mailmule.test', '--local-domain', 'mailmule.test']);
        fs.writeFileSync(path.join(dir, 'accounts.yaml'), 'users:\n  - name: alice\n  - name: bob\n', { mode: 0o600 });
        const config = path.join(dir, 'mailmule.yaml');
        runOnce([cli, 'passwd', 'alice', '-c', config], 'Alice-bench-pw\n');

        const commands: { name: string; args: string[] }[] = [
            { name: 'node -e 0', args: ['-e', '0'] },
            { name: 'mailmule --version', args: [cli, '--version'] },
            { name: 'mailmule status', args: [cli, 'status', '-c', config] },
            { name: 'mailmule queue', args: [cli, 'queue', '-c', config] },
            { name: 'mailmule users', args: [cli, 'users', '-c', config] }
        ];
        const times = new Map(commands.map(command => [command.name, [] as number[]]));
        for (const command of commands) runOnce(command.args); // warm the file cache
        for (let round = 0; round < rounds; round++) {
            for (const command of commands) times.get(command.name)!.push(runOnce(command.args));
        }

        const baseline = median(times.get('node -e 0')!);
        log(
            `${cli}; ${rounds} rounds; node ${process.version}; load average ${os
                .loadavg()
                .map(n => n.toFixed(2))
                .join(' ')}; ${os.cpus().length} CPUs`
        );
        console.log('| command | median | fastest | median above `node -e 0` | aim ≤ 0.3 s above |');
        console.log('| --- | --- | --- | --- | --- |');
        for (const command of commands) {
            const list = times.get(command.name)!;
            const above = median(list) - baseline;
            const verdict = command.name === 'node -e 0' ? '' : above <= AIM_SECONDS ? 'yes' : 'no';
            console.log(`| \`${command.name}\` | ${median(list).toFixed(3)} s | ${Math.min(...list).toFixed(3)} s | ${command.name === 'node -e 0' ? '' : `${above.toFixed(3)} s`} | ${verdict} |`);
        }
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

benchmark();
