/**
 * `npm run bench:imap`: mailmule's IMAP server against Dovecot on the same mailbox.
 *
 * Fills a 10,000-message INBOX (bench/corpus.ts, cached under bench/.cache/), imports it into a
 * fresh mailmule data directory with `mailmule import`, copies it into a Dovecot Maildir, starts
 * both servers on free loopback ports, and times a Thunderbird-like session against each with
 * the same raw client (bench/metered-imap-client.ts):
 *
 *   1. connect + LOGIN + SELECT INBOX (a fresh connection every run)
 *   2. UID FETCH 1:* (FLAGS)
 *   3. UID FETCH 1:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Subject Date Message-ID References Content-Type)])
 *   4. 100 × UID FETCH <uid> BODY.PEEK[] (separate commands; seeded random UIDs, the same for both servers)
 *   5. UID SEARCH TEXT "<word>" (a word in about 4 % of the messages)
 *
 * One warm-up session per server (not counted; its responses are kept and compared between the
 * servers), then RUNS timed sessions per server, alternating which server goes first. Prints the
 * medians, ratios and mailmule's peak RSS (VmHWM of the daemon process), and appends the results
 * to docs/benchmarks.md.
 *
 * Environment:
 *   MAILMULE_BENCH_MESSAGES  messages in the INBOX (default 10000)
 *   MAILMULE_BENCH_RUNS      timed sessions per server (default 5)
 *   MAILMULE_BENCH_SEED      corpus and UID seed (default 1)
 *   MAILMULE_BENCH_DOCS      results file (default docs/benchmarks.md; "0" to not write one)
 *   MAILMULE_BENCH_CPU_PROF  a directory: run the daemon under --cpu-prof and write the step
 *                            windows (steps.json) and the daemon's output (daemon.log) beside the
 *                            profile; docs are then not written
 *   MAILMULE_BENCH_ONLY      "mailmule" or "dovecot" to run one server (no ratios, no docs)
 *   MAILMULE_BENCH_KEEP      "1" keeps the temporary directory
 *   MAILMULE_BENCH_STORE_CACHE "1" keeps the imported data directory under bench/.cache/ (keyed by
 *                            corpus and schema) and copies it instead of importing again: for
 *                            quick iterations on the read path; the import rate is then not measured
 *   MAILMULE_BENCH_NODE_ARGS node flags for the mailmule daemon (default: those of the systemd unit;
 *                            "none" for none)
 *   MAILMULE_BENCH_LABEL     a note for the heading of the results section (e.g. what was changed)
 *
 * Everything listens on and connects to 127.0.0.1 only. Every wait is bounded.
 *
 * Over 500 lines: one benchmark read top to bottom (corpus, both servers, the session's steps, the
 * report); what the benchmarks share is in bench/support.ts.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { ensureCorpus, Rng, type CorpusSummary } from './corpus';
import { MeteredImapClient, type CommandResult } from './metered-imap-client';
import {
    ROOT,
    MAIN,
    HOST,
    log,
    fmtMB,
    freePort,
    killAll,
    stopChild,
    waitForImap,
    memoryOf,
    cpuNsOf,
    dovecotImapHwm,
    startDovecot as startDovecotServer,
    runCli,
    duBytes,
    machine,
    median,
    writeMailmuleConfig,
    writeResultsSection,
    intEnv,
    daemonNodeArgs,
    spawnMailmule,
    makeLocalCa
} from './support';

const USER = 'bench';
const PASSWORD = 'bench-pass-1';

const COUNT = intEnv('MAILMULE_BENCH_MESSAGES', 10000);
const RUNS = intEnv('MAILMULE_BENCH_RUNS', 5);
const SEED = intEnv('MAILMULE_BENCH_SEED', 1);
const BODY_FETCHES = 100;
const PROFILE_DIR = process.env.MAILMULE_BENCH_CPU_PROF ? path.resolve(process.env.MAILMULE_BENCH_CPU_PROF) : null;
const ONLY = process.env.MAILMULE_BENCH_ONLY === 'mailmule' || process.env.MAILMULE_BENCH_ONLY === 'dovecot' ? process.env.MAILMULE_BENCH_ONLY : null;
const DOCS_ENV = process.env.MAILMULE_BENCH_DOCS;
const DOCS_FILE = DOCS_ENV === '0' || PROFILE_DIR || ONLY ? null : path.resolve(ROOT, DOCS_ENV || 'docs/benchmarks.md');
const KEEP = process.env.MAILMULE_BENCH_KEEP === '1';
const STORE_CACHE = process.env.MAILMULE_BENCH_STORE_CACHE === '1';
const LABEL = process.env.MAILMULE_BENCH_LABEL ?? '';
const DAEMON_NODE_ARGS = daemonNodeArgs();

const HEADER_FIELDS = 'From To Cc Subject Date Message-ID References Content-Type';
const STEPS = [
    { key: 'login', label: '1. LOGIN + SELECT (new connection)' },
    { key: 'flags', label: '2. UID FETCH 1:* (FLAGS)' },
    { key: 'headers', label: '3. UID FETCH 1:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (…)])' },
    { key: 'bodies', label: `4. ${BODY_FETCHES} × UID FETCH <uid> BODY.PEEK[]` },
    { key: 'search', label: '5. UID SEARCH TEXT' }
] as const;
type StepKey = (typeof STEPS)[number]['key'];

// ------------------------------------------------------------------ the servers

interface ServerUnderTest {
    name: 'mailmule' | 'dovecot';
    port: number;
    child: ChildProcess;
    lines: string[];
    /** Largest per-connection process RSS seen (Dovecot). */
    sessionHwm: number;
    /** RSS right after start-up, before any session (mailmule). */
    startRss: number;
}

