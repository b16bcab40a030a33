/**
 * Relay mode benchmark (`npm run bench:relay`, issue 14): the bytes a village's uplink costs in
 * relay mode against mailmule's direct mode, mbsync and offlineimap, on real mail.
 *
 * Two users (bench/relay-village.ts) whose INBOXes share messages: alice holds the first
 * MESSAGES of the real corpus (SpamAssassin easy-ham-1 + hard-ham-1), bob the last SHARED of
 * hers and MESSAGES − SHARED more. Each client has its own pair of upstream accounts on one real
 * Dovecot + Postfix (test/support/upstream.ts), loaded the same way. Scenarios, each one run for
 * the whole village: (1) first sync, (2) a no-op sync, (3) after NEW messages of the corpus not
 * used yet were delivered over LMTP, the first half to both users (a mailing list), the rest
 * alternately to one; (4) LIST more delivered to alice alone, (5) the same LIST delivered to bob
 * a run later, as a list server's second batch reaches another subscriber: each copy with its
 * own Return-Path, Delivered-To and Received lines from its own LMTP delivery, so the copies
 * differ in their header while their bodies are the same (what a bodyRef carries). Measured on the village's link, through one counting proxy per client
 * (relay mode: Pi ↔ relay; the others: Pi ↔ Dovecot): bytes both ways, on the wire (after TLS
 * or COMPRESS=DEFLATE), and wall time; loopback and shaped (256 kbit/s each way, 300 ms RTT).
 * The physical limit: the new content alone (the raw messages, each distinct one once) as one
 * zstd stream (node:zlib, level 19, windowLog 27, long-distance matching) and `xz -9e`.
 *
 * Environment:
 *   MAILMULE_BENCH_MESSAGES   messages per user (default 150)
 *   MAILMULE_BENCH_SHARED     of them, shared by both users (default a third)
 *   MAILMULE_BENCH_NEW        messages delivered before scenario 3 (default 20)
 *   MAILMULE_BENCH_LIST       list posts of scenarios 4 and 5 (default 10)
 *   MAILMULE_BENCH_LINKS      "loopback,shaped" (default both)
 *   MAILMULE_BENCH_CLIENTS    subset of "relay,direct,mbsync,offlineimap" (default all)
 *   MAILMULE_BENCH_DOCS       results file (default docs/benchmarks.md; "0": do not write)
 *   MAILMULE_BENCH_KEEP       "1" keeps the clients' temporary directories
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startLinkProxy, type LinkProxy } from '../test/support/link-proxy';
import { startUpstream } from '../test/support/upstream';
import { corpusGroup } from '../test/support/fixtures/spam-assassin';
import { REAL_GROUPS } from './real-corpus';
import { ROOT, log, sleep, machineLine, commandOutput, writeResultsSection, intEnv } from './support';
import {
    VILLAGE_CLIENTS,
    VILLAGE_USERS,
    directVillage,
    imapClientVillage,
    loadMailbox,
    relayVillage,
    startVillageRelay,
    upstreamAddress,
    upstreamPassword,
    type VillageClient,
    type VillageClientName
} from './relay-village';
import { compressionLimits, type Limits } from './relay-limits';

const PER_USER = intEnv('MAILMULE_BENCH_MESSAGES', 150);
const SHARED = intEnv('MAILMULE_BENCH_SHARED', Math.max(1, Math.floor(PER_USER / 3)));
const NEW_COUNT = intEnv('MAILMULE_BENCH_NEW', 20);
const LIST_COUNT = intEnv('MAILMULE_BENCH_LIST', 10);
const LINKS = (process.env.MAILMULE_BENCH_LINKS ?? 'loopback,shaped').split(',').filter(Boolean) as LinkKind[];
const CLIENTS = (process.env.MAILMULE_BENCH_CLIENTS ?? VILLAGE_CLIENTS.join(',')).split(',').filter(Boolean) as VillageClientName[];
const DOCS_ENV = process.env.MAILMULE_BENCH_DOCS;
const DOCS_FILE = DOCS_ENV === '0' ? null : path.resolve(ROOT, DOCS_ENV || path.join('docs', 'benchmarks.md'));
const KEEP = process.env.MAILMULE_BENCH_KEEP === '1';
const HEADING = '## Relay mode';

type LinkKind = 'loopback' | 'shaped';
const SHAPING: Record<LinkKind, { bandwidthBps: number | null; latencyMs: number }> = {
    loopback: { bandwidthBps: null, latencyMs: 0 },
    shaped: { bandwidthBps: 256_000, latencyMs: 150 }
};
const SCENARIOS = ['first sync', 'no-op sync', `+${NEW_COUNT} new`, `+${LIST_COUNT} list posts, alice`, 'the same posts, bob a run later'] as const;
type Scenario = (typeof SCENARIOS)[number];

if (SHARED > PER_USER) throw new Error('MAILMULE_BENCH_SHARED must not exceed MAILMULE_BENCH_MESSAGES');
for (const link of LINKS) if (!(link in SHAPING)) throw new Error(`unknown link ${link}`);
for (const client of CLIENTS) if (!VILLAGE_CLIENTS.includes(client)) throw new Error(`unknown client ${client}`);

interface Result {
    seconds: number;
    up: number;
    down: number;
    /** TCP connections over the link (relay mode: one TLS handshake each). */
    connections: number;
}
type Runs = Map<VillageClientName, Partial<Record<Scenario, Result>> & { failure?: string }>;

