/**
 * Uplink sync benchmark (`npm run bench:sync`): mailmule's receive side against mbsync (isync)
 * and offlineimap, pulling the same Dovecot INBOX through the same byte-counting link proxy.
 *
 * Setup: one real upstream (test/support/upstream.ts: Dovecot + Postfix on loopback) per link kind,
 * with one upstream account per client, each loaded with the same seeded corpus
 * (bench/corpus.ts with attachments up to 500 KB) written straight into its Maildir/cur before
 * the first SELECT, INTERNALDATEs spread over the last 20 days. Each client talks to Dovecot
 * through its own startLinkProxy() (counting bytes both ways; "shaped" adds 256 kbit/s each way
 * and 150 ms each way, a 300 ms round trip). Per client, three scenarios:
 *
 *   1. first sync into an empty client;
 *   2. a no-op sync right after;
 *   3. a sync after 20 new messages were delivered over LMTP.
 *
 * Clients (bench/sync-clients.ts; INBOX only, each as a user would run it; process start-up is
 * part of the time):
 *   - mailmule: `mailmule start` as a child process under the systemd unit's node flags (one user, account maxMessageSize 1GB and
 *     since 3650d so it downloads the same full messages), runs triggered with
 *     `mailmule sync --receive-only` (through the control socket); peak RSS = VmHWM of the daemon.
 *   - mailmule-defaults: the same with the account defaults (maxMessageSize 1 MB, since 30d).
 *   - mbsync: `mbsync -c FILE -a` (Sync Pull, Patterns INBOX), isync's defaults otherwise.
 *   - offlineimap: `offlineimap -c FILE -u basic -o` (readonly remote, folderfilter INBOX).
 *   Peak RSS of mbsync/offlineimap from /usr/bin/time (%M).
 *
 * Environment:
 *   MAILMULE_BENCH_CORPUS            "generated" (default: bench/corpus.ts) or "spam-assassin" (real mail:
 *                                    SpamAssassin easy-ham-1 + hard-ham-1, bench/real-corpus.ts)
 *   MAILMULE_BENCH_MESSAGES          loopback account size (default 2000; spam-assassin: all 2,750)
 *   MAILMULE_BENCH_SHAPED_MESSAGES   shaped account size (default 200: 2,000 at 256 kbit/s would take hours)
 *   MAILMULE_BENCH_NEW               messages delivered before scenario 3 (default 20)
 *   MAILMULE_BENCH_SEED              corpus seed (default 1)
 *   MAILMULE_BENCH_LINKS             "loopback,shaped" (default both)
 *   MAILMULE_BENCH_CLIENTS           subset of "mailmule,mailmule-defaults,mbsync,offlineimap"
 *   MAILMULE_BENCH_DOCS              results file (default docs/benchmarks.md; "0": do not write)
 *   MAILMULE_BENCH_LABEL             a note for the heading of the results section
 *   MAILMULE_BENCH_KEEP              "1" keeps the temporary directories
 *   MAILMULE_BENCH_NODE_ARGS         node flags for the daemon instead of the systemd unit's ("none": no flags)
 *
 * Everything listens on and connects to 127.0.0.1 only. Every wait and every command is bounded.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, MAIN, log, sleep, commandOutput, machineLine, writeResultsSection, intEnv } from './support';
import { ensureCorpus, type CorpusSummary } from './corpus';
import { ensureRealCorpus, realCorpusSize, REAL_GROUPS } from './real-corpus';
import { startUpstream, type Upstream } from '../test/support/upstream';
import { startLinkProxy, type LinkProxy } from '../test/support/link-proxy';
import { ALL_CLIENTS, mailmuleClient, mbsyncClient, offlineimapClient, type Client, type ClientName } from './sync-clients';
import { processCpuSeconds, treeCpuSeconds } from './cpu-time';

const MAIL_UID = 65534;
const KB = 1024;
const MAX_SIZE = 500 * KB;
const SYNC_HEADING = '## Uplink sync';

const CORPUS = (process.env.MAILMULE_BENCH_CORPUS ?? 'generated') as 'generated' | 'spam-assassin';
if (CORPUS !== 'generated' && CORPUS !== 'spam-assassin') throw new Error(`unknown corpus ${CORPUS as string}`);
const COUNT = intEnv('MAILMULE_BENCH_MESSAGES', CORPUS === 'spam-assassin' ? realCorpusSize() : 2000);
const SHAPED_COUNT = intEnv('MAILMULE_BENCH_SHAPED_MESSAGES', 200);
const NEW_COUNT = intEnv('MAILMULE_BENCH_NEW', 20);
const SEED = intEnv('MAILMULE_BENCH_SEED', 1);
const LINKS = (process.env.MAILMULE_BENCH_LINKS ?? 'loopback,shaped').split(',').filter(Boolean) as LinkKind[];
const CLIENTS = (process.env.MAILMULE_BENCH_CLIENTS ?? ALL_CLIENTS.join(',')).split(',').filter(Boolean) as ClientName[];
const DOCS_ENV = process.env.MAILMULE_BENCH_DOCS;
const DOCS_FILE = DOCS_ENV === '0' ? null : path.resolve(ROOT, DOCS_ENV || path.join('docs', 'benchmarks.md'));
const KEEP = process.env.MAILMULE_BENCH_KEEP === '1';
const LABEL = process.env.MAILMULE_BENCH_LABEL ?? '';

type LinkKind = 'loopback' | 'shaped';
const SHAPING: Record<LinkKind, { bandwidthBps: number | null; latencyMs: number }> = {
    loopback: { bandwidthBps: null, latencyMs: 0 },
    shaped: { bandwidthBps: 256_000, latencyMs: 150 }
};
const SCENARIOS = ['first sync', 'no-op sync', `+${NEW_COUNT} new`] as const;
type Scenario = (typeof SCENARIOS)[number];

for (const link of LINKS) if (!(link in SHAPING)) throw new Error(`unknown link ${link}`);
for (const client of CLIENTS) if (!ALL_CLIENTS.includes(client)) throw new Error(`unknown client ${client}`);

function fmtBytes(bytes: number): string {
    if (bytes >= 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(2)} MB`;
    if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KB`;
    return `${bytes} B`;
}

function fmtS(seconds: number): string {
    return seconds >= 100 ? seconds.toFixed(0) : seconds >= 10 ? seconds.toFixed(1) : seconds.toFixed(2);
}

function ratio(a: number, b: number): string {
    if (!b) return '–';
    const r = a / b;
    return `${r >= 10 ? r.toFixed(1) : r.toFixed(2)}×`;
}

// ------------------------------------------------------------------ the upstream accounts

/** Copies the corpus into each account's Maildir/cur (hard links to one staged copy), recent dates. */
function loadAccounts(upstream: Upstream, corpus: CorpusSummary, addresses: string[]): void {
    const staging = path.join(upstream.dir, 'corpus-staging');
    fs.mkdirSync(staging, { recursive: true });
    const files = fs.readdirSync(path.join(corpus.dir, 'cur')).sort((a, b) => Number(a.split('.')[1]) - Number(b.split('.')[1]));
    const now = Math.floor(Date.now() / 1000);
    const span = 20 * 86400;
    const staged: string[] = [];
    files.forEach((file, i) => {
        const at = now - span + Math.floor(((i + 1) * span) / (files.length + 1));
        const flags = file.slice(file.indexOf(':2,') + 3);
        const name = `${at}.M${i + 1}P1.bench:2,${flags}`;
        const target = path.join(staging, name);
        fs.copyFileSync(path.join(corpus.dir, 'cur', file), target);
        fs.utimesSync(target, at, at);
        fs.chownSync(target, MAIL_UID, MAIL_UID);
        staged.push(name);
    });
    for (const address of addresses) {
        const [local, domain] = address.split('@');
        const home = path.join(upstream.dir, 'dovecot', 'mail', domain, local);
        const maildir = path.join(home, 'Maildir');
        for (const sub of ['cur', 'new', 'tmp']) fs.mkdirSync(path.join(maildir, sub), { recursive: true });
        for (const name of staged) fs.linkSync(path.join(staging, name), path.join(maildir, 'cur', name));
        for (const dir of [path.join(upstream.dir, 'dovecot', 'mail', domain), home, maildir, ...['cur', 'new', 'tmp'].map(s => path.join(maildir, s))]) {
            fs.chownSync(dir, MAIL_UID, MAIL_UID);
        }
    }
}

