/**
 * Running imaptest's stress mode and reading what it printed: the commands each state completed
 * (its "Totals:" table) and every protocol violation it reported, grouped by kind.
 *
 * In stress mode imaptest runs `clients` connections for `secs` seconds, each picking random
 * commands (SELECT, FETCH, STORE, EXPUNGE, APPEND, …) against the same mailboxes, and checks
 * every reply against the state it tracks: flags, MODSEQ, EXISTS, EXPUNGE, keywords. A violation
 * is printed as a line `Error: <user>[<pid>]: <what>` (or `Warning:`, `Panic:`, `Fatal:`),
 * sometimes in the middle of a line of its running statistics.
 */
import { spawn } from 'node:child_process';

export const DEFAULT_IMAPTEST_BIN = '/opt/imaptest/imaptest/src/imaptest';

export interface StressOptions {
    bin: string;
    host: string;
    port: number;
    /** printf template, e.g. `u%d`: imaptest picks users 1..users for it. */
    userTemplate: string;
    users: number;
    password: string;
    mbox: string;
    clients: number;
    secs: number;
    seed: number;
}

export interface StressProblem {
    level: 'Error' | 'Warning' | 'Panic' | 'Fatal';
    text: string;
}

export interface StressResult {
    /** Commands completed with OK, per imaptest state ("Logi", "Sele", "Fetc", …). */
    totals: Record<string, number>;
    /** Sum of `totals`. */
    commands: number;
    problems: StressProblem[];
    /** Problems grouped: numbers and user names replaced, so one kind of violation is one key. */
    kinds: Map<string, number>;
    exitCode: number | null;
    wallMs: number;
    output: string;
}

export function stressArgs(options: StressOptions): string[] {
    return [
        `host=${options.host}`,
        `port=${options.port}`,
        `user=${options.userTemplate}`,
        `users=${options.users}`,
        `pass=${options.password}`,
        `mbox=${options.mbox}`,
        `clients=${options.clients}`,
        `secs=${options.secs}`,
        `seed=${options.seed}`
    ];
}

/**
 * One kind of violation: without the client's name, without the server response imaptest quotes
 * after it (`…: * 3 FETCH (…)`), and with numbers (UIDs, modseqs, sequence numbers) made `N`.
 */
export function problemKind(problem: StressProblem): string {
    const text = problem.text.replace(/^[^\s[]*\[\d+\]: /, '').replace(/: \* .*$/, '');
    return `${problem.level}: ${text.replace(/\d+/g, 'N')}`;
}

/** Reads imaptest's stress output. Pure; exported for its unit test. */
export function parseStressOutput(output: string): Omit<StressResult, 'exitCode' | 'wallMs' | 'output'> {
    const lines = output.split(/\r?\n/);
    const problems: StressProblem[] = [];
    for (const line of lines) {
        const match = /(?:^|\s)(Error|Warning|Panic|Fatal): (.*)$/.exec(line);
        if (match) problems.push({ level: match[1] as StressProblem['level'], text: match[2].trim() });
    }
    const kinds = new Map<string, number>();
    for (const problem of problems) {
        const kind = problemKind(problem);
        kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
    }

    const totals: Record<string, number> = {};
    const start = lines.lastIndexOf('Totals:');
    if (start >= 0) {
        const names = (lines[start + 1] ?? '').trim().split(/\s+/).filter(Boolean);
        for (const line of lines.slice(start + 2)) {
            const fields = line.trim().split(/\s+/);
            if (fields.length === names.length && fields.every(field => /^\d+$/.test(field))) {
                names.forEach((name, i) => (totals[name] = Number(fields[i])));
                break;
            }
        }
    }
    const commands = Object.values(totals).reduce((sum, n) => sum + n, 0);
    return { totals, commands, problems, kinds };
}

/** Runs imaptest to its end (secs plus its own final wait), killing it by pid after `timeoutMs`. */
export function runStress(options: StressOptions, timeoutMs = (options.secs + 120) * 1000): Promise<StressResult> {
    const started = Date.now();
    return new Promise((resolve, reject) => {
        const child = spawn(options.bin, stressArgs(options), {
            env: { ...process.env, LD_LIBRARY_PATH: [process.env.LD_LIBRARY_PATH, '/usr/lib/dovecot'].filter(Boolean).join(':') },
            stdio: ['ignore', 'pipe', 'pipe']
        });
        const chunks: Buffer[] = [];
        child.stdout.on('data', chunk => chunks.push(chunk));
        child.stderr.on('data', chunk => chunks.push(chunk));
        const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        child.on('error', err => {
            clearTimeout(timer);
            reject(err);
        });
        child.on('close', code => {
            clearTimeout(timer);
            const output = Buffer.concat(chunks).toString('utf8');
            resolve({ ...parseStressOutput(output), exitCode: code, wallMs: Date.now() - started, output });
        });
    });
}
