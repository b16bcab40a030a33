/**
 * Config loading, unit level: every kind of mistake in mailmule.yaml, accounts.yaml or a
 * credentials file is a ConfigError whose problems read `file:line:col key.path: message`, with
 * the position computed here from the YAML each test writes.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig, ConfigError } from '../src/config';
import { tempDir } from './support/gateway';

const ROOT = path.resolve(__dirname, '..', '..');

const GATEWAY = ['dataDir: ./data', 'accounts: ./accounts.yaml', 'imap:', '  listeners:', '    - host: 127.0.0.1', '      port: 0', '      security: starttls', 'smtp:', '  listeners: []', ''].join(
    '\n'
);

const dirs: string[] = [];
after(() => {
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

interface Files {
    gateway?: string;
    accounts?: string;
    accountsMode?: number;
    /** Other files beside them (credentials files), with their mode (default 0600). */
    extra?: Record<string, { text: string; mode?: number }>;
}

/** Writes mailmule.yaml (+ accounts.yaml + extras) into a fresh directory; returns the paths. */
function setup(files: Files): { dir: string; configFile: string; accountsFile: string } {
    const dir = tempDir('mailmule-config-');
    dirs.push(dir);
    const configFile = path.join(dir, 'mailmule.yaml');
    const accountsFile = path.join(dir, 'accounts.yaml');
    fs.writeFileSync(configFile, files.gateway ?? GATEWAY);
    if (files.accounts !== undefined) {
        fs.writeFileSync(accountsFile, files.accounts);
        // chmod explicitly: the umask must not decide what the test is about.
        fs.chmodSync(accountsFile, files.accountsMode ?? 0o600);
    }
    for (const [name, { text, mode }] of Object.entries(files.extra ?? {})) {
        const file = path.join(dir, name);
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, text);
        fs.chmodSync(file, mode ?? 0o600);
    }
    return { dir, configFile, accountsFile };
}

/** 1-based `line:col` of the nth (1-based) occurrence of `needle` in `text`. */
function pos(text: string, needle: string, nth = 1): string {
    let index = -1;
    for (let i = 0; i < nth; i++) {
        index = text.indexOf(needle, index + 1);
        assert.ok(index >= 0, `test bug: ${JSON.stringify(needle)} (#${nth}) not in the YAML`);
    }
    const before = text.slice(0, index);
    const line = before.split('\n').length;
    const col = index - before.lastIndexOf('\n');
    return `${line}:${col}`;
}

/** Loads and expects a ConfigError; returns its problems. */
function problemsOf(configFile: string): string[] {
    try {
        loadConfig(configFile);
    } catch (err) {
        assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
        assert.ok(err.problems.length > 0);
        assert.equal(err.message, err.problems.join('\n'));
        return err.problems;
    }
    assert.fail('loadConfig accepted a broken config');
}

/** Asserts that exactly one problem is `file:where keyPath: message`. */
function assertProblem(problems: string[], file: string, where: string, keyPath: string, message: string | RegExp): void {
    const prefix = `${file}:${where} ${keyPath}: `;
    const found = problems.filter(p => p.startsWith(prefix));
    assert.equal(found.length, 1, `expected one problem starting ${JSON.stringify(prefix)}, got:\n${problems.join('\n')}`);
    const rest = found[0].slice(prefix.length);
    if (typeof message === 'string') assert.equal(rest, message, found[0]);
    else assert.match(rest, message, found[0]);
}

/** An upstream account in block style, indented for `users[i].accounts`. */
function account(lines: { address?: string | null; imapPort?: string; extra?: string[] } = {}): string {
    const out = [];
    if (lines.address !== null) out.push(`address: ${lines.address ?? 'bob@example.com'}`);
    out.push('imap:', '  host: imap.example.com', `  port: ${lines.imapPort ?? '993'}`, '  tls: implicit', 'smtp: { host: smtp.example.com, port: 465, tls: implicit }', ...(lines.extra ?? []));
    return out.map((line, i) => (i === 0 ? '      - ' : '        ') + line).join('\n') + '\n';
}

