/**
 * `npm run bench:idle`: what idle IDLE sessions cost in memory, mailmule against Dovecot (issue 11:
 * 50 idle IDLE sessions add at most 10 MB to the daemon).
 *
 * Phones and desktop clients keep a connection in IDLE on INBOX all day, one or more per device: on
 * a village Pi, 50 of them is an ordinary evening. Both servers get the same INBOX (the seeded
 * corpus, bench/corpus.ts, default 1,000 messages: each session holds the mailbox's UID list) and
 * the same sessions over plaintext on loopback: connect, LOGIN, SELECT INBOX, IDLE until the
 * server's continuation.
 *
 * mailmule: one warm-up session first (LOGIN with its scrypt, SELECT, IDLE, DONE, LOGOUT; the code
 * paths it touches are part of every daemon), then RSS (VmRSS) is read; then SESSIONS sessions are
 * opened one after the other and left in IDLE, and RSS is read again after SETTLE_MS. The figure is
 * the difference. The login cache (src/auth/passwords.ts) keeps the 49 other logins from hashing.
 *
 * Dovecot (the anchor): one `imap` process per session; the sum of their RSS (and of their
 * anonymous memory, since each process also counts the shared libraries it maps) with the sessions
 * in IDLE.
 *
 * Environment:
 *   MAILMULE_BENCH_SESSIONS   IDLE sessions (default 50)
 *   MAILMULE_BENCH_MESSAGES   messages in the INBOX (default 1000)
 *   MAILMULE_BENCH_SEED       corpus seed (default 1)
 *   MAILMULE_BENCH_DOCS       results file (default docs/benchmarks.md; "0" to not write one)
 *   MAILMULE_BENCH_NODE_ARGS  node flags for the daemon (default: those of the systemd unit; "none" for none)
 *   MAILMULE_BENCH_LABEL      a note for the heading of the results section
 *
 * Everything listens on and connects to 127.0.0.1 only. Every wait is bounded.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ensureCorpus } from './corpus';
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
    readStatus,
    startDovecot,
    runCli,
    machine,
    sleep,
    withTimeout,
    writeMailmuleConfig,
    writeResultsSection,
    intEnv,
    daemonNodeArgs,
    spawnMailmule,
    makeLocalCa
} from './support';

const USER = 'bench';
const PASSWORD = 'bench-pass-1';
const SESSIONS = intEnv('MAILMULE_BENCH_SESSIONS', 50);
const COUNT = intEnv('MAILMULE_BENCH_MESSAGES', 1000);
const SEED = intEnv('MAILMULE_BENCH_SEED', 1);
const DOCS_FILE = process.env.MAILMULE_BENCH_DOCS === '0' ? null : path.resolve(ROOT, process.env.MAILMULE_BENCH_DOCS || 'docs/benchmarks.md');
const LABEL = process.env.MAILMULE_BENCH_LABEL ?? '';
/** How long the sessions sit in IDLE before RSS is read (timers armed, buffers settled). */
const SETTLE_MS = 3000;
const AIM_BYTES = 10 * 1024 * 1024;
const HEADING = '## Idle IMAP sessions: memory for 50 sessions in IDLE (`npm run bench:idle`)';

/** One IMAP connection driven line by line: enough for LOGIN, SELECT and IDLE (no literals are expected). */
class IdleSession {
    private text = '';
    private wake: (() => void) | null = null;
    private closed = false;

    private constructor(private readonly socket: net.Socket) {
        socket.on('data', chunk => {
            this.text += chunk.toString('latin1');
            this.wake?.();
        });
        socket.on('close', () => {
            this.closed = true;
            this.wake?.();
        });
        socket.on('error', () => {});
    }

    static async open(port: number): Promise<IdleSession> {
        const socket = net.connect({ host: HOST, port });
        const session = new IdleSession(socket);
        await session.waitFor(/^\* OK/m, 'greeting');
        await session.send('a LOGIN', `a LOGIN ${USER} "${PASSWORD}"`, /^a OK/m);
        await session.send('b SELECT', 'b SELECT INBOX', /^b OK/m);
        await session.send('c IDLE', 'c IDLE', /^\+ /m);
        return session;
    }

    /** Ends IDLE and logs out (bounded), then closes. */
    async close(): Promise<void> {
        try {
            await this.send('DONE', 'DONE', /^c OK/m);
            await this.send('LOGOUT', 'd LOGOUT', /^d OK/m);
        } catch {
            // Closing anyway.
        }
        this.socket.destroy();
    }

