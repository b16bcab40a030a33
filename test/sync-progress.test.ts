/**
 * `mailmule sync` on a terminal: one live line per account, redrawn at least every second, also
 * while the provider is slow to answer, and the final figures with --json. The CLI runs in a
 * pseudo-terminal (python3's pty module) against a daemon in this process, which downloads from
 * the real upstream (Dovecot) through a link proxy that plays a slow 2G link (latency and
 * bandwidth), so each phase lasts long enough to be seen.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import path from 'node:path';
import { test } from 'node:test';
import { startGateway, type Gateway } from './support/gateway';
import { startLinkProxy, type LinkProxy } from './support/link-proxy';
import { startUpstream, type Upstream } from './support/upstream';

const CLI = path.resolve(__dirname, '..', 'src', 'cli', 'main.js');
const ALICE = 'alice@upstream.test';
const MESSAGES = 4;
const TEST_TIMEOUT = 90_000;

/** Runs argv in a pseudo-terminal of 30 rows and 150 columns; every chunk of its output with the time it came. */
const PTY_RUNNER = `
import fcntl, os, pty, struct, sys, termios
pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack('HHHH', 30, 150, 0, 0))
    os.execv(sys.argv[1], sys.argv[1:])
while True:
    try:
        data = os.read(fd, 65536)
    except OSError:
        break
    if not data:
        break
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
`;

interface Chunk {
    at: number;
    text: string;
}

function inPty(args: string[], timeoutMs: number): Promise<{ code: number | null; chunks: Chunk[] }> {
    return new Promise((resolve, reject) => {
        const child = spawn('python3', ['-c', PTY_RUNNER, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
        const chunks: Chunk[] = [];
        let stderr = '';
        child.stdout.on('data', (data: Buffer) => chunks.push({ at: Date.now(), text: data.toString('utf8') }));
        child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
        const timer = setTimeout(() => {
            child.kill('SIGKILL');
            reject(new Error(`no end within ${timeoutMs} ms: ${chunks.map(c => c.text).join('')}${stderr}`));
        }, timeoutMs);
        child.once('error', reject);
        child.once('close', code => {
            clearTimeout(timer);
            resolve({ code, chunks });
        });
    });
}

/** Every line the live display drew (each starts with "erase line"), with the time it reached us. */
function drawnLines(chunks: Chunk[]): { at: number; line: string }[] {
    const lines: { at: number; line: string }[] = [];
    for (const chunk of chunks) {
        for (const match of chunk.text.matchAll(/\x1b\[2K([^\r\n\x1b]*)\r?\n/g)) lines.push({ at: chunk.at, line: match[1] });
    }
    return lines;
}

function inbound(n: number): Buffer {
    const noise = crypto.randomBytes(30_000).toString('base64').replace(/.{76}/g, '$&\r\n');
    return Buffer.from(
        [`From: Carol <carol@example.org>`, `To: ${ALICE}`, `Subject: progress ${n}`, `Message-ID: <progress-${n}@example.org>`, 'Date: Mon, 23 Nov 2026 09:00:00 +0000', '', noise, ''].join('\r\n')
    );
}

test('sync on a terminal: a live line per account, redrawn while the provider is slow, then the final figures as JSON', { timeout: TEST_TIMEOUT }, async () => {
    let upstream: Upstream | undefined;
    let link: LinkProxy | undefined;
    let gateway: Gateway | undefined;
    try {
        upstream = await startUpstream();
        for (let n = 1; n <= MESSAGES; n++) await upstream.deliver(ALICE, inbound(n));
        // RTT 0.6 s: each IMAP round trip of the log-in is slow; 256 kbit/s: the bodies take seconds.
        link = await startLinkProxy({ targetPort: upstream.imapPort, latencyMs: 300, bandwidthBps: 256_000 });
        const accountsYaml = [
            `      - address: ${ALICE}`,
            `        imap: { host: 127.0.0.1, port: ${link.port}, tls: none }`,
            `        smtp: { host: 127.0.0.1, port: ${upstream.submissionPort}, tls: none }`,
            '        credentials: { password: alice-pass }',
            '        folders: [INBOX]'
        ].join('\n');
        gateway = await startGateway({ users: [{ name: 'alice', password: 'pw-alice', accountsYaml }] });

        const { code, chunks } = await inPty([process.execPath, CLI, 'sync', '--json', '-c', gateway.configFile], 60_000);
        const all = chunks.map(chunk => chunk.text).join('');
        assert.equal(code, 0, all);
        const lines = drawnLines(chunks);
        const mine = lines.filter(entry => entry.line.startsWith(`${ALICE}: `));
        const story = lines.map(entry => entry.line).join('\n');

        // The account's line from the start, then what it does, with a clock that moves while the log-in crawls.
        assert.ok(
            mine.some(entry => entry.line === `${ALICE}: waiting`),
            story
        );
        const connecting = mine.map(entry => /: connecting to 127\.0\.0\.1 … (\d+) s \| /.exec(entry.line)?.[1]).filter((s): s is string => s !== undefined);
        assert.ok(new Set(connecting).size >= 2, `the elapsed time moves while connecting: ${[...new Set(connecting)].join(', ')}\n${story}`);
        // Bytes that grow while the bodies come down, with a rate.
        const down = mine.map(entry => /: downloading … \d+ s \| \d+ in, 0 out \| ([\d.]+) KB down, [\d.]+ KB up \| [\d.]+ KB\/s$/.exec(entry.line)?.[1]).filter((s): s is string => s !== undefined);
        assert.ok(new Set(down).size >= 2, `the downloaded bytes move: ${[...new Set(down)].join(', ')}\n${story}`);
        assert.ok(Number(down[down.length - 1]) > Number(down[0]));
        // Redrawn at least every second (plus the time a chunk takes through the pty), from the first line to the last.
        for (let i = 1; i < lines.length; i++) assert.ok(lines[i].at - lines[i - 1].at <= 1500, `a gap of ${lines[i].at - lines[i - 1].at} ms between redraws`);
        assert.doesNotMatch(all, /"level":/, 'no log line on the terminal');

        // After the live block is erased (the last "clear to end of screen"): the report as JSON, and nothing else.
        const after = all.slice(all.lastIndexOf('\x1b[J') + 3);
        const report = JSON.parse(after) as { status: string; accounts: { account: string; messagesReceived: number; bytesReceived: number; durationMs: number }[] };
        assert.equal(report.status, 'ok');
        assert.equal(report.accounts.length, 1);
        assert.equal(report.accounts[0].account, ALICE);
        assert.equal(report.accounts[0].messagesReceived, MESSAGES);
        assert.ok(report.accounts[0].bytesReceived > MESSAGES * 30_000 * 0.5, 'the bodies came over the wire');
        assert.ok(report.accounts[0].durationMs > 1000);
    } finally {
        await gateway?.stop().catch(() => undefined);
        await link?.close();
        await upstream?.stop();
    }
});