describe('valid configurations', () => {
    test('a valid pair loads: defaults filled in, sizes and durations converted, paths absolute', () => {
        const gateway = GATEWAY + ['log:', '  level: warn', 'queue:', '  maxAge: 36h', ''].join('\n');
        const accounts = [
            'users:',
            '  - name: alice',
            '    displayName: Alice A.',
            '  - name: bob',
            '    accounts:',
            account({ extra: ['name: work', 'since: 7d', 'maxMessageSize: 2MB', 'credentialsFile: ./secrets/bob.yaml'] }).trimEnd(),
            ''
        ].join('\n');
        const credentials = ['oauth2:', '  clientId: client-id', '  clientSecret: client-secret', '  refreshToken: refresh-token', '  tokenUrl: https://oauth2.example.com/token', ''].join('\n');
        const { dir, configFile, accountsFile } = setup({ gateway, accounts, extra: { 'secrets/bob.yaml': { text: credentials } } });
        const config = loadConfig(configFile);
        assert.equal(config.file, configFile);
        assert.equal(config.accountsFile, accountsFile);
        assert.equal(config.paths.dataDir, path.join(dir, 'data'));
        assert.equal(config.gateway.log.level, 'warn');
        assert.equal(config.gateway.queue.maxAge, 36 * 3600);
        assert.equal(config.gateway.imap.maxMessageSize, 25 * 1024 * 1024);
        assert.deepEqual(config.gateway.imap.listeners, [{ host: '127.0.0.1', port: 0, security: 'starttls', allowPlaintextAuth: false }]);
        assert.deepEqual(config.gateway.smtp.listeners, []);
        assert.deepEqual(
            config.users.map(u => u.name),
            ['alice', 'bob']
        );
        assert.deepEqual(config.users[0].accounts, []);
        const work = config.users[1].accounts[0];
        assert.equal(work.name, 'work');
        assert.equal(work.address, 'bob@example.com');
        assert.equal(work.since, 7 * 86400);
        assert.equal(work.maxMessageSize, 2 * 1024 * 1024);
        assert.deepEqual(work.folders, ['INBOX']);
        assert.equal(work.credentialsSource, path.join(dir, 'secrets/bob.yaml'));
        assert.equal(work.credentials?.oauth2?.refreshToken, 'refresh-token');
    });

    test('the shipped config/mailmule.yaml (the embedded default) is valid', () => {
        const config = loadConfig(path.join(ROOT, 'config', 'mailmule.yaml'));
        assert.equal(config.accountsFile, path.join(ROOT, 'config', 'accounts.yaml'));
        assert.ok(config.users.some(u => u.name === 'demo'));
        assert.ok(config.gateway.imap.listeners.length > 0);
    });
});