    private async send(what: string, line: string, reply: RegExp): Promise<void> {
        this.socket.write(`${line}\r\n`);
        await this.waitFor(reply, what);
    }

    private async waitFor(pattern: RegExp, what: string): Promise<void> {
        await withTimeout(
            (async () => {
                while (!pattern.test(this.text)) {
                    if (/^[a-d] (NO|BAD)/m.test(this.text) || this.closed) throw new Error(`${what}: ${this.text.trim().split('\r\n').pop() ?? 'connection closed'}`);
                    await new Promise<void>(resolve => (this.wake = resolve));
                }
                this.text = '';
            })(),
            30000,
            `${what}: no answer`
        );
    }
}

/** Sum of VmRSS and of RssAnon over Dovecot's per-session imap processes (children of the master). */
function dovecotImapMemory(masterPid: number): { processes: number; rss: number; anon: number } {
    const kb = (value: string | undefined) => (value ? Number(value.replace(/\s*kB$/, '')) * 1024 : 0);
    const out = { processes: 0, rss: 0, anon: 0 };
    for (const entry of fs.readdirSync('/proc')) {
        if (!/^\d+$/.test(entry)) continue;
        const status = readStatus(Number(entry));
        if (status.PPid !== String(masterPid) || status.Name !== 'imap') continue;
        out.processes++;
        out.rss += kb(status.VmRSS);
        out.anon += kb(status.RssAnon);
    }
    return out;
}

async function openSessions(port: number, count: number): Promise<IdleSession[]> {
    const sessions: IdleSession[] = [];
    for (let i = 0; i < count; i++) sessions.push(await IdleSession.open(port));
    return sessions;
}

async function closeSessions(sessions: IdleSession[]): Promise<void> {
    await Promise.all(sessions.map(session => session.close()));
}

interface MailmuleFigures {
    startRss: number;
    beforeRss: number;
    withSessionsRss: number;
    afterCloseRss: number;
    hwm: number;
}

async function measureMailmule(work: string, corpusDir: string): Promise<MailmuleFigures> {
    const dir = path.join(work, 'mailmule');
    fs.mkdirSync(dir, { recursive: true });
    const port = await freePort();
    const configFile = writeMailmuleConfig(dir, port, [USER]);
    // One user from one address holds every session here (as Dovecot's mail_max_userip_connections = 100 allows).
    fs.writeFileSync(configFile, fs.readFileSync(configFile, 'utf8').replace('imap:\n', `imap:\n  maxConnectionsPerUserAddress: ${Math.max(10, SESSIONS + 1)}\n`));
    runCli(['passwd', USER, '-c', configFile], `${PASSWORD}\n`, 60000);
    log(`mailmule: importing ${COUNT} messages`);
    runCli(['import', USER, corpusDir, '-c', configFile], null, 30 * 60 * 1000);
    makeLocalCa(configFile);
    const { child, lines, started } = spawnMailmule(configFile);
    try {
        await waitForImap('mailmule', port, child, lines, started, 60000);
        const pid = child.pid!;
        const startRss = memoryOf(pid).rss;
        log(`mailmule: daemon pid ${pid}, RSS after start-up ${fmtMB(startRss)}`);
        await (await IdleSession.open(port)).close();
        await sleep(SETTLE_MS);
        const beforeRss = memoryOf(pid).rss;
        log(`mailmule: after the warm-up session ${fmtMB(beforeRss)}; opening ${SESSIONS} IDLE sessions`);
        const sessions = await openSessions(port, SESSIONS);
        await sleep(SETTLE_MS);
        const withSessionsRss = memoryOf(pid).rss;
        log(`mailmule: with ${SESSIONS} sessions in IDLE ${fmtMB(withSessionsRss)} (+${fmtMB(withSessionsRss - beforeRss)})`);
        await closeSessions(sessions);
        await sleep(SETTLE_MS);
        const { rss: afterCloseRss, hwm } = memoryOf(pid);
        return { startRss, beforeRss, withSessionsRss, afterCloseRss, hwm };
    } finally {
        await stopChild(child);
    }
}

