/**
 * `npm run bench:imap-stress`: imaptest's stress mode against mailmule and against stock Dovecot.
 *
 * Both servers start empty with the same users (u1..u4, one password) on free loopback ports.
 * imaptest then runs 10 clients spread over the 4 users for 5 minutes against each server in
 * turn, with the same seed and the same mbox to APPEND from (imaptest's default.mbox): random
 * SELECT, FETCH, STORE, EXPUNGE, APPEND, … from clients that share mailboxes, every reply checked
 * against the state imaptest tracks (flags, MODSEQ, EXISTS, EXPUNGE, keywords). Reports per server
 * the commands completed per second (imaptest's "Totals:" divided by the run time), the
 * violations imaptest reported (grouped by kind), mailmule's peak RSS (VmHWM of the daemon) and
 * Dovecot's peak RSS over all its processes (sampled), with ratios; appends the results to
 * docs/benchmarks.md.
 *
 * Environment:
 *   MAILMULE_STRESS_SECS     seconds per server (default 300)
 *   MAILMULE_STRESS_CLIENTS  concurrent clients (default 10)
 *   MAILMULE_STRESS_USERS    users u1..uN (default 4)
 *   MAILMULE_STRESS_SEED     imaptest's seed (default 1)
 *   IMAPTEST_BIN             imaptest (default /opt/imaptest/imaptest/src/imaptest)
 *   MAILMULE_BENCH_DOCS      results file (default docs/benchmarks.md; "0" to not write one)
 *   MAILMULE_BENCH_ONLY      "mailmule" or "dovecot" to run one server (no ratios, no docs)
 *   MAILMULE_BENCH_KEEP      "1" keeps the temporary directory (imaptest's full output is there)
 *   MAILMULE_BENCH_LABEL     a note for the heading of the results section
 *
 * Everything listens on and connects to 127.0.0.1 only. Every wait is bounded.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import {
    ROOT,
    MAIN,
    daemonNodeArgs,
    HOST,
    log,
    fmtMB,
    freePort,
    killAll,
    stopChild,
    waitForImap,
    memoryOf,
    treeRss,
    startDovecot,
    runCli,
    machine,
    writeMailmuleConfig,
    writeResultsSection,
    intEnv,
    spawnMailmule
} from './support';
import { DEFAULT_IMAPTEST_BIN, runStress, stressArgs, type StressOptions, type StressResult } from './imaptest-stress';

const SECS = intEnv('MAILMULE_STRESS_SECS', 300);
const CLIENTS = intEnv('MAILMULE_STRESS_CLIENTS', 10);
const USERS = intEnv('MAILMULE_STRESS_USERS', 4);
const SEED = intEnv('MAILMULE_STRESS_SEED', 1);
const IMAPTEST_BIN = process.env.IMAPTEST_BIN || DEFAULT_IMAPTEST_BIN;
const MBOX = path.join(path.dirname(IMAPTEST_BIN), 'tests', 'default.mbox');
const ONLY = process.env.MAILMULE_BENCH_ONLY === 'mailmule' || process.env.MAILMULE_BENCH_ONLY === 'dovecot' ? process.env.MAILMULE_BENCH_ONLY : null;
const DOCS_ENV = process.env.MAILMULE_BENCH_DOCS;
const DOCS_FILE = DOCS_ENV === '0' || ONLY ? null : path.resolve(ROOT, DOCS_ENV || 'docs/benchmarks.md');
const KEEP = process.env.MAILMULE_BENCH_KEEP === '1';
const LABEL = process.env.MAILMULE_BENCH_LABEL ?? '';
const PASSWORD = 'stress-pass-1';
/** How often memory is sampled during a run. */
const SAMPLE_MS = 2000;

const userNames = () => Array.from({ length: USERS }, (_, i) => `u${i + 1}`);

interface Server {
    name: 'mailmule' | 'dovecot';
    port: number;
    child: ChildProcess;
    lines: string[];
    /** Daemon log lines at level error or above (mailmule). */
    errorLogLines: string[];
}

async function startMailmule(work: string): Promise<Server> {
    const dir = path.join(work, 'mailmule');
    fs.mkdirSync(dir, { recursive: true });
    const port = await freePort();
    const configFile = writeMailmuleConfig(dir, port, userNames());
    for (const name of userNames()) runCli(['passwd', name, '-c', configFile], `${PASSWORD}\n`, 60000);
    const errorLogLines: string[] = [];
    const { child, lines, started } = spawnMailmule(configFile, [], line => {
        if (/"level":(50|60)/.test(line)) errorLogLines.push(line.slice(0, 500));
    });
    await waitForImap('mailmule', port, child, lines, started, 60000);
    log(`mailmule: daemon pid ${child.pid}, listening on ${HOST}:${port}, RSS ${fmtMB(child.pid ? memoryOf(child.pid).rss : 0)}`);
    return { name: 'mailmule', port, child, lines, errorLogLines };
}