/** Who gets what: alice [0, N), bob [N − S, 2N − S); new messages after those, half to both. */
function village(): { alice: Buffer[]; bob: Buffer[]; distinct: Buffer[]; fresh: { raw: Buffer; to: string[] }[]; shared: Buffer[]; list: Buffer[] } {
    const corpus = REAL_GROUPS.flatMap(group => corpusGroup(group));
    const distinctCount = 2 * PER_USER - SHARED;
    if (distinctCount + NEW_COUNT + LIST_COUNT > corpus.length) throw new Error(`the real corpus has ${corpus.length} messages, ${distinctCount + NEW_COUNT + LIST_COUNT} needed`);
    const alice = corpus.slice(0, PER_USER);
    const bob = corpus.slice(PER_USER - SHARED, distinctCount);
    const fresh = corpus.slice(distinctCount, distinctCount + NEW_COUNT).map((raw, i) => ({
        raw,
        to: i < NEW_COUNT / 2 ? [...VILLAGE_USERS] : [VILLAGE_USERS[i % 2]]
    }));
    const list = corpus.slice(distinctCount + NEW_COUNT, distinctCount + NEW_COUNT + LIST_COUNT);
    return { alice, bob, distinct: corpus.slice(0, distinctCount), fresh, shared: corpus.slice(PER_USER - SHARED, PER_USER), list };
}

function fmtBytes(bytes: number): string {
    if (bytes >= 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(2)} MB`;
    if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KB`;
    return `${bytes} B`;
}

const total = (r: Result | undefined) => (r ? r.up + r.down : NaN);

async function startClient(name: VillageClientName, link: LinkKind, upstream: Awaited<ReturnType<typeof startUpstream>>, work: string): Promise<{ client: VillageClient; proxy: LinkProxy }> {
    if (name === 'relay') {
        const { relay, piKey } = await startVillageRelay();
        const proxy = await startLinkProxy({ targetPort: relay.port, ...SHAPING[link] });
        return { client: await relayVillage(upstream, relay, proxy, piKey), proxy };
    }
    const proxy = await startLinkProxy({ targetPort: upstream.imapPort, ...SHAPING[link] });
    return { client: name === 'direct' ? await directVillage(upstream, proxy) : imapClientVillage(name, work, proxy), proxy };
}

async function runLink(link: LinkKind, mail: ReturnType<typeof village>): Promise<Runs> {
    const users = CLIENTS.flatMap(name => VILLAGE_USERS.map(user => upstreamAddress(name, user))).map(address => ({ address, password: upstreamPassword(address) }));
    const upstream = await startUpstream({ users });
    const runs: Runs = new Map();
    try {
        for (const name of CLIENTS) {
            loadMailbox(upstream, upstreamAddress(name, 'alice'), mail.alice);
            loadMailbox(upstream, upstreamAddress(name, 'bob'), mail.bob);
        }
        const timeoutMs = link === 'shaped' ? 3600_000 : 900_000;
        for (const name of CLIENTS) {
            const results: Partial<Record<Scenario, Result>> & { failure?: string } = {};
            runs.set(name, results);
            const work = fs.mkdtempSync(path.join(os.tmpdir(), `mailmule-bench-relay-${name}-`));
            let started: { client: VillageClient; proxy: LinkProxy } | null = null;
            try {
                started = await startClient(name, link, upstream, work);
                const { client, proxy } = started;
                for (const scenario of SCENARIOS) {
                    const step = SCENARIOS.indexOf(scenario);
                    if (step === 2) {
                        for (const { raw, to } of mail.fresh)
                            await upstream.deliver(
                                to.map(user => upstreamAddress(name, user as 'alice' | 'bob')),
                                raw
                            );
                    }
                    // One LMTP delivery per copy: each gets its own Delivered-To and Received lines.
                    if (step === 3) for (const raw of mail.list) await upstream.deliver(upstreamAddress(name, 'alice'), raw);
                    if (step === 4) for (const raw of mail.list) await upstream.deliver(upstreamAddress(name, 'bob'), raw);
                    const fresh = step >= 2 ? [0, 1].map(i => mail.fresh.filter(f => f.to.includes(VILLAGE_USERS[i])).length) : [0, 0];
                    const listed = [step >= 3 ? mail.list.length : 0, step >= 4 ? mail.list.length : 0];
                    const expected = [mail.alice.length, mail.bob.length].map((n, i) => n + fresh[i] + listed[i]);
                    proxy.reset();
                    const t0 = process.hrtime.bigint();
                    const outcome = await client.sync(timeoutMs);
                    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
                    await sleep(100); // the proxy counts what it delivered; the last bytes land just after
                    const stats = proxy.stats();
                    results[scenario] = { seconds, up: stats.bytesUp, down: stats.bytesDown, connections: stats.connections };
                    const held = client.messages();
                    log(
                        `${link} ${name.padEnd(11)} ${scenario.padEnd(10)} ${seconds.toFixed(2).padStart(8)} s  down ${fmtBytes(stats.bytesDown).padStart(10)}  up ${fmtBytes(stats.bytesUp).padStart(9)}  messages ${held.join('+')} of ${expected.join('+')}`
                    );
                    if (!outcome.ok) throw new Error(`${scenario} failed: ${outcome.detail}`);
                    if (held.join() !== expected.join()) throw new Error(`${scenario}: ${held.join('+')} messages, expected ${expected.join('+')}`);
                }
            } catch (err) {
                results.failure = (err as Error).message;
                log(`${link} ${name} FAILED: ${results.failure}`);
            } finally {
                await started?.client.stop().catch(() => undefined);
                await started?.proxy.close();
                if (!KEEP) fs.rmSync(work, { recursive: true, force: true });
            }
        }
    } finally {
        await upstream.stop();
    }
    return runs;
}