describe('each kind of mistake is reported as file:line:col key.path: message', () => {
    test('wrong type: port: "abc" in accounts.yaml → expected a number, at the value', () => {
        const accounts = ['users:', '  - name: bob', '    accounts:', account({ imapPort: '"abc"' })].join('\n');
        const { configFile } = setup({ accounts });
        const problems = problemsOf(configFile);
        assert.deepEqual(problems, [`accounts.yaml:${pos(accounts, '"abc"')} users[0].accounts[0].imap.port: expected a number`]);
    });

    test('wrong type in flow style and in mailmule.yaml', () => {
        const accounts = [
            'users:',
            '  - name: bob',
            '    accounts:',
            '      - address: bob@example.com',
            '        imap: { host: imap.example.com, port: "abc", tls: implicit }',
            '        smtp: { host: smtp.example.com, port: 465, tls: implicit }',
            ''
        ].join('\n');
        const gateway = GATEWAY.replace('port: 0', 'port: "abc"');
        const flow = setup({ accounts });
        assert.deepEqual(problemsOf(flow.configFile), [`accounts.yaml:${pos(accounts, '"abc"')} users[0].accounts[0].imap.port: expected a number`]);
        const gw = setup({ gateway, accounts: 'users: []\n' });
        assert.deepEqual(problemsOf(gw.configFile), [`mailmule.yaml:${pos(gateway, '"abc"')} imap.listeners[0].port: expected a number`]);
    });

    test('missing required key: an account without address points at that account', () => {
        const accounts = ['users:', '  - name: bob', '    accounts:', account({ address: null })].join('\n');
        const { configFile } = setup({ accounts });
        const problems = problemsOf(configFile);
        assert.equal(problems.length, 1, problems.join('\n'));
        // The account's map starts at its first key, `imap:`.
        assertProblem(problems, 'accounts.yaml', pos(accounts, 'imap:'), 'users[0].accounts[0].address', /missing/);
    });

    test('missing required section: an account without smtp', () => {
        const accounts = ['users:', '  - name: bob', '    accounts:', '      - address: bob@example.com', '        imap: { host: imap.example.com, port: 993, tls: implicit }', ''].join('\n');
        const { configFile } = setup({ accounts });
        assert.deepEqual(problemsOf(configFile), [`accounts.yaml:${pos(accounts, 'address:')} users[0].accounts[0].smtp: required section is missing`]);
    });

    test('unknown or misspelt key: points at the key itself, in both files', () => {
        const accounts = ['users:', '  - name: alice', '    acounts: []', ''].join('\n');
        const gateway = GATEWAY.replace('  listeners:', '  listners:') + 'dataDirectory: /var/lib/mailmule\n';
        const { configFile } = setup({ gateway, accounts });
        // mailmule.yaml is read first and its problems stop the load.
        const problems = problemsOf(configFile);
        assert.deepEqual(problems.sort(), [`mailmule.yaml:${pos(gateway, 'dataDirectory')} dataDirectory: unknown key`, `mailmule.yaml:${pos(gateway, 'listners')} imap.listners: unknown key`].sort());
        const fixed = setup({ accounts });
        assert.deepEqual(problemsOf(fixed.configFile), [`accounts.yaml:${pos(accounts, 'acounts')} users[0].acounts: unknown key`]);
    });

    test('bad enum: security: ssl and tls: ssl', () => {
        const gateway = GATEWAY.replace('security: starttls', 'security: ssl');
        const gw = setup({ gateway, accounts: 'users: []\n' });
        assert.deepEqual(problemsOf(gw.configFile), [`mailmule.yaml:${pos(gateway, 'ssl')} imap.listeners[0].security: expected one of "starttls", "tls"`]);

        const accounts = ['users:', '  - name: bob', '    accounts:', account().replace('tls: implicit', 'tls: ssl')].join('\n');
        const acc = setup({ accounts });
        assert.deepEqual(problemsOf(acc.configFile), [`accounts.yaml:${pos(accounts, 'ssl')} users[0].accounts[0].imap.tls: expected one of "implicit", "starttls", "starttls-if-offered", "none"`]);
    });

    test('bad size string', () => {
        const gateway = GATEWAY + ['  maxMessageSize: 25 parsecs', ''].join('\n');
        const { configFile } = setup({ gateway, accounts: 'users: []\n' });
        assert.deepEqual(problemsOf(configFile), [`mailmule.yaml:${pos(gateway, '25 parsecs')} smtp.maxMessageSize: expected a size such as 25MB, 512KB or a number of bytes`]);
        const accounts = ['users:', '  - name: bob', '    accounts:', account({ extra: ['maxMessageSize: lots'] })].join('\n');
        const acc = setup({ accounts });
        assertProblem(problemsOf(acc.configFile), 'accounts.yaml', pos(accounts, 'lots'), 'users[0].accounts[0].maxMessageSize', /^expected a size/);
    });

    test('bad duration', () => {
        const gateway = GATEWAY + ['queue:', '  maxAge: 10 fortnights', ''].join('\n');
        const { configFile } = setup({ gateway, accounts: 'users: []\n' });
        assert.deepEqual(problemsOf(configFile), [`mailmule.yaml:${pos(gateway, '10 fortnights')} queue.maxAge: expected a duration such as 30d, 12h, 15m or 45s`]);
        const accounts = ['users:', '  - name: bob', '    accounts:', account({ extra: ['since: 3 weeks'] })].join('\n');
        const acc = setup({ accounts });
        assertProblem(problemsOf(acc.configFile), 'accounts.yaml', pos(accounts, '3 weeks'), 'users[0].accounts[0].since', /^expected a duration/);
    });

    test('invalid email address', () => {
        const accounts = ['users:', '  - name: bob', '    accounts:', account({ address: 'not-an-email' })].join('\n');
        const { configFile } = setup({ accounts });
        assert.deepEqual(problemsOf(configFile), [`accounts.yaml:${pos(accounts, 'not-an-email')} users[0].accounts[0].address: expected an email address`]);
    });

    test('duplicate user names (case-insensitive) point at the second one', () => {
        const accounts = ['users:', '  - name: alice', '  - name: bob', '  - name: Alice', ''].join('\n');
        const { configFile } = setup({ accounts });
        assert.deepEqual(problemsOf(configFile), [`accounts.yaml:${pos(accounts, 'Alice')} users[2].name: duplicate user name "Alice"`]);
    });

    test("an address owned by two users points at the second owner's account", () => {
        const accounts = [
            'users:',
            '  - name: bob',
            '    accounts:',
            account({ address: 'shared@example.com' }).trimEnd(),
            '  - name: carol',
            '    accounts:',
            account({ address: 'Shared@Example.com' }).trimEnd(),
            ''
        ].join('\n');
        const { configFile } = setup({ accounts });
        assert.deepEqual(problemsOf(configFile), [`accounts.yaml:${pos(accounts, 'Shared@Example.com')} users[1].accounts[0].address: address Shared@Example.com already belongs to user "bob"`]);
    });

    test('YAML syntax errors give their own line:col', () => {
        const accounts = ['users:', '  - name: alice', '    accounts: ]', ''].join('\n');
        const acc = setup({ accounts });
        const problems = problemsOf(acc.configFile);
        assert.equal(problems.length, 1, problems.join('\n'));
        assert.match(problems[0], new RegExp(`^accounts\\.yaml:${pos(accounts, ']')} \\S.*flow-seq-end`));

        const gateway = GATEWAY + ['log:', '  level: @info', ''].join('\n');
        const gw = setup({ gateway, accounts: 'users: []\n' });
        const gwProblems = problemsOf(gw.configFile);
        assert.equal(gwProblems.length, 1, gwProblems.join('\n'));
        assert.match(gwProblems[0], new RegExp(`^mailmule\\.yaml:${pos(gateway, '@info')} .*reserved character @`));

        const duplicate = ['users:', '  - name: alice', '    name: bob', ''].join('\n');
        const dup = setup({ accounts: duplicate });
        assert.deepEqual(problemsOf(dup.configFile), [`accounts.yaml:${pos(duplicate, 'name', 2)} Map keys must be unique`]);
    });

    test('a missing accounts file is named (absolute path)', () => {
        const { configFile, accountsFile } = setup({});
        const problems = problemsOf(configFile);
        assert.deepEqual(problems, [`${accountsFile}: cannot read file (no such file)`]);
    });

    test('a missing mailmule.yaml is named', () => {
        const dir = tempDir('mailmule-config-');
        dirs.push(dir);
        const problems = problemsOf(path.join(dir, 'nope.yaml'));
        assert.deepEqual(problems, [`${path.join(dir, 'nope.yaml')}: cannot read file (no such file)`]);
    });

    test('a missing credentials file is named', () => {
        const accounts = ['users:', '  - name: bob', '    accounts:', account({ extra: ['credentialsFile: ./secrets/none.yaml'] })].join('\n');
        const { dir, configFile } = setup({ accounts });
        assert.deepEqual(problemsOf(configFile), [`${path.join(dir, 'secrets/none.yaml')}: cannot read file (no such file)`]);
    });

    test('both credentials and credentialsFile', () => {
        const accounts = ['users:', '  - name: bob', '    accounts:', account({ extra: ['credentials: { password: inline-pw }', 'credentialsFile: ./secrets/bob.yaml'] })].join('\n');
        const { configFile } = setup({ accounts, extra: { 'secrets/bob.yaml': { text: 'password: file-pw\n' } } });
        const problems = problemsOf(configFile);
        assert.deepEqual(problems, [`accounts.yaml:${pos(accounts, 'address:')} users[0].accounts[0]: give credentials or credentialsFile, not both`]);
        assert.ok(!problems.join('\n').includes('inline-pw'));
    });

    test('a credentials file with a schema mistake is reported in that file', () => {
        const accounts = ['users:', '  - name: bob', '    accounts:', account({ extra: ['credentialsFile: creds.yaml'] })].join('\n');
        const creds = ['password: pw-in-file', 'oauth2:', '  clientId: x', '  refreshToken: y', '  tokenUrl: not a url', ''].join('\n');
        const { configFile } = setup({ accounts, extra: { 'creds.yaml': { text: creds } } });
        const problems = problemsOf(configFile);
        assertProblem(problems, 'creds.yaml', pos(creds, 'not a url'), 'oauth2.tokenUrl', 'expected a URL');
        assert.ok(!problems.join('\n').includes('pw-in-file'));
    });

    describe('uplink.mode: relay needs uplink.relay (docs/relay.md)', () => {
        // Shaped as `mailmule relay pair` prints them; the values only have to pass the schema.
        const KEY = `"${'A'.repeat(43)}="`;
        const SEAL_KEY = `"${'B'.repeat(43)}="`;
        const pairing = ['  relay:', '    url: https://relay.example.org:8443', '    id: village-1', `    key: ${KEY}`, `    sealKey: ${SEAL_KEY}`];

        test('mode: relay without any uplink.relay points at the uplink section', () => {
            const gateway = GATEWAY + ['uplink:', '  mode: relay', '  hookTimeout: 60', ''].join('\n');
            const { configFile } = setup({ gateway, accounts: 'users: []\n' });
            // uplink.relay is absent, so the position is that of the map it belongs in (its first key).
            assert.deepEqual(problemsOf(configFile), [`mailmule.yaml:${pos(gateway, 'mode: relay')} uplink.relay: uplink.mode relay needs uplink.relay (url, id, key, sealKey)`]);
        });

        test('mode: relay with an empty `relay:` points at its empty value', () => {
            const gateway = GATEWAY + ['uplink:', '  mode: relay', '  relay:', ''].join('\n');
            const { configFile } = setup({ gateway, accounts: 'users: []\n' });
            // The empty value (null) sits just after the colon.
            const [line, col] = pos(gateway, '  relay:').split(':').map(Number);
            assert.deepEqual(problemsOf(configFile), [`mailmule.yaml:${line}:${col + '  relay:'.length} uplink.relay: uplink.mode relay needs uplink.relay (url, id, key, sealKey)`]);
        });

        test('a pairing without its sealKey names uplink.relay.sealKey', () => {
            const gateway = GATEWAY + ['uplink:', '  mode: relay', ...pairing.slice(0, -1), ''].join('\n');
            const { configFile } = setup({ gateway, accounts: 'users: []\n' });
            assertProblem(problemsOf(configFile), 'mailmule.yaml', pos(gateway, 'url:'), 'uplink.relay.sealKey', /missing/);
        });

        test('mode: relay with a whole pairing loads; mode: direct needs none', () => {
            const { configFile } = setup({ gateway: GATEWAY + ['uplink:', '  mode: relay', ...pairing, ''].join('\n'), accounts: 'users: []\n' });
            const { uplink } = loadConfig(configFile).gateway;
            assert.equal(uplink.mode, 'relay');
            assert.deepEqual(uplink.relay, { url: 'https://relay.example.org:8443', id: 'village-1', key: `${'A'.repeat(43)}=`, sealKey: `${'B'.repeat(43)}=`, fingerprint: null, slimHeaders: null });
            const direct = setup({ gateway: GATEWAY + ['uplink:', '  mode: direct', ''].join('\n'), accounts: 'users: []\n' });
            assert.equal(loadConfig(direct.configFile).gateway.uplink.relay, null);
        });

        test('header slimming is off unless asked for; asked for, it keeps 2 Received lines unless told, and at least 1', () => {
            const slim = (line: string) => setup({ gateway: GATEWAY + ['uplink:', '  mode: relay', ...pairing, `    ${line}`, ''].join('\n'), accounts: 'users: []\n' });
            assert.deepEqual(loadConfig(slim('slimHeaders: {}').configFile).gateway.uplink.relay?.slimHeaders, { keepReceived: 2 });
            assert.deepEqual(loadConfig(slim('slimHeaders: { keepReceived: 4 }').configFile).gateway.uplink.relay?.slimHeaders, { keepReceived: 4 });
            const none = slim('slimHeaders: { keepReceived: 0 }');
            assertProblem(problemsOf(none.configFile), 'mailmule.yaml', pos(fs.readFileSync(none.configFile, 'utf8'), '0 }'), 'uplink.relay.slimHeaders.keepReceived', /at least 1/);
        });
    });

    test('several problems are all reported at once', () => {
        const accounts = ['users:', '  - name: bob', '    accounts:', account({ imapPort: '"abc"', extra: ['since: soon'] }).trimEnd(), '  - name: carol', '    colour: blue', ''].join('\n');
        const { configFile } = setup({ accounts });
        assert.deepEqual(
            problemsOf(configFile).sort(),
            [
                `accounts.yaml:${pos(accounts, '"abc"')} users[0].accounts[0].imap.port: expected a number`,
                `accounts.yaml:${pos(accounts, 'soon')} users[0].accounts[0].since: expected a duration such as 30d, 12h, 15m or 45s`,
                `accounts.yaml:${pos(accounts, 'colour')} users[1].colour: unknown key`
            ].sort()
        );
    });
});