function corpusMessages(corpus: CorpusSummary): Buffer[] {
    return fs
        .readdirSync(path.join(corpus.dir, 'cur'))
        .sort((a, b) => Number(a.split('.')[1]) - Number(b.split('.')[1]))
        .map(file => fs.readFileSync(path.join(corpus.dir, 'cur', file)));
}

// ------------------------------------------------------------------ clients

interface SyncResult {
    seconds: number;
    up: number;
    down: number;
    /** Client turns on the link (test/support/link-proxy.ts): the round trips the sync waited for. */
    turns: number;
    /** Messages the client holds afterwards. */
    messages: number;
    /** Peak RSS of the client process for this command (KB), when known. */
    rssKb: number;
    /** CPU seconds of the client (mailmule: the daemon and the CLI command) and of Dovecot during the sync. */
    cpu: { client: number; dovecot: number };
    note: string;
}

// ------------------------------------------------------------------ one link

interface ClientRun {
    client: ClientName;
    version: string;
    results: Partial<Record<Scenario, SyncResult>>;
    hwmKb: number;
    startRssKb: number;
    failure: string | null;
}

interface LinkRun {
    link: LinkKind;
    count: number;
    corpus: CorpusSummary;
    runs: ClientRun[];
}

async function runLink(link: LinkKind, count: number, fresh: Buffer[]): Promise<LinkRun> {
    const cacheRoot = path.join(ROOT, 'bench', '.cache');
    const corpus = CORPUS === 'spam-assassin' ? ensureRealCorpus({ count, cacheRoot, log }) : ensureCorpus({ count, seed: SEED, cacheRoot, maxSize: MAX_SIZE, log });
    log(`${link}: corpus of ${count} messages, ${fmtBytes(corpus.totalBytes)} (${corpus.dir})`);
    const users = CLIENTS.map(name => ({ address: `${name.replace(/[^a-z]/g, '')}@upstream.test`, password: `${name.replace(/[^a-z]/g, '')}-pass` }));
    const upstream = await startUpstream({ users });
    const runs: ClientRun[] = [];
    try {
        loadAccounts(
            upstream,
            corpus,
            users.map(u => u.address)
        );
        const timeoutMs = link === 'shaped' ? 3600_000 : 900_000;
        for (const [index, name] of CLIENTS.entries()) {
            const user = users[index];
            const proxy: LinkProxy = await startLinkProxy({ targetPort: upstream.imapPort, ...SHAPING[link] });
            const work = fs.mkdtempSync(path.join(os.tmpdir(), `mailmule-bench-sync-${name}-`));
            const run: ClientRun = { client: name, version: '', results: {}, hwmKb: 0, startRssKb: 0, failure: null };
            runs.push(run);
            let client: Client | null = null;
            try {
                client =
                    name === 'mbsync'
                        ? mbsyncClient(work, user.address, user.password, proxy.port)
                        : name === 'offlineimap'
                          ? offlineimapClient(work, user.address, user.password, proxy.port)
                          : await mailmuleClient(work, name, user.address, user.password, proxy.port, upstream.submissionPort);
                run.version = client.version;
                for (const scenario of SCENARIOS) {
                    if (scenario === SCENARIOS[2]) {
                        for (const raw of fresh) await upstream.deliver(user.address, raw);
                    }
                    const expected = scenario === SCENARIOS[2] ? count + fresh.length : count;
                    await sleep(200);
                    proxy.reset();
                    const dovecotPid = Number(fs.readFileSync(path.join(upstream.dir, 'dovecot', 'run', 'master.pid'), 'utf8').trim());
                    const daemonBefore = client.pid ? processCpuSeconds(client.pid) : 0;
                    const cpuBefore = { client: processCpuSeconds('self', true) + daemonBefore, dovecot: treeCpuSeconds(dovecotPid) };
                    const started = process.hrtime.bigint();
                    const outcome = await client.sync(timeoutMs);
                    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
                    // The proxy counts what it delivered; the last bytes land right after the client exits.
                    await sleep(100);
                    // Of this process only its reaped children (the client commands), not its own time (the link proxy).
                    const cpu = {
                        client: processCpuSeconds('self', true) + (client.pid ? processCpuSeconds(client.pid) : 0) - cpuBefore.client,
                        dovecot: treeCpuSeconds(dovecotPid) - cpuBefore.dovecot
                    };
                    // The long-running daemon's own share (without the `mailmule sync` command that triggered it).
                    const daemonCpu = client.pid ? processCpuSeconds(client.pid) - daemonBefore : 0;
                    const stats = proxy.stats();
                    const messages = client.messages();
                    const result: SyncResult = { seconds, up: stats.bytesUp, down: stats.bytesDown, turns: stats.turns, messages, rssKb: outcome.rssKb, cpu, note: outcome.note };
                    run.results[scenario] = result;
                    log(
                        `${link} ${name.padEnd(17)} ${scenario.padEnd(10)} ${fmtS(seconds).padStart(7)} s  down ${fmtBytes(stats.bytesDown).padStart(10)}  up ${fmtBytes(stats.bytesUp).padStart(9)}  ${String(stats.turns).padStart(3)} round trips  ` +
                            `cpu ${cpu.client.toFixed(2)} s${client.pid ? ` (daemon ${daemonCpu.toFixed(2)} s)` : ''} + dovecot ${cpu.dovecot.toFixed(2)} s  ${messages}/${expected} messages${outcome.rssKb ? `  rss ${(outcome.rssKb / 1024).toFixed(1)} MB` : ''}${outcome.note ? `  (${outcome.note})` : ''}`
                    );
                    if (!outcome.ok) throw new Error(`${name} ${scenario} failed:\n${outcome.detail}`);
                    if (messages !== expected) throw new Error(`${name} ${scenario}: ${messages} messages, expected ${expected}\n${outcome.detail}`);
                }
                if (client.memory) {
                    const memory = client.memory();
                    run.hwmKb = memory.hwmKb;
                    run.startRssKb = memory.startRssKb;
                } else {
                    run.hwmKb = Math.max(...Object.values(run.results).map(r => r?.rssKb ?? 0));
                }
            } catch (err) {
                run.failure = (err as Error).message;
                log(`FAILED: ${run.failure}`);
            } finally {
                await client?.stop();
                await proxy.close();
                if (!KEEP) fs.rmSync(work, { recursive: true, force: true });
            }
        }
    } finally {
        await upstream.stop();
    }
    return { link, count, corpus, runs };
}

