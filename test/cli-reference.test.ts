/**
 * What a Debian admin expects around the command: the manual page and bash completion that the
 * build generates from the commands themselves, the README's command table, `check --json`.
 * Every command (and subcommand) is taken from the program as built, so a command added later
 * without its line in the README, or an option the README names that no longer exists, fails here.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { buildProgram } from '../src/cli/main';
import { bashCompletion, commandPaths } from '../src/cli/reference';
import { MAIN } from './support/daemon-process';

const ROOT = path.resolve(__dirname, '..', '..');
const SHARE = path.join(ROOT, 'dist', 'share');
const COMPLETION = path.join(SHARE, 'bash-completion', 'completions', 'mailmule');
const MAN_PAGE = path.join(SHARE, 'man', 'man1', 'mailmule.1');

const program = buildProgram();
const paths = commandPaths(program).map(({ words, command }) => ({
    name: words.join(' '),
    command,
    /** Long options of its own (not -c/--config, which every command but init has, nor --help). */
    options: command.options.map(option => option.long).filter((flag): flag is string => !!flag && flag !== '--config' && flag !== '--help')
}));

/** What bash completes after `mailmule <line>` (the last word is the one being typed). */
function complete(line: string): string[] {
    const script = `source ${JSON.stringify(COMPLETION)}
COMP_WORDS=(mailmule ${line}); COMP_CWORD=\${#COMP_WORDS[@]}
[[ "${line}" == *" " || -z "${line}" ]] && COMP_WORDS+=("") || COMP_CWORD=$((COMP_CWORD - 1))
_mailmule
printf '%s\\n' "\${COMPREPLY[@]}"`;
    const result = spawnSync('bash', ['-c', script], { encoding: 'utf8', cwd: os.tmpdir() });
    assert.equal(result.status, 0, result.stderr);
    return result.stdout.split('\n').filter(Boolean).sort();
}

describe('bash completion', () => {
    test('the build wrote it, generated from the commands', () => {
        assert.equal(fs.readFileSync(COMPLETION, 'utf8'), bashCompletion(program));
        assert.equal(spawnSync('bash', ['-n', COMPLETION]).status, 0, 'valid bash');
    });

    test('it offers every command, each subcommand, and each command its own options', () => {
        const top = paths.filter(entry => !entry.name.includes(' ')).map(entry => entry.name);
        assert.ok(top.includes('init') && top.includes('sync') && top.length >= 11);
        assert.deepEqual(complete(''), [...top, '--help', '--version'].sort());
        assert.deepEqual(complete('s'), ['start', 'status', 'sync']);
        assert.deepEqual(complete('queue '), ['--config', '--help', '--json', 'drop', 'retry', 'show']);
        for (const entry of paths) {
            const offered = complete(`${entry.name} --`);
            for (const option of entry.options) assert.ok(offered.includes(option), `${entry.name}: ${option} in ${offered.join(' ')}`);
        }
        // Options and their values before the command do not confuse it.
        assert.deepEqual(complete('-c /etc/mailmule/mailmule.yaml queue retry --'), ['--all', '--config', '--help']);
        assert.deepEqual(complete('sync --user amina --j'), ['--json']);
    });
});

describe('manual page', () => {
    const man = fs.existsSync(MAN_PAGE) ? fs.readFileSync(MAN_PAGE, 'utf8') : '';

    test('the build wrote mailmule.1; groff reads it without a warning', { skip: spawnSync('sh', ['-c', 'command -v groff']).status !== 0 && 'no groff' }, () => {
        assert.match(man, /^\.TH MAILMULE 1 /);
        const result = spawnSync('groff', ['-man', '-ww', '-z', MAN_PAGE], { encoding: 'utf8' });
        assert.equal(result.status, 0);
        assert.equal(result.stderr, '', 'no warnings');
    });

    test('man shows every command with its options, the exit codes and the files', { skip: spawnSync('sh', ['-c', 'command -v man']).status !== 0 && 'no man' }, () => {
        const result = spawnSync('man', ['-l', MAN_PAGE], { encoding: 'utf8', env: { ...process.env, MANWIDTH: '200', MAN_KEEP_FORMATTING: '', PAGER: 'cat' } });
        assert.equal(result.status, 0, result.stderr);
        const text = result.stdout.replace(/.\x08/g, '');
        for (const entry of paths) {
            assert.match(text, new RegExp(`^ {7}mailmule ${entry.name}( |$)`, 'm'), `mailmule ${entry.name}`);
            for (const option of entry.options) assert.ok(text.includes(option), `${entry.name} ${option}`);
        }
        assert.match(text, /^EXIT STATUS/m);
        for (let code = 0; code <= 9; code++) assert.match(text, new RegExp(`^ {7}${code} {6}`, 'm'), `exit code ${code}`);
        assert.match(text, /\/etc\/mailmule\/accounts\.yaml/);
    });
});

describe('README', () => {
    test('the command table has a row for every command, naming each of its options, and no option it does not have', () => {
        const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
        const section = readme.slice(readme.indexOf('## Commands'), readme.indexOf('Exit codes'));
        const rows = [...section.matchAll(/^\| `(mailmule [^`]*)` \|/gm)].map(match => match[1]);
        for (const entry of paths) {
            const row = rows.find(cell => cell === `mailmule ${entry.name}` || cell.startsWith(`mailmule ${entry.name} `));
            assert.ok(row, `no row for mailmule ${entry.name}`);
            for (const option of entry.options) assert.ok(row.includes(option), `the row "${row}" does not name ${option}`);
            const named = [...row.slice(`mailmule ${entry.name}`.length).matchAll(/--[a-z-]+/g)].map(match => match[0]);
            for (const flag of named) assert.ok(entry.options.includes(flag), `the row "${row}" names ${flag}, which mailmule ${entry.name} does not have`);
        }
        assert.equal(rows.length, paths.length, `one row per command: ${rows.join(' / ')}`);
    });
});

describe('check --json', () => {
    test('the summary as JSON; an invalid file as {"ok": false, "problems"} with exit 2', () => {
        const good = spawnSync(process.execPath, [MAIN, 'check', '--json', '-c', path.join(ROOT, 'config', 'mailmule.yaml')], { encoding: 'utf8' });
        assert.equal(good.status, 0, good.stderr);
        const summary = JSON.parse(good.stdout) as { ok: boolean; users: { name: string }[]; imap: { port: number; security: string }[]; smtp: unknown[]; dataDir: string };
        assert.equal(summary.ok, true);
        assert.deepEqual(
            summary.users.map(user => user.name),
            ['demo']
        );
        assert.deepEqual(
            summary.imap.map(listener => `${listener.port}/${listener.security}`),
            ['1143/starttls', '1993/tls']
        );
        assert.equal(summary.smtp.length, 2);

        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailmule-check-json-'));
        try {
            fs.writeFileSync(path.join(dir, 'mailmule.yaml'), 'dataDir: ./data\nlog:\n  level: loud\n');
            fs.writeFileSync(path.join(dir, 'accounts.yaml'), 'users: []\n', { mode: 0o600 });
            const bad = spawnSync(process.execPath, [MAIN, 'check', '--json', '-c', path.join(dir, 'mailmule.yaml')], { encoding: 'utf8' });
            assert.equal(bad.status, 2, bad.stdout + bad.stderr);
            const answer = JSON.parse(bad.stdout) as { ok: boolean; problems: string[] };
            assert.equal(answer.ok, false);
            assert.equal(answer.problems.length, 1);
            assert.match(answer.problems[0], /mailmule\.yaml:3:\d+ log\.level/);
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });
});