async function startDovecot(work: string, corpus: CorpusSummary): Promise<ServerUnderTest> {
    const { port, child, lines } = await startDovecotServer(path.join(work, 'dovecot'), [{ name: USER, password: PASSWORD, maildir: corpus.dir }]);
    return { name: 'dovecot', port, child, lines, sessionHwm: 0, startRss: 0 };
}

interface MailmuleSetup {
    configFile: string;
    port: number;
    importSeconds: number;
    storeBytes: number;
}

/** Where MAILMULE_BENCH_STORE_CACHE keeps an imported store: by corpus and by the schema that wrote it. */
function storeCacheDir(corpus: CorpusSummary): string {
    const schema = fs.readFileSync(path.join(ROOT, 'dist', 'src', 'store', 'schema.js'));
    const key = crypto.createHash('sha256').update(schema).digest('hex').slice(0, 12);
    return path.join(ROOT, 'bench', '.cache', `store-${path.basename(path.dirname(corpus.dir))}-${key}`);
}

async function setupMailmule(work: string, corpus: CorpusSummary): Promise<MailmuleSetup> {
    const dir = path.join(work, 'mailmule');
    fs.mkdirSync(dir, { recursive: true });
    const port = await freePort();
    const configFile = writeMailmuleConfig(dir, port, [USER]);
    runCli(['passwd', USER, '-c', configFile], `${PASSWORD}\n`, 60000);
    const data = path.join(dir, 'data');
    const cached = STORE_CACHE ? storeCacheDir(corpus) : null;
    if (cached && fs.existsSync(cached)) {
        log(`mailmule: copying the imported store from ${cached} (MAILMULE_BENCH_STORE_CACHE)`);
        fs.rmSync(data, { recursive: true, force: true });
        fs.cpSync(cached, data, { recursive: true });
        return { configFile, port, importSeconds: NaN, storeBytes: duBytes(data) };
    }
    log(`mailmule: importing ${corpus.count} messages (mailmule import)`);
    const started = process.hrtime.bigint();
    const output = runCli(['import', USER, corpus.dir, '-c', configFile], null, 30 * 60 * 1000);
    const importSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    log(`mailmule: ${output.trim().split('\n').pop()} in ${importSeconds.toFixed(1)} s`);
    if (cached) fs.cpSync(data, cached, { recursive: true });
    return { configFile, port, importSeconds, storeBytes: duBytes(data) };
}