// ------------------------------------------------------------------ report

function table(run: LinkRun): string {
    const lines = [
        '| scenario | client | bytes down | bytes up | total bytes | round trips | wall time (s) | CPU client + Dovecot (s) | messages | peak RSS |',
        '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |'
    ];
    for (const scenario of SCENARIOS) {
        for (const client of run.runs) {
            const r = client.results[scenario];
            if (!r) {
                lines.push(`| ${scenario} | ${client.client} | – | – | – | – | – | – | – | ${client.failure ? 'FAILED' : '–'} |`);
                continue;
            }
            const rss = r.rssKb ? `${(r.rssKb / 1024).toFixed(1)} MB${client.client.startsWith('mailmule') ? ' (daemon VmHWM so far)' : ''}` : '–';
            lines.push(
                `| ${scenario} | ${client.client} | ${fmtBytes(r.down)} | ${fmtBytes(r.up)} | ${fmtBytes(r.up + r.down)} | ${r.turns} | ${fmtS(r.seconds)} | ${r.cpu.client.toFixed(2)} + ${r.cpu.dovecot.toFixed(2)} | ${r.messages} | ${rss} |`
            );
        }
    }
    return lines.join('\n');
}

function ratios(run: LinkRun): string {
    const mm = run.runs.find(r => r.client === 'mailmule');
    const others = run.runs.filter(r => r.client === 'mbsync' || r.client === 'offlineimap');
    if (!mm || !others.length) return '';
    const lines = [
        `| scenario | ${others.map(o => `bytes mailmule/${o.client}`).join(' | ')} | ${others.map(o => `time mailmule/${o.client}`).join(' | ')} |`,
        `| --- |${others.map(() => ' ---: |').join('')}${others.map(() => ' ---: |').join('')}`
    ];
    for (const scenario of SCENARIOS) {
        const a = mm.results[scenario];
        const cells = others.map(o => {
            const b = o.results[scenario];
            return a && b ? ratio(a.up + a.down, b.up + b.down) : '–';
        });
        const times = others.map(o => {
            const b = o.results[scenario];
            return a && b ? ratio(a.seconds, b.seconds) : '–';
        });
        lines.push(`| ${scenario} | ${cells.join(' | ')} | ${times.join(' | ')} |`);
    }
    return lines.join('\n');
}