describe('files holding upstream secrets must be mode 0600', () => {
    const withFile = ['users:', '  - name: bob', '    accounts:', account({ extra: ['credentialsFile: ./secrets/bob.yaml'] })].join('\n');

    for (const mode of [0o640, 0o604, 0o644, 0o660]) {
        test(`a credentials file with mode ${mode.toString(8)} is refused, naming the file and the chmod to run`, () => {
            const { dir, configFile } = setup({ accounts: withFile, extra: { 'secrets/bob.yaml': { text: 'password: file-secret-pw\n', mode } } });
            const file = path.join(dir, 'secrets/bob.yaml');
            const problems = problemsOf(configFile);
            assert.equal(problems.length, 1, problems.join('\n'));
            assert.ok(problems[0].startsWith(`${file}: `), problems[0]);
            assert.ok(problems[0].includes(`chmod 600 ${file}`), problems[0]);
            assert.ok(problems[0].includes(`mode ${mode.toString(8)}`), problems[0]);
            assert.ok(!problems[0].includes('file-secret-pw'));
        });
    }

    test('a credentials file with mode 0600 (or 0400) passes', () => {
        for (const mode of [0o600, 0o400]) {
            const { configFile } = setup({ accounts: withFile, extra: { 'secrets/bob.yaml': { text: 'password: file-secret-pw\n', mode } } });
            const config = loadConfig(configFile);
            assert.equal(config.users[0].accounts[0].credentials?.password, 'file-secret-pw');
        }
    });

    const inline = ['users:', '  - name: bob', '    accounts:', account({ extra: ['credentials: { password: inline-secret-pw }'] })].join('\n');

    test('inline credentials in an accounts.yaml that is 0644 are refused the same way', () => {
        const { accountsFile, configFile } = setup({ accounts: inline, accountsMode: 0o644 });
        const problems = problemsOf(configFile);
        assert.equal(problems.length, 1, problems.join('\n'));
        assert.ok(problems[0].startsWith(`${accountsFile}: `), problems[0]);
        assert.ok(problems[0].includes(`chmod 600 ${accountsFile}`), problems[0]);
        assert.ok(!problems[0].includes('inline-secret-pw'));
    });

    test('inline credentials in an accounts.yaml that is 0600 pass', () => {
        const { accountsFile, configFile } = setup({ accounts: inline, accountsMode: 0o600 });
        const config = loadConfig(configFile);
        assert.equal(config.users[0].accounts[0].credentials?.password, 'inline-secret-pw');
        assert.equal(config.users[0].accounts[0].credentialsSource, accountsFile);
    });

    test('an accounts.yaml without inline secrets may be 0644', () => {
        const { configFile } = setup({ accounts: withFile, accountsMode: 0o644, extra: { 'secrets/bob.yaml': { text: 'password: file-secret-pw\n' } } });
        assert.equal(loadConfig(configFile).users.length, 1);
    });
});