async function startMailmule(setup: MailmuleSetup): Promise<ServerUnderTest> {
    const profile: string[] = [];
    if (PROFILE_DIR) {
        fs.mkdirSync(PROFILE_DIR, { recursive: true });
        profile.push('--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`);
    }
    makeLocalCa(setup.configFile);
    // With a profile, the daemon's output (e.g. --trace-gc lines from MAILMULE_BENCH_NODE_ARGS) is kept beside it.
    // Written synchronously: main() ends with process.exit, which would drop a stream's pending writes.
    const daemonLog = PROFILE_DIR ? fs.openSync(path.join(PROFILE_DIR, 'daemon.log'), 'w') : null;
    // At log level warn the "mailmule started" line (info) is not printed; the greeting is the signal then.
    const { child, lines, started } = spawnMailmule(setup.configFile, profile, daemonLog === null ? undefined : line => fs.writeSync(daemonLog, line + '\n'));
    await waitForImap('mailmule', setup.port, child, lines, started, 60000);
    const startRss = child.pid ? memoryOf(child.pid).rss : 0;
    log(`mailmule: daemon pid ${child.pid}, listening on ${HOST}:${setup.port}, RSS ${fmtMB(startRss)}`);
    return { name: 'mailmule', port: setup.port, child, lines, sessionHwm: 0, startRss };
}

// ------------------------------------------------------------------ the session

interface SessionResult {
    ns: Record<StepKey, bigint>;
    loginNs: bigint;
    selectNs: bigint;
    bytes: Record<StepKey, number>;
    literalBytes: Record<StepKey, number>;
    /** mailmule's CPU time in each step (cpuNsOf): main thread, V8's helper threads, all threads. */
    cpuNs?: Record<StepKey, { main: number; v8: number; all: number }>;
    captured?: Partial<Record<StepKey, Buffer>> & { select?: Buffer };
}

interface StepWindow {
    server: string;
    run: number;
    step: StepKey;
    start: string;
    end: string;
}
const windows: StepWindow[] = [];

function bodyUids(run: number, count: number): number[] {
    const rng = new Rng((SEED * 7919 + run + 1) >>> 0);
    const wanted = Math.min(BODY_FETCHES, count);
    const picked = new Set<number>();
    while (picked.size < wanted) picked.add(rng.int(1, count));
    return [...picked];
}

function ok(result: CommandResult, what: string): CommandResult {
    if (result.status !== 'OK') throw new Error(`${what}: ${result.line}`);
    return result;
}

async function session(server: ServerUnderTest, run: number, capture: boolean, searchWord: string): Promise<SessionResult> {
    const ns = {} as Record<StepKey, bigint>;
    const bytes = {} as Record<StepKey, number>;
    const literalBytes = {} as Record<StepKey, number>;
    const captured: SessionResult['captured'] = {};
    const pid = server.name === 'mailmule' ? server.child.pid : undefined;
    const cpuNs = pid ? ({} as Record<StepKey, { main: number; v8: number; all: number }>) : undefined;
    let cpuAtStart = pid ? cpuNsOf(pid) : null;
    const mark = (step: StepKey, start: bigint, end: bigint) => {
        ns[step] = end - start;
        if (pid && cpuNs && cpuAtStart) {
            const now = cpuNsOf(pid);
            cpuNs[step] = { main: now.main - cpuAtStart.main, v8: now.v8 - cpuAtStart.v8, all: now.all - cpuAtStart.all };
            cpuAtStart = now;
        }
        if (PROFILE_DIR) windows.push({ server: server.name, run, step, start: String(start), end: String(end) });
    };

    const t0 = process.hrtime.bigint();
    const { client, greeting } = await MeteredImapClient.connect(HOST, server.port, 10000);
    if (!greeting.startsWith('* OK')) throw new Error(`${server.name}: unexpected greeting ${greeting}`);
    try {
        const login = ok(await client.command(`LOGIN ${USER} "${PASSWORD}"`, { timeoutMs: 30000 }), `${server.name} LOGIN`);
        const select = ok(await client.command('SELECT INBOX', { capture, timeoutMs: 300000 }), `${server.name} SELECT`);
        const t1 = process.hrtime.bigint();
        mark('login', t0, t1);
        bytes.login = client.totalBytes;
        literalBytes.login = 0;
        if (capture) captured.select = select.response;

        const commands: [StepKey, string][] = [
            ['flags', 'UID FETCH 1:* (FLAGS)'],
            ['headers', `UID FETCH 1:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (${HEADER_FIELDS})])`]
        ];
        for (const [step, command] of commands) {
            const start = process.hrtime.bigint();
            const result = ok(await client.command(command, { capture, timeoutMs: 300000 }), `${server.name} ${command}`);
            mark(step, start, process.hrtime.bigint());
            bytes[step] = result.bytes;
            literalBytes[step] = result.literalBytes;
            if (capture) captured[step] = result.response;
        }

        const uids = bodyUids(run, COUNT);
        bytes.bodies = 0;
        literalBytes.bodies = 0;
        const bodyParts: Buffer[] = [];
        const bodiesStart = process.hrtime.bigint();
        for (const uid of uids) {
            const result = ok(await client.command(`UID FETCH ${uid} BODY.PEEK[]`, { capture, timeoutMs: 60000 }), `${server.name} UID FETCH ${uid} BODY.PEEK[]`);
            bytes.bodies += result.bytes;
            literalBytes.bodies += result.literalBytes;
            if (capture && result.response) bodyParts.push(result.response);
        }
        mark('bodies', bodiesStart, process.hrtime.bigint());
        if (capture) captured.bodies = Buffer.concat(bodyParts);

        const searchStart = process.hrtime.bigint();
        const search = ok(await client.command(`UID SEARCH TEXT "${searchWord}"`, { capture, timeoutMs: 300000 }), `${server.name} UID SEARCH`);
        mark('search', searchStart, process.hrtime.bigint());
        bytes.search = search.bytes;
        literalBytes.search = 0;
        if (capture) captured.search = search.response;

        if (server.name === 'dovecot' && server.child.pid) {
            server.sessionHwm = Math.max(server.sessionHwm, dovecotImapHwm(server.child.pid));
        }
        return { ns, loginNs: login.ns, selectNs: select.ns, bytes, literalBytes, cpuNs, captured: capture ? captured : undefined };
    } finally {
        await client.close();
    }
}

// ------------------------------------------------------------------ checks on the warm-up responses

function searchUids(response: Buffer | undefined): number[] {
    const text = response?.toString('latin1') ?? '';
    const out: number[] = [];
    for (const match of text.matchAll(/^\* SEARCH([ \d]*)/gm)) {
        out.push(...match[1].trim().split(/\s+/).filter(Boolean).map(Number));
    }
    return out.sort((a, b) => a - b);
}

/** UID → Message-ID from the header-fields fetch (the literal follows the UID in both servers' output). */
function messageIds(response: Buffer | undefined): Map<number, string> {
    const text = response?.toString('latin1') ?? '';
    const out = new Map<number, string>();
    const parts = text.split(/\r\n(?=\* \d+ FETCH )/);
    for (const part of parts) {
        const uid = /UID (\d+)/.exec(part);
        const id = /^Message-ID:\s*(<[^>\r\n]*>)/im.exec(part);
        if (uid && id) out.set(Number(uid[1]), id[1].toLowerCase());
    }
    return out;
}

function fetchCount(response: Buffer | undefined): number {
    return (response?.toString('latin1').match(/^\* \d+ FETCH /gm) ?? []).length;
}

function existsOf(response: Buffer | undefined): number {
    const match = /^\* (\d+) EXISTS/m.exec(response?.toString('latin1') ?? '');
    return match ? Number(match[1]) : -1;
}

function checkWarmups(results: Map<string, SessionResult>, corpus: CorpusSummary): string[] {
    const notes: string[] = [];
    for (const [name, result] of results) {
        const c = result.captured!;
        const exists = existsOf(c.select);
        if (exists !== corpus.count) notes.push(`${name}: SELECT reports ${exists} EXISTS, expected ${corpus.count}`);
        const flags = fetchCount(c.flags);
        if (flags !== corpus.count) notes.push(`${name}: FLAGS fetch returned ${flags} FETCH responses, expected ${corpus.count}`);
        const headers = fetchCount(c.headers);
        if (headers !== corpus.count) notes.push(`${name}: header fetch returned ${headers} FETCH responses, expected ${corpus.count}`);
        const hits = searchUids(c.search).length;
        if (hits !== corpus.searchHits) notes.push(`${name}: SEARCH TEXT found ${hits} messages; the corpus has the word in ${corpus.searchHits}`);
    }
    const mm = results.get('mailmule');
    const dc = results.get('dovecot');
    if (mm && dc) {
        const a = messageIds(mm.captured!.headers);
        const b = messageIds(dc.captured!.headers);
        let differ = 0;
        for (const [uid, id] of a) if (b.get(uid) !== id) differ++;
        if (differ || a.size !== b.size) notes.push(`UID → Message-ID differs between the servers for ${differ} UIDs (${a.size} vs ${b.size} parsed)`);
        if (mm.literalBytes.bodies !== dc.literalBytes.bodies) {
            notes.push(`BODY[] literal bytes differ: mailmule ${mm.literalBytes.bodies}, dovecot ${dc.literalBytes.bodies}`);
        }
        const sa = searchUids(mm.captured!.search).join(' ');
        const sb = searchUids(dc.captured!.search).join(' ');
        if (sa !== sb) notes.push('UID SEARCH TEXT results differ between the servers');
    }
    return notes;
}

// ------------------------------------------------------------------ statistics and report

const seconds = (ns: bigint) => Number(ns) / 1e9;
const fmtS = (s: number) => (s < 0.1 ? s.toFixed(4) : s < 10 ? s.toFixed(3) : s.toFixed(2));

interface Summary {
    medians: Record<string, Record<StepKey | 'session', number>>;
    spread: Record<string, Record<StepKey | 'session', [number, number]>>;
    loginSelect: Record<string, [number, number]>;
}

function summarise(runs: Map<string, SessionResult[]>): Summary {
    const medians: Summary['medians'] = {};
    const spread: Summary['spread'] = {};
    const loginSelect: Summary['loginSelect'] = {};
    for (const [name, results] of runs) {
        medians[name] = {} as Record<StepKey | 'session', number>;
        spread[name] = {} as Record<StepKey | 'session', [number, number]>;
        for (const step of STEPS) {
            const values = results.map(r => seconds(r.ns[step.key]));
            medians[name][step.key] = median(values);
            spread[name][step.key] = [Math.min(...values), Math.max(...values)];
        }
        const totals = results.map(r => STEPS.reduce((sum, step) => sum + seconds(r.ns[step.key]), 0));
        medians[name].session = median(totals);
        spread[name].session = [Math.min(...totals), Math.max(...totals)];
        loginSelect[name] = [median(results.map(r => seconds(r.loginNs))), median(results.map(r => seconds(r.selectNs)))];
    }
    return { medians, spread, loginSelect };
}

function table(summary: Summary, servers: string[]): string {
    const both = servers.length === 2;
    const header = ['step', ...servers.map(s => `${s} median (s)`), ...servers.map(s => `${s} min–max`), ...(both ? ['ratio mailmule/dovecot'] : [])];
    const rows: string[][] = [];
    const keys: (StepKey | 'session')[] = [...STEPS.map(s => s.key), 'session'];
    for (const key of keys) {
        const label = key === 'session' ? '**whole session (sum of steps)**' : STEPS.find(s => s.key === key)!.label;
        const row = [label];
        for (const s of servers) row.push(fmtS(summary.medians[s][key]));
        for (const s of servers) row.push(`${fmtS(summary.spread[s][key][0])}–${fmtS(summary.spread[s][key][1])}`);
        if (both) {
            const ratio = summary.medians.mailmule[key] / summary.medians.dovecot[key];
            const limit = key === 'session' ? 1.5 : 2;
            row.push(`${ratio.toFixed(2)}×${ratio > limit ? ' ⚠' : ''}`);
        }
        rows.push(row);
    }
    const lines = [`| ${header.join(' | ')} |`, `|${header.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`];
    for (const row of rows) lines.push(`| ${row.join(' | ')} |`);
    return lines.join('\n');
}

function corpusLine(corpus: CorpusSummary): string {
    return (
        `- corpus: ${corpus.count.toLocaleString('en')} messages, ${fmtMB(corpus.totalBytes)} (seed ${corpus.seed}; sizes ${(corpus.minBytes / 1024).toFixed(1)} KB – ${(corpus.maxBytes / 1024).toFixed(0)} KB, median ${(corpus.medianBytes / 1024).toFixed(1)} KB); ` +
        `${corpus.plain} text/plain, ${corpus.alternative} multipart/alternative, ${corpus.withAttachments} multipart/mixed with base64 attachments; ` +
        `${corpus.nonAscii} with non-ASCII encoded words; ${corpus.replies} replies with References; ${corpus.seen} \\Seen; ` +
        `"${corpus.searchWord}" in ${corpus.searchHits}`
    );
}

function interpretation(summary: Summary, mailmuleHwm: number): string[] {
    const m = summary.medians.mailmule;
    const d = summary.medians.dovecot;
    const sessionRatio = m.session / d.session;
    const over = STEPS.filter(step => m[step.key] / d[step.key] > 1.5);
    const worst = [...STEPS].sort((a, b) => m[b.key] - d[b.key] - (m[a.key] - d[a.key]))[0];
    const out = [
        `- Whole session: ${sessionRatio.toFixed(2)}× Dovecot (aim ≤ 0.5×, issue 11): ${sessionRatio <= 0.5 ? 'met' : 'not met'}.`,
        `- Steps over 1.5× Dovecot (aim: none, issue 11): ${over.length ? over.map(s => `${s.label.split('.')[0]} (${(m[s.key] / d[s.key]).toFixed(2)}×)`).join(', ') : 'none'}.`,
        `- mailmule peak RSS ${fmtMB(mailmuleHwm)} (aim ≤ 100 MB, issue 11): ${mailmuleHwm <= 100 * 1024 * 1024 ? 'met' : 'not met'}.`,
        `- Most of the absolute gap is in step ${worst.label.split('.')[0]} (${fmtS(m[worst.key])} s vs ${fmtS(d[worst.key])} s).`
    ];
    return out;
}

const IMAP_HEADING = '## IMAP: mailmule against Dovecot (`npm run bench:imap`)';

function imapIntro(): string {
    return [
        IMAP_HEADING,
        '',
        '`bench/imap.ts` builds a seeded corpus (`bench/corpus.ts`, cached in `bench/.cache/`), imports it into a fresh',
        'mailmule data directory with `mailmule import`, copies the same Maildir into a Dovecot started by the benchmark',
        '(its own config in a temporary directory, IMAP on a free loopback port, no LMTP), and times a Thunderbird-like',
        'session against each server with the same minimal raw-socket client (`bench/metered-imap-client.ts`: it reads up to the tagged',
        'completion, skipping literals by byte count, and parses nothing else):',
        '',
        '1. connect + `LOGIN` + `SELECT INBOX` on a fresh connection;',
        '2. `UID FETCH 1:* (FLAGS)`;',
        `3. \`UID FETCH 1:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (${HEADER_FIELDS})])\`;`,
        '4. 100 separate `UID FETCH <uid> BODY.PEEK[]` commands (seeded random UIDs, the same for both servers);',
        '5. `UID SEARCH TEXT "<word>"` for a word that is in about 4 % of the messages.',
        '',
        'One warm-up session per server is not counted (Dovecot builds its index and cache files then; its responses are',
        "compared with mailmule's: same Message-ID per UID, same BODY[] bytes, same SEARCH hits). Then 5 timed sessions per",
        'server, alternating which server goes first. The figures are medians; "min–max" is the spread over the runs. Peak RSS',
        'is `VmHWM` of the mailmule daemon process after all sessions. Aims (issue 11): whole session within',
        '0.5 × Dovecot, every step within 1.5 ×, peak RSS at most 100 MB.',
        '',
        'Options (environment): `MAILMULE_BENCH_MESSAGES=1000` for a quick run, `MAILMULE_BENCH_RUNS`, `MAILMULE_BENCH_SEED`,',
        '`MAILMULE_BENCH_DOCS=0` (do not write here), `MAILMULE_BENCH_ONLY=mailmule|dovecot`, `MAILMULE_BENCH_KEEP=1`,',
        '`MAILMULE_BENCH_NODE_ARGS` (node flags for the daemon), `MAILMULE_BENCH_LABEL` (a note for the heading), and',
        '`MAILMULE_BENCH_CPU_PROF=<dir>`: the daemon runs under `--cpu-prof` and the step windows go to `<dir>/steps.json`;',
        '`node dist/bench/profile-summary.js <dir>` then lists the heaviest functions of each step as file:line.',
        'The full run takes about 1.5–3 minutes here (corpus generation about 10 s the first time, import 25–110 s).',
        '',
        'Results are added at the end of this section, newest last.',
        ''
    ].join('\n');
}

function writeResults(file: string, section: string): void {
    writeResultsSection(file, IMAP_HEADING, imapIntro, section);
}

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
    if (!fs.existsSync(MAIN)) throw new Error(`${MAIN} is missing: run npm run build first`);
    const loadStart = os.loadavg();
    const corpusStarted = Date.now();
    const corpus = ensureCorpus({ count: COUNT, seed: SEED, cacheRoot: path.join(ROOT, 'bench', '.cache'), log });
    log(`corpus ready in ${((Date.now() - corpusStarted) / 1000).toFixed(1)} s: ${corpus.dir} (${fmtMB(corpus.totalBytes)})`);

    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mailmule-bench-'));
    fs.chmodSync(work, 0o755);
    log(`work directory ${work}`);
    const servers: ServerUnderTest[] = [];
    let setup: MailmuleSetup | null = null;
    try {
        if (ONLY !== 'mailmule') servers.push(await startDovecot(work, corpus));
        if (ONLY !== 'dovecot') {
            setup = await setupMailmule(work, corpus);
            servers.unshift(await startMailmule(setup));
        }
        const names = servers.map(s => s.name);

        log('warm-up sessions (not counted)');
        const warm = new Map<string, SessionResult>();
        for (const server of servers) {
            const started = Date.now();
            warm.set(server.name, await session(server, -1, true, corpus.searchWord));
            log(`  ${server.name}: warm-up took ${((Date.now() - started) / 1000).toFixed(2)} s`);
        }
        const mailmuleServer = servers.find(s => s.name === 'mailmule');
        const warmHwm = mailmuleServer?.child.pid ? memoryOf(mailmuleServer.child.pid).hwm : 0;
        const notes = checkWarmups(warm, corpus);
        for (const note of notes) log(`CHECK: ${note}`);
        if (!notes.length) log('checks: both servers returned the same messages, bodies and search hits');

        const runs = new Map<string, SessionResult[]>(names.map(n => [n, []]));
        for (let run = 0; run < RUNS; run++) {
            const order = run % 2 === 0 ? servers : [...servers].reverse();
            for (const server of order) {
                const result = await session(server, run, false, corpus.searchWord);
                runs.get(server.name)!.push(result);
                const total = STEPS.reduce((sum, step) => sum + seconds(result.ns[step.key]), 0);
                log(`  run ${run + 1}/${RUNS} ${server.name.padEnd(8)} ${STEPS.map(step => `${step.key} ${fmtS(seconds(result.ns[step.key]))}`).join('  ')}  total ${fmtS(total)} s`);
            }
        }

        const mailmule = servers.find(s => s.name === 'mailmule');
        const memory = mailmule?.child.pid ? memoryOf(mailmule.child.pid) : { hwm: 0, rss: 0 };
        const dovecot = servers.find(s => s.name === 'dovecot');
        const summary = summarise(runs);
        const markdown = table(summary, names);
        const bytesLines = STEPS.map(step => `| ${step.label} | ${names.map(n => fmtMB(warm.get(n)!.bytes[step.key])).join(' | ')} |`);
        const bytesTable = [`| step | ${names.map(n => `${n} bytes received`).join(' | ')} |`, `| --- |${names.map(() => ' ---: |').join('')}`, ...bytesLines].join('\n');

        const report: string[] = [];
        report.push(markdown, '');
        for (const name of names) {
            const [login, select] = summary.loginSelect[name];
            report.push(`- ${name}: step 1 splits into LOGIN ${fmtS(login)} s and SELECT ${fmtS(select)} s (medians, after connect + greeting).`);
        }
        const cpuRuns = runs.get('mailmule')?.filter(r => r.cpuNs) ?? [];
        if (cpuRuns.length) {
            const ms = (values: number[]) => (median(values) / 1e6).toFixed(1);
            const perStep = STEPS.map(
                step =>
                    `${step.label.split('.')[0]}: ${ms(cpuRuns.map(r => r.cpuNs![step.key].main))} / ${ms(cpuRuns.map(r => r.cpuNs![step.key].v8))} / ${ms(cpuRuns.map(r => r.cpuNs![step.key].all))}`
            );
            report.push(
                `- mailmule daemon CPU per step in ms, main thread / V8's helper threads (GC, background compiles) / all threads (medians; on-CPU time from /proc schedstat, which the machine's load barely moves): ${perStep.join(', ')}.`
            );
            const bodies = cpuRuns.map(r => r.cpuNs!.bodies);
            report.push(`- mailmule daemon CPU in step 4 by run (main / V8 helpers, ms): ${bodies.map(cpu => `${(cpu.main / 1e6).toFixed(0)}/${(cpu.v8 / 1e6).toFixed(0)}`).join(', ')}.`);
        }
        if (mailmule) {
            report.push(
                `- mailmule daemon peak RSS (VmHWM): **${fmtMB(memory.hwm)}** (RSS after start-up ${fmtMB(mailmule.startRss)}, peak after the warm-up session ${fmtMB(warmHwm)}, RSS at the end ${fmtMB(memory.rss)}).`
            );
        }
        if (dovecot) report.push(`- Dovecot per-connection imap process peak RSS (for orientation): ${fmtMB(dovecot.sessionHwm)}.`);
        if (setup)
            report.push(
                `- mailmule import of the corpus: ${Number.isNaN(setup.importSeconds) ? 'not measured (store copied from MAILMULE_BENCH_STORE_CACHE)' : `${setup.importSeconds.toFixed(1)} s`}; data directory ${fmtMB(setup.storeBytes)}.`
            );
        report.push('', bytesTable, '');
        if (notes.length) report.push(...notes.map(n => `- CHECK FAILED: ${n}`));
        else if (names.length === 2) report.push('- Warm-up checks passed: same Message-ID for every UID, same BODY[] bytes, same SEARCH hits on both servers.');
        else report.push('- Warm-up checks passed: every message fetched, SEARCH hits as in the corpus.');
        const loadEnd = os.loadavg();
        report.push(
            `- Load average (1 min) at the start ${loadStart[0].toFixed(2)}, at the end ${loadEnd[0].toFixed(2)} on ${os.availableParallelism()} CPUs (the benchmark itself adds about 1)${loadStart[0] > 1 ? ': other work was running, so absolute figures are noisy' : ''}.`
        );
        if (DAEMON_NODE_ARGS.length) report.push(`- mailmule daemon node flags: \`${DAEMON_NODE_ARGS.join(' ')}\`.`);
        report.push('');
        if (mailmule && dovecot) report.push(...interpretation(summary, memory.hwm), '');

        process.stdout.write(`\n${report.join('\n')}\n`);

        if (PROFILE_DIR) {
            fs.writeFileSync(path.join(PROFILE_DIR, 'steps.json'), JSON.stringify({ pid: mailmule?.child.pid, windows }, null, 2));
            log(`step windows written to ${path.join(PROFILE_DIR, 'steps.json')}`);
        }
        if (DOCS_FILE && mailmule && dovecot) {
            const when = new Date()
                .toISOString()
                .replace(/:\d\d\.\d+Z$/, ' UTC')
                .replace('T', ' ');
            const section = [
                `### ${when}: ${corpus.count.toLocaleString('en')} messages, ${RUNS} run${RUNS === 1 ? '' : 's'}${LABEL ? ` (${LABEL})` : ''}`,
                '',
                ...machine(),
                corpusLine(corpus),
                '',
                ...report,
                ''
            ].join('\n');
            writeResults(DOCS_FILE, section);
            log(`results appended to ${path.relative(ROOT, DOCS_FILE)}`);
        }
    } finally {
        for (const server of servers) {
            await stopChild(server.child);
        }
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