/** Issue 11's aims, against mbsync in the same run: loopback first sync ≤ 1.3×, shaped ≤ 1.0× in every scenario, daemon peak RSS ≤ 120 MB. */
function aims(runs: LinkRun[]): string[] {
    const out: string[] = [];
    for (const run of runs) {
        const mm = run.runs.find(r => r.client === 'mailmule');
        const mb = run.runs.find(r => r.client === 'mbsync' && !r.failure);
        if (!mm) continue;
        for (const scenario of SCENARIOS) {
            const a = mm.results[scenario];
            const b = mb?.results[scenario];
            if (!a || !b) continue;
            const limit = run.link === 'shaped' ? 1.0 : scenario === 'first sync' ? 1.3 : null;
            const timeRatio = a.seconds / b.seconds;
            const bytes = `bytes ${ratio(a.up + a.down, b.up + b.down)} of mbsync's`;
            if (limit === null) out.push(`- ${run.link}, ${scenario}: time ${ratio(a.seconds, b.seconds)} mbsync's (no aim), ${bytes}.`);
            else out.push(`- ${run.link}, ${scenario}: time ${ratio(a.seconds, b.seconds)} mbsync's (aim ≤ ${limit.toFixed(1)}×): ${timeRatio <= limit ? 'met' : 'NOT met'}; ${bytes}.`);
        }
        out.push(`- ${run.link}: mailmule daemon peak RSS (VmHWM) ${(mm.hwmKb / 1024).toFixed(1)} MB (aim ≤ 120 MB): ${mm.hwmKb && mm.hwmKb <= 120 * 1024 ? 'met' : 'NOT met'}.`);
    }
    return out;
}