async function startAnchor(work: string): Promise<Server> {
    const dovecot = await startDovecot(
        path.join(work, 'dovecot'),
        userNames().map(name => ({ name, password: PASSWORD }))
    );
    return { name: 'dovecot', ...dovecot, errorLogLines: [] };
}

interface Measured {
    server: Server;
    result: StressResult;
    /** Commands completed per second of the stress period. */
    rate: number;
    startRss: number;
    /** Largest RSS seen while sampling (the whole process tree for Dovecot). */
    peakRss: number;
    /** VmHWM of the mailmule daemon at the end. */
    hwm: number;
    endRss: number;
}

async function stress(server: Server, work: string): Promise<Measured> {
    const pid = server.child.pid!;
    const rssOf = () => (server.name === 'mailmule' ? memoryOf(pid).rss : treeRss(pid));
    const startRss = rssOf();
    let peakRss = startRss;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssOf())), SAMPLE_MS);
    const options: StressOptions = {
        bin: IMAPTEST_BIN,
        host: HOST,
        port: server.port,
        userTemplate: 'u%d',
        users: USERS,
        password: PASSWORD,
        mbox: MBOX,
        clients: CLIENTS,
        secs: SECS,
        seed: SEED
    };
    log(`${server.name}: imaptest ${stressArgs(options).join(' ')}`);
    let result: StressResult;
    try {
        result = await runStress(options);
    } finally {
        clearInterval(sampler);
    }
    peakRss = Math.max(peakRss, rssOf());
    fs.writeFileSync(path.join(work, `imaptest-${server.name}.out`), result.output);
    const { hwm, rss } = server.name === 'mailmule' ? memoryOf(pid) : { hwm: 0, rss: rssOf() };
    const rate = result.commands / SECS;
    log(
        `${server.name}: ${result.commands} commands (${rate.toFixed(1)}/s), ${result.problems.length} problems, exit ${result.exitCode}, ` +
            `wall ${(result.wallMs / 1000).toFixed(1)} s, peak RSS ${fmtMB(server.name === 'mailmule' ? hwm : peakRss)}`
    );
    if (!result.commands) throw new Error(`${server.name}: no "Totals:" in imaptest's output:\n${result.output.slice(-3000)}`);
    return { server, result, rate, startRss, peakRss, hwm, endRss: rss };
}

// ------------------------------------------------------------------ report

function report(runs: Measured[]): string[] {
    const names = runs.map(r => r.server.name);
    const states = Object.keys(runs[0].result.totals);
    const out: string[] = [];
    out.push(`| | ${names.join(' | ')}${runs.length === 2 ? ' | ratio mailmule/dovecot' : ''} |`);
    out.push(`| --- |${names.map(() => ' ---: |').join('')}${runs.length === 2 ? ' ---: |' : ''}`);
    const row = (label: string, values: string[], ratio?: string) => out.push(`| ${label} | ${values.join(' | ')}${runs.length === 2 ? ` | ${ratio ?? ''}` : ''} |`);
    const ratio = (a: number, b: number) => (b ? `${(a / b).toFixed(2)}×` : '–');
    const m = runs.find(r => r.server.name === 'mailmule');
    const d = runs.find(r => r.server.name === 'dovecot');
    row(
        '**commands completed per second**',
        runs.map(r => `**${r.rate.toFixed(1)}**`),
        m && d ? `**${ratio(m.rate, d.rate)}**` : undefined
    );
    row(
        'commands completed (OK)',
        runs.map(r => String(r.result.commands))
    );
    row(
        '**errors reported by imaptest**',
        runs.map(r => `**${r.result.problems.length}**`)
    );
    row(
        'peak RSS',
        runs.map(r => (r.server.name === 'mailmule' ? `${fmtMB(r.hwm)} (VmHWM; ${fmtMB(r.startRss)} at start)` : `${fmtMB(r.peakRss)} (all processes, sampled every ${SAMPLE_MS / 1000} s)`)),
        m && d ? ratio(m.hwm, d.peakRss) : undefined
    );
    for (const state of states) {
        row(
            `${state}`,
            runs.map(r => String(r.result.totals[state] ?? 0)),
            m && d ? ratio(m.result.totals[state] ?? 0, d.result.totals[state] ?? 0) : undefined
        );
    }
    out.push('');
    for (const r of runs) {
        if (!r.result.kinds.size) {
            out.push(`- ${r.server.name}: no errors.`);
            continue;
        }
        out.push(`- ${r.server.name}: ${r.result.problems.length} errors, by kind:`);
        for (const [kind, count] of [...r.result.kinds].sort((a, b) => b[1] - a[1])) out.push(`  - ${count} × \`${kind.slice(0, 200)}\``);
        const first = r.result.problems[0];
        out.push(`  - first: \`${`${first.level}: ${first.text}`.slice(0, 300)}\``);
    }
    if (m?.server.errorLogLines.length) out.push(`- mailmule logged ${m.server.errorLogLines.length} lines at error level; the first: \`${m.server.errorLogLines[0].slice(0, 300)}\``);
    else if (m) out.push('- mailmule logged nothing at error level.');
    return out;
}