async function measureDovecot(work: string, corpusDir: string): Promise<{ processes: number; rss: number; anon: number }> {
    const { port, child } = await startDovecot(path.join(work, 'dovecot'), [{ name: USER, password: PASSWORD, maildir: corpusDir }]);
    try {
        // The first session builds Dovecot's index files: not part of what a session costs.
        await (await IdleSession.open(port)).close();
        const sessions = await openSessions(port, SESSIONS);
        await sleep(SETTLE_MS);
        const memory = dovecotImapMemory(child.pid!);
        log(`dovecot: ${memory.processes} imap processes, RSS ${fmtMB(memory.rss)} (anonymous ${fmtMB(memory.anon)})`);
        await closeSessions(sessions);
        return memory;
    } finally {
        await stopChild(child);
    }
}

function intro(): string {
    return [
        HEADING,
        '',
        '`bench/idle.ts` gives mailmule and Dovecot the same INBOX (the seeded corpus) and opens the same sessions on',
        'each over plaintext on loopback (connect, LOGIN, SELECT INBOX, IDLE until the continuation), one after the other,',
        "then leaves them in IDLE for 3 s. mailmule's figure is the daemon's RSS with the sessions minus its RSS after one",
        'warm-up session (LOGIN, SELECT, IDLE, LOGOUT); Dovecot runs one `imap` process per session, whose RSS is summed',
        '(with their anonymous memory beside it: each process also counts the shared libraries it maps). Aim (issue 11):',
        '50 sessions add at most 10 MB to the daemon. RSS figures do not depend on the load; the load is given anyway.',
        "A MB or two either way is the garbage collector's timing between the two readings, not the sessions.",
        '',
        'Results are added at the end of this section, newest last.',
        ''
    ].join('\n');
}

async function main(): Promise<void> {
    if (!fs.existsSync(MAIN)) throw new Error(`${MAIN} is missing: run npm run build first`);
    const loadStart = os.loadavg();
    const corpus = ensureCorpus({ count: COUNT, seed: SEED, cacheRoot: path.join(ROOT, 'bench', '.cache'), log });
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mailmule-bench-idle-'));
    fs.chmodSync(work, 0o755);
    try {
        const mm = await measureMailmule(work, corpus.dir);
        const dc = await measureDovecot(work, corpus.dir);
        const added = mm.withSessionsRss - mm.beforeRss;
        const loadEnd = os.loadavg();
        const report = [
            `| ${SESSIONS} IDLE sessions on an INBOX of ${COUNT.toLocaleString('en')} messages | memory | per session |`,
            '| --- | ---: | ---: |',
            `| mailmule: daemon RSS added | **${fmtMB(added)}** | ${fmtMB(added / SESSIONS)} |`,
            `| Dovecot: sum of the ${dc.processes} \`imap\` processes' RSS | ${fmtMB(dc.rss)} | ${fmtMB(dc.rss / Math.max(1, dc.processes))} |`,
            `| Dovecot: their anonymous memory | ${fmtMB(dc.anon)} | ${fmtMB(dc.anon / Math.max(1, dc.processes))} |`,
            '',
            `- mailmule daemon RSS: ${fmtMB(mm.startRss)} after start-up, ${fmtMB(mm.beforeRss)} after the warm-up session, ${fmtMB(mm.withSessionsRss)} with the sessions, ${fmtMB(mm.afterCloseRss)} after they logged out; peak (VmHWM) ${fmtMB(mm.hwm)}.`,
            `- Aim: ${SESSIONS} sessions add ≤ ${fmtMB(AIM_BYTES)}${SESSIONS === 50 ? '' : ' (the aim is for 50)'}: ${added <= AIM_BYTES ? 'met' : 'NOT met'}.`,
            `- Load average (1 min) at the start ${loadStart[0].toFixed(2)}, at the end ${loadEnd[0].toFixed(2)} on ${os.availableParallelism()} CPUs.`,
            `- mailmule daemon node flags: \`${daemonNodeArgs().join(' ') || 'none'}\`.`
        ];
        process.stdout.write(`\n${report.join('\n')}\n`);
        if (DOCS_FILE) {
            const when = new Date()
                .toISOString()
                .replace(/:\d\d\.\d+Z$/, ' UTC')
                .replace('T', ' ');
            const section = [`### ${when}: ${SESSIONS} sessions${LABEL ? ` (${LABEL})` : ''}`, '', ...machine('(maildir, default indexes)'), '', ...report, ''].join('\n');
            writeResultsSection(DOCS_FILE, HEADING, intro, section);
            log(`results appended to ${path.relative(ROOT, DOCS_FILE)}`);
        }
    } finally {
        fs.rmSync(work, { recursive: true, force: true });
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