function machine(): string[] {
    return [
        machineLine(),
        `- Node ${process.version}; Dovecot ${commandOutput('dovecot', ['--version'])} (maildir, imap_zlib: COMPRESS=DEFLATE offered); ${commandOutput('mbsync', ['--version'])}; offlineimap ${commandOutput('offlineimap', ['--version'])}`
    ];
}

function corpusLine(corpus: CorpusSummary, link: LinkKind): string {
    if (CORPUS === 'spam-assassin') {
        return (
            `- ${link} account: ${corpus.count.toLocaleString('en')} real messages (SpamAssassin ${REAL_GROUPS.join(' + ')}, first ${corpus.count.toLocaleString('en')}), ${fmtBytes(corpus.totalBytes)} ` +
            `(${(corpus.minBytes / 1024).toFixed(1)} KB – ${(corpus.maxBytes / 1024).toFixed(0)} KB, median ${(corpus.medianBytes / 1024).toFixed(1)} KB; ${corpus.withAttachments} multipart, ${corpus.nonAscii} with 8-bit bytes; ${corpus.seen} \\Seen)`
        );
    }
    return (
        `- ${link} account: ${corpus.count.toLocaleString('en')} messages, ${fmtBytes(corpus.totalBytes)} (seed ${corpus.seed}; ${(corpus.minBytes / 1024).toFixed(1)} KB – ${(corpus.maxBytes / 1024).toFixed(0)} KB, median ${(corpus.medianBytes / 1024).toFixed(1)} KB; ` +
        `${corpus.plain} text/plain, ${corpus.alternative} multipart/alternative (text + HTML), ${corpus.withAttachments} multipart/mixed with base64 attachments; ${corpus.seen} \\Seen)`
    );
}

function writeResults(file: string, section: string): void {
    // The heading at the start of a line: "### Uplink sync…" elsewhere in the file is not it.
    writeResultsSection(file, `\n${SYNC_HEADING}`, syncIntro, section);
}

