/**
 * The daemon's log under systemd: each line carries its syslog priority as journald's level
 * prefix (`<3>` error, `<4>` warning, `<6>` info, `<7>` debug), so `journalctl -p err` shows
 * exactly the errors.
 *
 * 1. The daemon with JOURNAL_STREAM naming its stdout (as systemd sets it for a unit whose output
 *    goes to the journal; stderr to the same stream), the lines read from the pipe.
 * 2. A real systemd-journald, started in a mount namespace of its own (no systemd runs as PID 1
 *    here, so `systemd-run` cannot be used): the daemon runs under `systemd-cat --level-prefix`,
 *    with JOURNAL_STREAM set as systemd would, and `journalctl -p err` is asked what it filed.
 *    Skipped where journald, systemd-cat or unshare is missing, or without root.
 *
 * The same events in both: start (info), an IMAP login (debug: one line per command), a sync to
 * an account nobody answers for (warning), a reload of a broken accounts.yaml (error), stop.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { killAllDaemons, MAIN, setup, startDaemon, type Setup } from './support/daemon-process';
import { RawImapConnection } from './support/raw-imap-connection';
import { runProcess } from './support/run-process';
import { sleep, waitUntil } from './support/wait';

const TEST_TIMEOUT = 90_000;
const LOCAL_PASSWORD = 'local-pw-journal-7';
const UPSTREAM_PASSWORD = 'upstream-pw-journal-9';
/** Sets JOURNAL_STREAM to the device:inode of stdout and sends stderr there too, as systemd does for a unit. */
const AS_SYSTEMD = 'exec 2>&1; JOURNAL_STREAM=$(stat -L -c %d:%i /proc/$$/fd/1) exec "$@"';

after(killAllDaemons);

async function journalSetup(prefix: string): Promise<Setup> {
    const accountsYaml = [
        '      - address: alice@upstream.test',
        '        imap: { host: 127.0.0.1, port: 1, tls: none }',
        '        smtp: { host: 127.0.0.1, port: 1, tls: none }',
        `        credentials: { password: ${UPSTREAM_PASSWORD} }`
    ].join('\n');
    const env = await setup({ users: [{ name: 'alice', password: LOCAL_PASSWORD, accountsYaml }], prefix });
    // Debug, so that the IMAP command lines show; format auto, so the daemon has to notice the journal.
    fs.writeFileSync(env.configFile, fs.readFileSync(env.configFile, 'utf8').replace('  level: info\n', '  level: debug\n'));
    return env;
}

/** What each test makes the daemon log, at each priority. */
async function logSomething(env: Setup, pid: number, sawReloadFailure: () => Promise<void>): Promise<void> {
    const imap = await RawImapConnection.session(env.imapPort, 'alice', LOCAL_PASSWORD);
    await imap.command('NOOP');
    imap.destroy();
    const sync = await runProcess(process.execPath, [MAIN, 'sync', '-c', env.configFile], { timeoutMs: 30_000 });
    assert.equal(sync.code, 6, `the account fails: ${sync.stdout}${sync.stderr}`);
    const accountsFile = path.join(env.dir, 'accounts.yaml');
    fs.writeFileSync(accountsFile, 'users: [ {name: }\n', { mode: 0o600 });
    process.kill(pid, 'SIGHUP');
    await sawReloadFailure();
}

const PRIORITY = /^<([0-7])>/;