describe('a broken credentials line does not repeat the secret in the error', () => {
    // Unquoted passwords that start with a YAML indicator make the YAML itself invalid; yaml's
    // messages would quote the rest of the line (the secret).
    const cases: Record<string, string> = {
        'stray ]': 'password: ]Sesame-Open-42',
        'block scalar header': 'password: |Sesame-Open-42',
        'alias': 'password: *Sesame-Open-42',
        'flow': 'credentials: { password: Sesame-Open-42 } }'
    };
    for (const [name, line] of Object.entries(cases)) {
        test(name, () => {
            const inCredentialsFile = line.startsWith('password:');
            const accounts = ['users:', '  - name: bob', '    accounts:', account({ extra: [inCredentialsFile ? 'credentialsFile: creds.yaml' : line] })].join('\n');
            const creds = `${line}\n`;
            const { configFile } = setup({ accounts, extra: inCredentialsFile ? { 'creds.yaml': { text: creds } } : {} });
            const problems = problemsOf(configFile);
            const where = inCredentialsFile ? 'creds.yaml:1:' : `accounts.yaml:${pos(accounts, line).split(':')[0]}:`;
            assert.ok(
                problems.some(p => p.startsWith(where)),
                problems.join('\n')
            );
            for (const problem of problems) {
                assert.ok(!/Sesame|Open-42/.test(problem), `the secret leaked into: ${problem}`);
            }
        });
    }
});