const HEADING = '## IMAP stress: imaptest against mailmule and Dovecot (`npm run bench:imap-stress`)';

function intro(): string {
    return [
        HEADING,
        '',
        "`bench/imap-stress.ts` runs Dovecot's imaptest in its stress mode (not the scripted suite) against each server in",
        'turn: both start empty with the same users `u1`..`u4` (one password) on free loopback ports, then',
        "`imaptest user=u%d users=4 clients=10 secs=300 seed=1 mbox=default.mbox` (imaptest's own mbox) runs 10 clients spread",
        'over the 4 users for 5 minutes: random SELECT, FETCH, STORE (with and without .SILENT), STORE \\Deleted + EXPUNGE,',
        'APPEND, LIST, STATUS, LOGOUT, with CONDSTORE, several clients in the same mailbox, each reply checked against the',
        'state imaptest tracks (flags, MODSEQ, EXISTS, EXPUNGE, keywords). "Commands completed per second" is imaptest\'s',
        '"Totals:" (commands answered OK, over all states) divided by the 5 minutes; "errors" are the `Error:`/`Warning:`',
        "lines it printed (a MODSEQ going backwards is a `Warning:`). mailmule's peak RSS is the daemon's `VmHWM`;",
        "Dovecot's is the largest sum of RSS over its master and all its processes, sampled every 2 s. imaptest itself",
        'runs on the same CPUs. Aim (from the issue): 0 errors.',
        '',
        'Options (environment): `MAILMULE_STRESS_SECS` (default 300; 60 is enough while developing), `MAILMULE_STRESS_CLIENTS`,',
        '`MAILMULE_STRESS_USERS`, `MAILMULE_STRESS_SEED`, `IMAPTEST_BIN`, and as for `bench:imap`: `MAILMULE_BENCH_DOCS=0`,',
        "`MAILMULE_BENCH_ONLY=mailmule|dovecot`, `MAILMULE_BENCH_KEEP=1` (keeps imaptest's full output), `MAILMULE_BENCH_LABEL`.",
        '',
        'Results are added at the end of this section, newest last.',
        ''
    ].join('\n');
}

function writeResults(file: string, section: string): void {
    writeResultsSection(file, HEADING, intro, section);
}

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
    if (!fs.existsSync(MAIN)) throw new Error(`${MAIN} is missing: run npm run build first`);
    if (!fs.existsSync(IMAPTEST_BIN)) throw new Error(`imaptest is not built at ${IMAPTEST_BIN}: run ../shared/tools/imaptest/build.sh /opt/imaptest, or set IMAPTEST_BIN`);
    const loadStart = os.loadavg();
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mailmule-stress-'));
    fs.chmodSync(work, 0o755);
    log(`work directory ${work}; ${SECS} s per server`);
    const runs: Measured[] = [];
    try {
        // One server at a time, so they do not compete for the CPUs.
        if (ONLY !== 'dovecot') {
            const server = await startMailmule(work);
            try {
                runs.push(await stress(server, work));
            } finally {
                await stopChild(server.child);
            }
        }
        if (ONLY !== 'mailmule') {
            const server = await startAnchor(work);
            try {
                runs.push(await stress(server, work));
            } finally {
                await stopChild(server.child);
            }
        }
        const lines = report(runs);
        const loadEnd = os.loadavg();
        lines.push(
            `- Load average (1 min) at the start ${loadStart[0].toFixed(2)}, at the end ${loadEnd[0].toFixed(2)} on ${os.availableParallelism()} CPUs` +
                `${loadStart[0] > 1 || loadEnd[0] > 3 ? ': other work was running, so the throughput figures are noisy' : ''}.`
        );
        const flags = daemonNodeArgs();
        lines.push(`- mailmule daemon node flags: ${flags.length ? `\`${flags.join(' ')}\`` : 'none'} (MAILMULE_BENCH_NODE_ARGS; default: the systemd unit's).`);
        process.stdout.write(`\n${lines.join('\n')}\n`);
        if (DOCS_FILE && runs.length === 2) {
            const when = new Date()
                .toISOString()
                .replace(/:\d\d\.\d+Z$/, ' UTC')
                .replace('T', ' ');
            const section = [
                `### ${when}: ${CLIENTS} clients, ${USERS} users, ${SECS} s per server, seed ${SEED}${LABEL ? ` (${LABEL})` : ''}`,
                '',
                ...machine('(maildir, default settings)'),
                '',
                ...lines,
                ''
            ].join('\n');
            writeResults(DOCS_FILE, section);
            log(`results appended to ${path.relative(ROOT, DOCS_FILE)}`);
        }
    } finally {
        if (KEEP) log(`kept ${work}`);
        else fs.rmSync(work, { recursive: true, force: true });
    }
}

main().then(
    () => process.exit(0),
    err => {
        process.stderr.write(`[bench] failed: ${(err as Error).stack ?? err}\n`);
        killAll('SIGKILL');
        process.exit(1);
    }
);