function table(runs: Runs, withTime: boolean): string {
    const lines = [
        `| scenario | client | bytes down | bytes up | total bytes | connections |${withTime ? ' wall time (s) |' : ''}`,
        `| --- | --- | ---: | ---: | ---: | ---: |${withTime ? ' ---: |' : ''}`
    ];
    for (const scenario of SCENARIOS) {
        for (const [name, results] of runs) {
            const r = results[scenario];
            if (!r) lines.push(`| ${scenario} | ${name} | ${results.failure ? 'FAILED' : '–'} | – | – | – |${withTime ? ' – |' : ''}`);
            else lines.push(`| ${scenario} | ${name} | ${fmtBytes(r.down)} | ${fmtBytes(r.up)} | ${fmtBytes(r.up + r.down)} | ${r.connections} |${withTime ? ` ${r.seconds.toFixed(2)} |` : ''}`);
        }
    }
    return lines.join('\n');
}

function limitLines(first: Limits, perUser: Limits, shared: Limits, fresh: Limits, list: Limits): string[] {
    const line = (what: string, l: Limits) => `- ${what}: raw ${fmtBytes(l.raw)}, zstd -19 long ${fmtBytes(l.zstd)}, xz -9e ${l.xz === null ? '(no xz)' : fmtBytes(l.xz)}`;
    return [
        line(`first sync, the ${2 * PER_USER - SHARED} distinct messages as one stream`, first),
        line(`first sync, each user's ${PER_USER} as a stream of its own (summed)`, perUser),
        line(`the ${SHARED} shared messages alone`, shared),
        line(`+${NEW_COUNT} new, the ${NEW_COUNT} distinct new messages`, fresh),
        line(`the ${LIST_COUNT} list posts (alice's run; bob's copies a run later need only their header lines)`, list)
    ];
}

/** Issue 14's aims, each with its figures. */
function aims(link: LinkKind, runs: Runs, first: Limits, shared: Limits): string[] {
    const relay = runs.get('relay');
    const out: string[] = [];
    if (!relay || relay.failure) return [`- ${link}: relay mode did not complete${relay?.failure ? `: ${relay.failure.split('\n')[0]}` : ''}`];
    const mbsync = runs.get('mbsync');
    const direct = runs.get('direct');
    const check = (what: string, value: number, limit: number) =>
        `- ${link}, ${what}: ${Number.isFinite(value) ? `${value.toFixed(2)}×` : '–'} (aim ≤ ${limit}×): ${value <= limit ? 'met' : Number.isFinite(value) ? 'NOT met' : 'not measured'}`;
    out.push(check("first sync bytes against mbsync's", total(relay['first sync']) / total(mbsync?.['first sync']), 0.6));
    out.push(check(`+${NEW_COUNT} new bytes against direct mode's`, total(relay[SCENARIOS[2]]) / total(direct?.[SCENARIOS[2]]), 0.85));
    // The exchange's fixed cost (handshakes, signed requests, the up bundle) is what the no-op
    // run cost; what the first sync spent beyond it carried the mail.
    const mailBytes = total(relay['first sync']) - total(relay['no-op sync']);
    const above = mailBytes - first.zstd;
    out.push(
        `- ${link}, shared messages cross once: relay first sync less the no-op exchange ${fmtBytes(mailBytes)}, ${fmtBytes(above)} above zstd of the distinct messages; ` +
            `a second crossing of the shared ones would cost ≥ ${fmtBytes(shared.zstd)}: ${above < shared.zstd ? 'met' : 'NOT met'}`
    );
    if (link === 'shaped') {
        const a = relay['first sync']?.seconds ?? NaN;
        const b = mbsync?.['first sync']?.seconds ?? NaN;
        out.push(check("first sync time against mbsync's", a / b, 0.7));
    }
    return out;
}

