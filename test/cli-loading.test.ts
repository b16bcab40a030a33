/**
 * What the everyday read-only commands load (issue 11: `--version`, `status`, `queue` and `users`
 * answer in ≤ 0.3 s above `node -e 0`, measured by `npm run bench:cli`). Start-up time is spent
 * loading modules, so this checks the modules, not the time: each command runs in a child process
 * through `main()`, against a store made by `mailmule init` and `passwd`, and reports every module
 * file it loaded. The MIME parsers, the mail composer, the servers, the uplink's runner and zod's
 * 50-odd translations must not be among them; what the command needs (SQLite) must be.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { tempDir } from './support/gateway';
import { describeRun, runProcess } from './support/run-process';

const ROOT = path.resolve(__dirname, '..', '..');
const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
const TIMEOUT_MS = 30_000;
const dir = tempDir('mailmule-cli-loading-');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Runs `mailmule ARGS` through main() in a child and returns the exit code and the module files it loaded. */
async function loadedBy(args: string[], input = ''): Promise<{ code: number; loaded: string[] }> {
    const out = path.join(dir, `loaded-${args[0].replace(/\W/g, '')}.json`);
    const script = [
        'const [cli, out, ...args] = process.argv.slice(1);',
        "require(cli).main(['node', cli, ...args]).then(code => require('node:fs').writeFileSync(out, JSON.stringify({ code, loaded: Object.keys(require.cache) })));"
    ].join('\n');
    const result = await runProcess(process.execPath, ['-e', script, '--', CLI, out, ...args], { timeoutMs: TIMEOUT_MS, cwd: dir, input });
    assert.equal(result.code, 0, describeRun(`mailmule ${args.join(' ')}`, result));
    return JSON.parse(fs.readFileSync(out, 'utf8')) as { code: number; loaded: string[] };
}

/** What no read-only command needs: parsing or composing mail, serving IMAP or SMTP, running the uplink, zod's translations. */
const NEVER: { what: string; pattern: RegExp }[] = [
    { what: "imap-core's MIME indexer", pattern: /imap-core[\\/]lib[\\/]indexer[\\/]/ },
    { what: 'html-to-text', pattern: /[\\/]html-to-text[\\/]/ },
    { what: 'libmime', pattern: /[\\/]libmime[\\/]/ },
    { what: 'nodemailer', pattern: /[\\/]nodemailer[\\/]/ },
    { what: 'mailparser', pattern: /[\\/]mailparser[\\/]/ },
    { what: 'imapflow', pattern: /[\\/]imapflow[\\/]/ },
    { what: 'smtp-server', pattern: /[\\/]smtp-server[\\/]/ },
    { what: "imap-core's server", pattern: /imap-core[\\/]lib[\\/]imap-server/ },
    { what: 'the daemon', pattern: /dist[\\/]src[\\/]daemon\.js$/ },
    { what: "the uplink's runner", pattern: /dist[\\/]src[\\/]uplink[\\/]runner\.js$/ },
    { what: "zod's translations (patches/zod+4.6.7+001)", pattern: /[\\/]zod[\\/]v4[\\/]locales[\\/]index\.cjs$/ }
];

function assertNone(command: string, loaded: string[], forbidden: { what: string; pattern: RegExp }[]): void {
    for (const { what, pattern } of forbidden) {
        const hits = loaded.filter(file => pattern.test(file));
        assert.deepEqual(hits, [], `mailmule ${command} loaded ${what}`);
    }
}

let config = '';

test('setup: a data directory from mailmule init, with a nightly schedule, two users and a password', { timeout: TIMEOUT_MS * 2 }, async () => {
    const init = await runProcess(process.execPath, [CLI, 'init', '--dir', dir, '--data-dir', path.join(dir, 'data'), '--hostname', 'mailmule.test', '--local-domain', 'mailmule.test'], {
        timeoutMs: TIMEOUT_MS
    });
    assert.equal(init.code, 0, describeRun('mailmule init', init));
    config = path.join(dir, 'mailmule.yaml');
    const gateway = fs.readFileSync(config, 'utf8');
    assert.match(gateway, /^ {2}schedule: \[\]$/m);
    fs.writeFileSync(config, gateway.replace(/^ {2}schedule: \[\]$/m, "  schedule: ['30 2 * * *']"));
    fs.writeFileSync(path.join(dir, 'accounts.yaml'), 'users:\n  - name: alice\n  - name: bob\n', { mode: 0o600 });
    const passwd = await runProcess(process.execPath, [CLI, 'passwd', 'alice', '-c', config], { timeoutMs: TIMEOUT_MS, input: 'Alice-loading-pw\n' });
    assert.equal(passwd.code, 0, describeRun('mailmule passwd', passwd));
});

test('mailmule --version loads commander and nothing of the config, the store or mail', { timeout: TIMEOUT_MS }, async () => {
    const { code, loaded } = await loadedBy(['--version']);
    assert.equal(code, 0);
    assert.ok(loaded.some(file => /[\\/]commander[\\/]/.test(file)));
    assertNone('--version', loaded, [
        ...NEVER,
        { what: 'zod', pattern: /[\\/]zod[\\/]/ },
        { what: 'yaml', pattern: /[\\/]yaml[\\/]/ },
        { what: 'better-sqlite3', pattern: /[\\/]better-sqlite3[\\/]/ }
    ]);
});

for (const command of ['status', 'queue', 'users']) {
    test(`mailmule ${command} reads the store without loading mail parsers, servers, the uplink's runner or zod's translations`, { timeout: TIMEOUT_MS }, async () => {
        const { code, loaded } = await loadedBy([command, '-c', config]);
        assert.equal(code, 0);
        // What the command does need: the config (zod, yaml) and the store (SQLite).
        for (const needed of ['zod', 'yaml', 'better-sqlite3']) {
            assert.ok(
                loaded.some(file => file.includes(`${path.sep}${needed}${path.sep}`)),
                `mailmule ${command} did not load ${needed}`
            );
        }
        assertNone(command, loaded, NEVER);
    });
}