function syncIntro(): string {
    return [
        `${SYNC_HEADING}: mailmule against mbsync and offlineimap (\`npm run bench:sync\`)`,
        '',
        '`bench/sync.ts` starts a real upstream (Dovecot + Postfix from `test/support/upstream.ts`) with one account per client, each',
        'loaded with the same seeded corpus (`bench/corpus.ts` with attachments up to 500 KB: `ensureCorpus({ maxSize })`),',
        'written into its `Maildir/cur` before the first SELECT, with INTERNALDATEs spread over the last 20 days. Every client',
        'reaches Dovecot through its own `startLinkProxy()`, which counts the bytes on the wire both ways (IMAP only, after',
        'COMPRESS=DEFLATE where negotiated); the shaped link adds 256 kbit/s each way and 150 ms each way (300 ms round trips).',
        'Per client: (1) first sync into an empty client, (2) a no-op sync right after, (3) a sync after 20 new messages were',
        'delivered over LMTP. Wall time is the client command, start to exit, as a user runs it: `mailmule sync --receive-only`',
        'against a running `mailmule start` daemon (one user; the row "mailmule" has the account at `maxMessageSize: 1GB` and',
        '`since: 3650d` so that it downloads the same full messages as the others; "mailmule-defaults" keeps 1 MB and 30 days),',
        '`mbsync -c FILE -a` (Sync Pull, INBOX) and `offlineimap -u basic -o` (readonly remote, INBOX). Each scenario checks',
        "that the client then holds every message. mailmule's peak RSS is VmHWM of the daemon process; the others' is",
        '`/usr/bin/time %M` of the command. The shaped account is smaller (200 messages, same distribution): 2,000 messages',
        '(69 MB) at 256 kbit/s would take over half an hour per client.',
        '',
        'Options (environment): `MAILMULE_BENCH_MESSAGES`, `MAILMULE_BENCH_SHAPED_MESSAGES`, `MAILMULE_BENCH_NEW`, `MAILMULE_BENCH_SEED`,',
        '`MAILMULE_BENCH_LINKS=loopback|shaped`, `MAILMULE_BENCH_CLIENTS=mailmule,mailmule-defaults,mbsync,offlineimap`,',
        '`MAILMULE_BENCH_DOCS=0`, `MAILMULE_BENCH_LABEL`, `MAILMULE_BENCH_KEEP=1`, `MAILMULE_BENCH_CORPUS=spam-assassin` (real mail:',
        'SpamAssassin easy-ham-1 + hard-ham-1, 2,750 messages, `bench/real-corpus.ts`; the shaped account takes the first',
        '`MAILMULE_BENCH_SHAPED_MESSAGES` of them). Aims (issue 11, against mbsync in the same run): loopback first sync ≤ 1.3×',
        "mbsync's time; shaped first sync, no-op and +20 new each ≤ 1.0×; bytes no more than before; daemon peak RSS ≤ 120 MB.",
        '',
        'Results are appended below, newest last.',
        ''
    ].join('\n');
}

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
    if (!fs.existsSync(MAIN)) throw new Error(`${MAIN} is missing: run npm run build first`);
    const started = Date.now();
    const freshCorpus = ensureCorpus({ count: NEW_COUNT, seed: SEED + 1000, cacheRoot: path.join(ROOT, 'bench', '.cache'), maxSize: MAX_SIZE, log });
    const fresh = corpusMessages(freshCorpus);
    const results: LinkRun[] = [];
    for (const link of LINKS) results.push(await runLink(link, link === 'shaped' ? SHAPED_COUNT : COUNT, fresh));

    const report: string[] = [];
    for (const run of results) {
        const shaping = SHAPING[run.link];
        report.push(
            `#### ${run.link === 'loopback' ? 'Loopback (through the counting proxy, no shaping)' : `Shaped: ${(shaping.bandwidthBps! / 1000).toFixed(0)} kbit/s each way, ${2 * shaping.latencyMs} ms round trip`}, ${run.count.toLocaleString('en')} messages`,
            '',
            table(run),
            ''
        );
        const r = ratios(run);
        if (r) report.push(r, '');
        const mm = run.runs.find(x => x.client === 'mailmule');
        for (const client of run.runs.filter(x => x.client.startsWith('mailmule'))) {
            report.push(`- ${client.client} daemon: RSS after start-up ${(client.startRssKb / 1024).toFixed(1)} MB, peak (VmHWM) after the three syncs ${(client.hwmKb / 1024).toFixed(1)} MB.`);
        }
        for (const client of run.runs.filter(x => x.failure)) report.push(`- ${client.client} FAILED: ${client.failure!.split('\n')[0]}`);
        void mm;
        report.push('');
    }
    report.push('Aims:', '', ...aims(results), '');
    report.push(`Benchmark wall time ${((Date.now() - started) / 60000).toFixed(1)} min.`, '');
    process.stdout.write(`\n${report.join('\n')}\n`);

    if (DOCS_FILE) {
        const when = new Date()
            .toISOString()
            .replace(/:\d\d\.\d+Z$/, ' UTC')
            .replace('T', ' ');
        const section = [
            `### ${when}: ${CORPUS === 'spam-assassin' ? 'real mail (SpamAssassin), ' : ''}${results.map(r => `${r.link} ${r.count.toLocaleString('en')} messages`).join(', ')}${LABEL ? ` (${LABEL})` : ''}`,
            '',
            ...machine(),
            ...results.map(r => corpusLine(r.corpus, r.link)),
            `- ${NEW_COUNT} new messages for scenario 3: ${fmtBytes(freshCorpus.totalBytes)} (seed ${freshCorpus.seed})`,
            '',
            ...report
        ].join('\n');
        writeResults(DOCS_FILE, section);
        log(`results appended to ${DOCS_FILE}`);
    }
}

main().then(
    () => process.exit(0),
    err => {
        log(`failed: ${(err as Error).stack ?? err}`);
        process.exit(1);
    }
);