async function main(): Promise<void> {
    const started = Date.now();
    const mail = village();
    const limits = {
        first: compressionLimits(mail.distinct),
        perUser: [compressionLimits(mail.alice), compressionLimits(mail.bob)].reduce((a, b) => ({
            raw: a.raw + b.raw,
            zstd: a.zstd + b.zstd,
            xz: a.xz === null || b.xz === null ? null : a.xz + b.xz
        })),
        shared: compressionLimits(mail.shared),
        fresh: compressionLimits(mail.fresh.map(f => f.raw)),
        list: compressionLimits(mail.list)
    };
    const byLink = new Map<LinkKind, Runs>();
    for (const link of LINKS) byLink.set(link, await runLink(link, mail));
    const load = os
        .loadavg()
        .map(n => n.toFixed(2))
        .join(', ');

    const describe = (link: LinkKind) => (link === 'loopback' ? 'Loopback (through the counting proxy, no shaping)' : 'Shaped: 256 kbit/s each way, 300 ms round trip');
    const report = (withTime: boolean) => [
        ...[...byLink].flatMap(([link, runs]) => [`#### ${describe(link)}`, '', table(runs, withTime), '']),
        'The physical limit (the new content alone):',
        '',
        ...limitLines(limits.first, limits.perUser, limits.shared, limits.fresh, limits.list),
        '',
        'Aims (issue 14):',
        '',
        ...[...byLink].flatMap(([link, runs]) => aims(link, runs, limits.first, limits.shared).filter(line => withTime || !line.includes(' time '))),
        ''
    ];
    process.stdout.write(`\n${report(true).join('\n')}\nload average at the end: ${load}; benchmark wall time ${((Date.now() - started) / 60000).toFixed(1)} min\n`);

    if (DOCS_FILE) {
        const when = new Date().toISOString().slice(0, 16).replace('T', ' ');
        const section = [
            `### ${when} UTC: real mail, two users, ${PER_USER} messages each, ${SHARED} shared, +${NEW_COUNT} new, ${LIST_COUNT} list posts a run apart`,
            '',
            machineLine(`, load average ${load} (bytes do not depend on it; times are not recorded here)`),
            `- Node ${process.version}; Dovecot ${commandOutput('dovecot', ['--version'])} (COMPRESS=DEFLATE offered); ${commandOutput('mbsync', ['--version'])}; offlineimap ${commandOutput('offlineimap', ['--version'])}`,
            '',
            ...report(false)
        ].join('\n');
        writeResultsSection(DOCS_FILE, `\n${HEADING}`, intro, section);
        log(`results appended to ${DOCS_FILE}`);
    }
}

function intro(): string {
    return [
        `${HEADING}: the village's uplink bytes against direct mode, mbsync and offlineimap (\`npm run bench:relay\`)`,
        '',
        '`bench/relay.ts` (issue 14): two users whose INBOXes share real messages (SpamAssassin easy-ham-1 + hard-ham-1), each',
        'client with its own pair of accounts on one real Dovecot + Postfix; relay mode is an in-process Pi and a real',
        '`mailmule relay` process, measured on the Pi ↔ relay link; direct mode, mbsync and offlineimap (one command per user)',
        "on the link to Dovecot. Bytes both ways through the counting link proxy; the physical limit is the new content's",
        'raw messages as one zstd (level 19, long window) or `xz -9e` stream. Options (environment): `MAILMULE_BENCH_MESSAGES`',
        '(per user, default 150), `MAILMULE_BENCH_SHARED` (default a third), `MAILMULE_BENCH_NEW`, `MAILMULE_BENCH_LIST`, `MAILMULE_BENCH_LINKS`,',
        '`MAILMULE_BENCH_CLIENTS=relay,direct,mbsync,offlineimap`, `MAILMULE_BENCH_DOCS=0`; the default run takes about 5 minutes,',
        'most of it offlineimap on the shaped link. Results are appended below, newest last.',
        ''
    ].join('\n');
}

if (!fs.existsSync(path.join(ROOT, 'dist', 'src', 'cli', 'main.js'))) throw new Error('run npm run build first');
main().then(
    () => process.exit(0),
    err => {
        log(`failed: ${(err as Error).stack ?? err}`);
        process.exit(1);
    }
);