describe('journald priorities', () => {
    test('with JOURNAL_STREAM naming stdout, every line starts with its priority; only the errors are <3> or below', { timeout: TEST_TIMEOUT }, async () => {
        const env = await journalSetup('mailmule-journal-');
        const daemon = await startDaemon(env.configFile, [], ['sh', '-c', AS_SYSTEMD, 'sh']);
        await logSomething(env, daemon.child.pid!, () => waitUntil(() => daemon.lines.some(line => line.includes('reload failed')), 'the reload failure in the log', 10_000));
        assert.equal(await daemon.stop(), 0);
        const lines = daemon.lines.filter(line => line.length);
        const text = lines.join('\n');

        for (const line of lines) assert.match(line, PRIORITY, `a line without its priority:\n${text}`);
        assert.ok(!lines.some(line => line.includes('{"level"')), `no JSON under the journal:\n${text}`);
        const at = (priority: number, pattern: RegExp) => lines.filter(line => line.startsWith(`<${priority}>`) && pattern.test(line));
        assert.equal(at(6, /^<6>mailmule started {2}config=/).length, 1, text);
        assert.ok(at(7, /IMAP command .*command=LOGIN/).length >= 1, `the LOGIN at debug:\n${text}`);
        assert.equal(at(4, /uplink: receiving failed {2}run=1 account=alice@upstream\.test/).length, 1, text);
        assert.equal(at(6, /mailmule stopped/).length, 1, text);
        // What `journalctl -p err` would show: priorities 0 to 3, exactly the reload failure.
        const errors = lines.filter(line => Number(PRIORITY.exec(line)![1]) <= 3);
        assert.equal(errors.length, 1, `errors:\n${errors.join('\n')}`);
        assert.match(errors[0], /^<3>reload failed; the running configuration stays in force {2}problems=\[".*accounts\.yaml:\d+:\d+ /);
        assert.doesNotMatch(text, new RegExp(`${LOCAL_PASSWORD}|${UPSTREAM_PASSWORD}`), 'no password in the log');
    });

    test("a start that fails is in the journal at crit and err priority (the daemon's reason, then the command's)", { timeout: TEST_TIMEOUT }, async () => {
        const env = await journalSetup('mailmule-journal-fail-');
        const first = await startDaemon(env.configFile);
        try {
            const second = await runProcess('sh', ['-c', AS_SYSTEMD, 'sh', process.execPath, MAIN, 'start', '-c', env.configFile], { timeoutMs: 30_000 });
            assert.equal(second.code, 8, second.stdout + second.stderr);
            const lines = second.stdout.split('\n').filter(Boolean);
            for (const line of lines) assert.match(line, PRIORITY, second.stdout);
            assert.ok(
                lines.some(line => /^<2>mailmule could not start: .*another mailmule daemon/.test(line)),
                second.stdout
            );
            assert.ok(
                lines.some(line => /^<3>.*another mailmule daemon/.test(line)),
                second.stdout
            );
        } finally {
            await first.stop();
        }
    });

    const journald = ['/lib/systemd/systemd-journald', '/usr/lib/systemd/systemd-journald'].find(file => fs.existsSync(file));
    const missing = !journald
        ? 'no systemd-journald'
        : ['systemd-cat', 'journalctl', 'unshare'].find(tool => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0)
          ? 'systemd-cat, journalctl or unshare missing'
          : process.getuid?.() !== 0
            ? 'needs root (a mount namespace)'
            : false;

    test('journalctl -p err of a real journald shows exactly the errors', { timeout: TEST_TIMEOUT, skip: missing }, async () => {
        const env = await journalSetup('mailmule-journald-');
        const journalDir = path.join(env.dir, 'journal-run');
        fs.mkdirSync(journalDir);
        const tag = `mailmule-test-${process.pid}`;
        // A private /run (journald's sockets) and /run/log (its files, bound to journalDir so that
        // journalctl can read them from outside); /var/log/journal hidden so nothing persists.
        const script = [
            'set -e',
            'mount -t tmpfs tmpfs /run',
            'mkdir -p /run/log',
            `mount --bind ${journalDir} /run/log`,
            '[ -d /var/log/journal ] && mount -t tmpfs tmpfs /var/log/journal',
            `${journald} >/dev/null 2>&1 & echo $! > ${journalDir}/journald.pid`,
            'i=0; while [ ! -S /run/systemd/journal/stdout ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done',
            `exec systemd-cat -t ${tag} --level-prefix=true sh -c '${AS_SYSTEMD}' sh "$@"`
        ].join('\n');
        const child = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, 'sh', process.execPath, MAIN, 'start', '-c', env.configFile], {
            stdio: ['ignore', 'pipe', 'pipe'],
            cwd: env.dir
        });
        let childOutput = '';
        child.stdout.on('data', (chunk: Buffer) => (childOutput += chunk.toString()));
        child.stderr.on('data', (chunk: Buffer) => (childOutput += chunk.toString()));
        const exited = new Promise<number | null>(resolve => child.once('exit', code => resolve(code)));
        const journal = (...args: string[]) => {
            const dirs = fs.existsSync(path.join(journalDir, 'journal')) ? fs.readdirSync(path.join(journalDir, 'journal')) : [];
            if (!dirs.length) return '';
            const result = spawnSync('journalctl', ['--directory', path.join(journalDir, 'journal', dirs[0]), '-t', tag, '-o', 'cat', '--no-pager', ...args], { encoding: 'utf8', timeout: 10_000 });
            return result.stdout;
        };
        const waitForJournal = async (pattern: RegExp, what: string) => {
            const deadline = Date.now() + 20_000;
            while (!pattern.test(journal())) {
                if (child.exitCode !== null) throw new Error(`the daemon exited (${child.exitCode}): ${childOutput}\n${journal()}`);
                if (Date.now() > deadline) throw new Error(`${what} not in the journal within 20 s:\n${journal()}\n${childOutput}`);
                await sleep(100);
            }
        };
        try {
            await waitForJournal(/^mailmule started/m, 'mailmule started');
            await logSomething(env, child.pid!, () => waitForJournal(/^reload failed/m, 'the reload failure'));
            child.kill('SIGTERM');
            assert.equal(await exited, 0, childOutput);
            await waitForJournal(/^mailmule stopped/m, 'mailmule stopped');

            const errors = journal('-p', 'err').split('\n').filter(Boolean);
            assert.equal(errors.length, 1, `journalctl -p err:\n${errors.join('\n')}`);
            assert.match(errors[0], /^reload failed; the running configuration stays in force/);
            const warnings = journal('-p', 'warning').split('\n').filter(Boolean);
            assert.deepEqual(
                warnings.map(line => line.replace(/ {2}.*/, '')),
                ['uplink: receiving failed', 'reload failed; the running configuration stays in force']
            );
            const info = journal('-p', 'info');
            assert.match(info, /^mailmule started {2}config=/m);
            assert.doesNotMatch(info, /IMAP command/, 'debug lines are below info');
            assert.match(journal('-p', 'debug'), /^imap: IMAP command /m);
            assert.doesNotMatch(journal(), /^<\d>/m, 'journald took the prefixes off');
            assert.doesNotMatch(journal(), new RegExp(`${LOCAL_PASSWORD}|${UPSTREAM_PASSWORD}`));
        } finally {
            if (child.exitCode === null) child.kill('SIGKILL');
            const pidFile = path.join(journalDir, 'journald.pid');
            if (fs.existsSync(pidFile)) {
                try {
                    process.kill(Number(fs.readFileSync(pidFile, 'utf8')), 'SIGTERM');
                } catch {
                    // already gone
                }
            }
        }
    });
});
