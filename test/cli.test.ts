/**
 * The `mailmule` command end to end, as a child process: `check`, `passwd`, `users`, `import`,
 * and the daemon's lifecycle under `start` (SIGHUP reloads, SIGTERM stops, config errors exit 2),
 * with secrets kept out of its output.
 *
 * A child's listeners cannot be discovered from outside, so ports are picked at run time
 * (test/support/ports.ts freePorts) and written into its mailmule.yaml. The child processes are
 * test/support/daemon-process.ts's (runMailmule, DaemonProcess).
 *
 * Over 500 lines: independent tests, one per command or lifecycle step, sharing the config-file
 * helpers at the top; a new command's tests belong in a file of their own.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { ImapFlow } from 'imapflow';
import { tempDir } from './support/gateway';
import { DaemonProcess, killAllDaemons, runMailmule } from './support/daemon-process';
import { freePorts } from './support/ports';
import { RawSmtpConnection } from './support/raw-smtp';
import { RawImapConnection } from './support/raw-imap-connection';
import { messageFiles, zeroTablePages } from './support/store';
import { describeRun } from './support/run-process';

const ROOT = path.resolve(__dirname, '..', '..');
const TEST_TIMEOUT = 20_000;

const dirs: string[] = [];
after(async () => {
    await killAllDaemons();
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

function newDir(): string {
    const dir = tempDir('mailmule-cli-');
    dirs.push(dir);
    return dir;
}

/** 1-based `line:col` of the nth occurrence of `needle` in `text`. */
function pos(text: string, needle: string, nth = 1): string {
    let index = -1;
    for (let i = 0; i < nth; i++) {
        index = text.indexOf(needle, index + 1);
        assert.ok(index >= 0, `test bug: ${JSON.stringify(needle)} not in the YAML`);
    }
    const before = text.slice(0, index);
    return `${before.split('\n').length}:${index - before.lastIndexOf('\n')}`;
}

// ------------------------------------------------------------------ config files

interface GatewayYaml {
    imapPort?: number;
    smtpPort?: number;
    level?: string;
    /** Raw extra lines appended to mailmule.yaml. */
    extra?: string;
}

function gatewayYaml(options: GatewayYaml = {}): string {
    return [
        'dataDir: ./data',
        'localDomain: mailmule.lan',
        'hostname: mailmule.test',
        'accounts: ./accounts.yaml',
        'log:',
        `  level: ${options.level ?? 'info'}`,
        'imap:',
        '  listeners:',
        '    - host: 127.0.0.1',
        `      port: ${options.imapPort ?? 0}`,
        '      security: starttls',
        '      allowPlaintextAuth: true',
        'smtp:',
        '  listeners:',
        '    - host: 127.0.0.1',
        `      port: ${options.smtpPort ?? 0}`,
        '      security: starttls',
        '      allowPlaintextAuth: true',
        options.extra ?? ''
    ].join('\n');
}

/** Block-style upstream account lines for `accounts:` (six-space indent). */
function accountYaml(address: string, extra: string[] = [], imapPort = '993'): string {
    return [
        `      - address: ${address}`,
        `        imap: { host: imap.example.com, port: ${imapPort}, tls: implicit }`,
        '        smtp: { host: smtp.example.com, port: 465, tls: implicit }',
        ...extra.map(line => `        ${line}`)
    ].join('\n');
}

function usersYaml(...names: string[]): string {
    return 'users:\n' + names.map(name => `  - name: ${name}\n`).join('');
}

interface Setup {
    dir: string;
    configFile: string;
    accountsFile: string;
}

function writeSetup(dir: string, gateway: string, accounts: string | null, accountsMode = 0o600, extra: Record<string, { text: string; mode?: number }> = {}): Setup {
    const configFile = path.join(dir, 'mailmule.yaml');
    const accountsFile = path.join(dir, 'accounts.yaml');
    fs.writeFileSync(configFile, gateway);
    if (accounts !== null) writeAccounts(accountsFile, accounts, accountsMode);
    for (const [name, { text, mode }] of Object.entries(extra)) {
        const file = path.join(dir, name);
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, text);
        fs.chmodSync(file, mode ?? 0o600);
    }
    return { dir, configFile, accountsFile };
}

/** Replaces accounts.yaml atomically (a reload must never see half a file). */
function writeAccounts(file: string, text: string, mode = 0o600): void {
    const tmp = `${file}.tmp-${process.pid}`;
    fs.writeFileSync(tmp, text);
    fs.chmodSync(tmp, mode);
    fs.renameSync(tmp, file);
}

// ------------------------------------------------------------------ IMAP / SMTP clients

function imapClient(port: number, user: string, pass: string): ImapFlow {
    const client = new ImapFlow({
        host: '127.0.0.1',
        port,
        secure: false,
        auth: { user, pass },
        logger: false,
        connectionTimeout: 5000,
        greetingTimeout: 5000,
        socketTimeout: 15_000,
        tls: { rejectUnauthorized: false }
    });
    client.on('error', () => {});
    return client;
}

/** True when LOGIN succeeds, false when the server refuses the credentials; throws otherwise. */
async function canLogin(port: number, user: string, pass: string): Promise<boolean> {
    const client = imapClient(port, user, pass);
    try {
        await client.connect();
    } catch (err) {
        client.close();
        if ((err as { authenticationFailed?: boolean }).authenticationFailed) return false;
        throw err;
    }
    await client.logout();
    return true;
}

// ================================================================== mailmule check

describe('mailmule check', { concurrency: 4 }, () => {
    test('a valid config exits 0 and prints users, accounts and listeners', { timeout: TEST_TIMEOUT }, async () => {
        const dir = newDir();
        const gateway = gatewayYaml({ imapPort: 1143, smtpPort: 1587 });
        const accounts = [usersYaml('alice', 'bob').trimEnd(), '    accounts:', accountYaml('bob@example.com', ['credentialsFile: ./bob.yaml']), ''].join('\n');
        const { configFile, accountsFile } = writeSetup(dir, gateway, accounts, 0o600, { 'bob.yaml': { text: 'password: upstream-pw-xyz\n' } });
        const result = await runMailmule(['check', '-c', configFile]);
        assert.equal(result.code, 0, result.stderr);
        assert.equal(result.stderr, '');
        const out = result.stdout;
        assert.match(out, new RegExp(`^config: +${escape(configFile)}$`, 'm'));
        assert.match(out, new RegExp(`^accounts: +${escape(accountsFile)}$`, 'm'));
        assert.match(out, /^users: +2 \(alice, bob\)$/m);
        assert.match(out, /^upstream: +1 account$/m);
        assert.match(out, /^imap: +127\.0\.0\.1:1143 starttls \(plaintext auth allowed\)$/m);
        assert.match(out, /^smtp: +127\.0\.0\.1:1587 starttls \(plaintext auth allowed\)$/m);
        assert.match(out, /^ok$/m);
        assert.ok(!out.includes('upstream-pw-xyz'));
        assert.ok(!fs.existsSync(path.join(dir, 'data')), 'check must not create the data directory');
    });

    test('the shipped config/mailmule.yaml passes (the embedded default stays valid)', { timeout: TEST_TIMEOUT }, async () => {
        const relative = await runMailmule(['check', '-c', 'config/mailmule.yaml'], { cwd: ROOT });
        assert.equal(relative.code, 0, relative.stderr);
        assert.match(relative.stdout, /^users: +1 \(demo\)$/m);
        assert.match(relative.stdout, /^imap: +0\.0\.0\.0:1143 starttls, 0\.0\.0\.0:1993 tls$/m);
        assert.match(relative.stdout, /^ok$/m);
        const absolute = await runMailmule(['check', '-c', path.join(ROOT, 'config', 'mailmule.yaml')]);
        assert.equal(absolute.code, 0, absolute.stderr);
        assert.equal(absolute.stdout, relative.stdout);
    });

    test('without -c it reads ./config/mailmule.yaml', { timeout: TEST_TIMEOUT, skip: fs.existsSync('/etc/mailmule/mailmule.yaml') ? '/etc/mailmule/mailmule.yaml exists here' : false }, async () => {
        const result = await runMailmule(['check'], { cwd: ROOT });
        assert.equal(result.code, 0, result.stderr);
        assert.ok(result.stdout.includes(`config:    ${path.join(ROOT, 'config', 'mailmule.yaml')}`), result.stdout);
    });

    // Each kind of mistake: exit 2, nothing on stdout, the problem on stderr as `mailmule: file:line:col key.path: message`.
    const broken: { name: string; gateway?: string; accounts: string | null; accountsMode?: number; extra?: Record<string, { text: string; mode?: number }>; expect: (s: Setup) => string[] }[] = [];
    {
        const accounts = [usersYaml('bob').trimEnd(), '    accounts:', accountYaml('bob@example.com', [], '"abc"'), ''].join('\n');
        broken.push({ name: 'wrong type (port: "abc")', accounts, expect: () => [`accounts.yaml:${pos(accounts, '"abc"')} users[0].accounts[0].imap.port: expected a number`] });
    }
    {
        const accounts = [usersYaml('bob').trimEnd(), '    accounts:', accountYaml('x').replace('address: x', 'displayName: Bob'), ''].join('\n');
        broken.push({
            name: 'missing required key (account without address)',
            accounts,
            expect: () => [`accounts.yaml:${pos(accounts, 'displayName')} users[0].accounts[0].address: required string is missing`]
        });
    }
    {
        const accounts = 'users:\n  - name: alice\n    acounts: []\n';
        broken.push({ name: 'misspelt key', accounts, expect: () => [`accounts.yaml:${pos(accounts, 'acounts')} users[0].acounts: unknown key`] });
    }
    {
        const gateway = gatewayYaml().replace('security: starttls', 'security: ssl');
        broken.push({
            name: 'bad enum (security: ssl)',
            gateway,
            accounts: usersYaml('alice'),
            expect: () => [`mailmule.yaml:${pos(gateway, 'ssl')} imap.listeners[0].security: expected one of "starttls", "tls"`]
        });
    }
    {
        const gateway = gatewayYaml() + '\n  maxMessageSize: 25 parsecs\n';
        broken.push({
            name: 'bad size',
            gateway,
            accounts: usersYaml('alice'),
            expect: () => [`mailmule.yaml:${pos(gateway, '25 parsecs')} smtp.maxMessageSize: expected a size such as 25MB, 512KB or a number of bytes`]
        });
    }
    {
        const gateway = gatewayYaml({ extra: 'queue:\n  maxAge: 10 fortnights\n' });
        broken.push({
            name: 'bad duration',
            gateway,
            accounts: usersYaml('alice'),
            expect: () => [`mailmule.yaml:${pos(gateway, '10 fortnights')} queue.maxAge: expected a duration such as 30d, 12h, 15m or 45s`]
        });
    }
    {
        const accounts = [usersYaml('bob').trimEnd(), '    accounts:', accountYaml('bob-at-example.com'), ''].join('\n');
        broken.push({ name: 'invalid email', accounts, expect: () => [`accounts.yaml:${pos(accounts, 'bob-at-example.com')} users[0].accounts[0].address: expected an email address`] });
    }
    {
        const accounts = usersYaml('alice', 'bob', 'alice');
        broken.push({ name: 'duplicate user names', accounts, expect: () => [`accounts.yaml:${pos(accounts, 'alice', 2)} users[2].name: duplicate user name "alice"`] });
    }
    {
        const accounts = ['users:', '  - name: bob', '    accounts:', accountYaml('same@example.com'), '  - name: carol', '    accounts:', accountYaml('same@example.com'), ''].join('\n');
        broken.push({
            name: 'an address owned by two users',
            accounts,
            expect: () => [`accounts.yaml:${pos(accounts, 'same@example.com', 2)} users[1].accounts[0].address: address same@example.com already belongs to user "bob"`]
        });
    }
    {
        const accounts = 'users:\n  - name: alice\n    accounts: ]\n';
        broken.push({ name: 'YAML syntax error', accounts, expect: () => [`accounts.yaml:${pos(accounts, ']')} Unexpected flow-seq-end token in YAML stream`] });
    }
    broken.push({ name: 'missing accounts file', accounts: null, expect: s => [`${s.accountsFile}: cannot read file (no such file)`] });
    {
        const accounts = [usersYaml('bob').trimEnd(), '    accounts:', accountYaml('bob@example.com', ['credentials: { password: inline-pw-1 }', 'credentialsFile: ./bob.yaml']), ''].join('\n');
        broken.push({
            name: 'both credentials and credentialsFile',
            accounts,
            extra: { 'bob.yaml': { text: 'password: file-pw-1\n' } },
            expect: () => [`accounts.yaml:${pos(accounts, 'address:')} users[0].accounts[0]: give credentials or credentialsFile, not both`]
        });
    }
    {
        // Loads (both keys are optional), but could never log in: check finds it, not the first night run.
        const accounts = [
            usersYaml('bob', 'carol').trimEnd(),
            '    accounts:',
            accountYaml('carol@example.com', ['credentials: { password: inline-pw-4 }']),
            accountYaml('carol2@example.com'),
            ''
        ].join('\n');
        broken.push({
            name: 'an upstream account without credentials points at the account',
            accounts,
            expect: () => [`accounts.yaml:${pos(accounts, 'address: carol2')} users[1].accounts[1]: no credentials; give credentials (password or oauth2) or credentialsFile`]
        });
    }
    {
        const accounts = [usersYaml('bob').trimEnd(), '    accounts:', accountYaml('bob@example.com', ['credentialsFile: ./bob.yaml']), ''].join('\n');
        broken.push({
            name: 'a credentials file with mode 0640',
            accounts,
            extra: { 'bob.yaml': { text: 'password: file-pw-2\n', mode: 0o640 } },
            expect: s => {
                const file = path.join(s.dir, 'bob.yaml');
                return [`${file}: holds upstream credentials but is readable by group or others (mode 640); run: chmod 600 ${file}`];
            }
        });
    }
    {
        const accounts = [usersYaml('bob').trimEnd(), '    accounts:', accountYaml('bob@example.com', ['credentials: { password: inline-pw-2 }']), ''].join('\n');
        broken.push({
            name: 'inline credentials in an accounts.yaml with mode 0644',
            accounts,
            accountsMode: 0o644,
            expect: s => [`${s.accountsFile}: holds upstream credentials but is readable by group or others (mode 644); run: chmod 600 ${s.accountsFile}`]
        });
    }
    for (const item of broken) {
        test(`exit 2 and the problem on stderr: ${item.name}`, { timeout: TEST_TIMEOUT }, async () => {
            const setup = writeSetup(newDir(), item.gateway ?? gatewayYaml(), item.accounts, item.accountsMode ?? 0o600, item.extra);
            const result = await runMailmule(['check', '-c', setup.configFile]);
            assert.equal(result.code, 2, `exit code; stderr: ${result.stderr}`);
            assert.equal(result.stdout, '');
            assert.deepEqual(
                result.stderr.split('\n').filter(Boolean),
                item.expect(setup).map(problem => `mailmule: ${problem}`)
            );
            assert.ok(!/inline-pw|file-pw/.test(result.stderr), 'no secret on stderr');
        });
    }

    test('0600 credentials (inline and in a file) pass', { timeout: TEST_TIMEOUT }, async () => {
        const accounts = [
            'users:',
            '  - name: bob',
            '    accounts:',
            accountYaml('bob@example.com', ['credentials: { password: inline-pw-3 }']),
            '  - name: carol',
            '    accounts:',
            accountYaml('carol@example.com', ['credentialsFile: ./carol.yaml']),
            ''
        ].join('\n');
        const setup = writeSetup(newDir(), gatewayYaml(), accounts, 0o600, { 'carol.yaml': { text: 'password: file-pw-3\n', mode: 0o600 } });
        const result = await runMailmule(['check', '-c', setup.configFile]);
        assert.equal(result.code, 0, result.stderr);
        assert.match(result.stdout, /^upstream: +2 accounts$/m);
    });

    test('usage errors exit 3', { timeout: TEST_TIMEOUT }, async () => {
        const results = await Promise.all([runMailmule(['frobnicate']), runMailmule(['check', '--bogus']), runMailmule(['passwd']), runMailmule(['import', 'alice'])]);
        for (const result of results) assert.equal(result.code, 3, result.stderr);
    });
});

function escape(text: string): string {
    return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// ================================================================== passwd, users, import against a running gateway

describe('passwd, users and import with a running gateway', () => {
    let setup: Setup;
    let daemon: DaemonProcess;
    let imapPort: number;
    const maildirTotal = { messages: 0, bytes: 0 };

    before(async () => {
        const dir = newDir();
        const [imap, smtp] = await freePorts(2);
        imapPort = imap;
        const accounts = ['users:', '  - name: alice', '  - name: bob', '    accounts:', accountYaml('bob@example.com'), '  - name: carol', ''].join('\n');
        setup = writeSetup(dir, gatewayYaml({ imapPort: imap, smtpPort: smtp }), accounts);
        daemon = DaemonProcess.spawn(setup.configFile, { cwd: dir });
        await daemon.waitForStart();
    });
    after(async () => {
        await daemon?.stop();
    });

    test('passwd reads the password from stdin when it is not a TTY; the user can then log in over IMAP', { timeout: TEST_TIMEOUT }, async () => {
        const result = await runMailmule(['passwd', 'alice', '-c', setup.configFile], { input: 'Alice-LAN-pw-1\n' });
        assert.equal(result.code, 0, result.stderr);
        assert.equal(result.stdout.trim(), 'password set for alice');
        assert.ok(!(result.stdout + result.stderr).includes('Alice-LAN-pw-1'), 'the password is not echoed');
        assert.equal(await canLogin(imapPort, 'alice', 'Alice-LAN-pw-1'), true);
        assert.equal(await canLogin(imapPort, 'alice@mailmule.lan', 'Alice-LAN-pw-1'), true);
        assert.equal(await canLogin(imapPort, 'alice', 'not-the-password'), false);
    });

    test('passwd again replaces the password (the old one stops working)', { timeout: TEST_TIMEOUT }, async () => {
        const result = await runMailmule(['passwd', 'alice', '-c', setup.configFile], { input: 'Alice-LAN-pw-2\r\n' });
        assert.equal(result.code, 0, result.stderr);
        assert.equal(await canLogin(imapPort, 'alice', 'Alice-LAN-pw-2'), true);
        assert.equal(await canLogin(imapPort, 'alice', 'Alice-LAN-pw-1'), false);
    });

    test('passwd of an unknown user exits 3; a too short password exits 3', { timeout: TEST_TIMEOUT }, async () => {
        const [unknown, short] = await Promise.all([
            runMailmule(['passwd', 'nobody', '-c', setup.configFile], { input: 'Whatever-pw-9\n' }),
            runMailmule(['passwd', 'carol', '-c', setup.configFile], { input: 'abc\n' })
        ]);
        assert.equal(unknown.code, 3, unknown.stderr);
        assert.match(unknown.stderr, /no user "nobody"/);
        assert.equal(short.code, 3, short.stderr);
        assert.match(short.stderr, /at least 4 characters/);
        assert.equal(await canLogin(imapPort, 'carol', 'abc'), false);
    });

    test('import USER MAILDIR brings in a Maildir with its .Sent subfolder and flags; IMAP shows them', { timeout: TEST_TIMEOUT }, async () => {
        const maildir = path.join(newDir(), 'Maildir');
        const day = (n: number) => new Date(Date.UTC(2026, 0, n, 12, 0, 0));
        const messages: { folder: string; sub: 'cur' | 'new'; name: string; subject: string; date: Date; flags: string[] }[] = [
            { folder: '', sub: 'cur', name: '1767268800.M1P100.pi:2,FS', subject: 'Seen and flagged', date: day(1), flags: ['\\Flagged', '\\Seen'] },
            { folder: '', sub: 'cur', name: '1767355200.M2P100.pi:2,RS', subject: 'Answered', date: day(2), flags: ['\\Answered', '\\Seen'] },
            { folder: '', sub: 'new', name: '1767441600.M3P100.pi', subject: 'Brand new', date: day(3), flags: [] },
            { folder: '.Sent', sub: 'cur', name: '1767528000.M4P100.pi:2,S', subject: 'My sent mail', date: day(4), flags: ['\\Seen'] },
            { folder: '.Sent', sub: 'cur', name: '1767614400.M5P100.pi:2,DS', subject: 'Sent draft-ish', date: day(5), flags: ['\\Draft', '\\Seen'] }
        ];
        const sources = new Map<string, string>();
        for (const folder of ['', '.Sent']) {
            for (const sub of ['cur', 'new', 'tmp']) fs.mkdirSync(path.join(maildir, folder, sub), { recursive: true });
        }
        // Dovecot's own files must not be taken for mail.
        fs.writeFileSync(path.join(maildir, 'dovecot-uidlist'), '3 V1 N4\n');
        fs.writeFileSync(path.join(maildir, 'tmp', '1767700000.M9P1.pi'), 'From: half@written\r\n');
        for (const m of messages) {
            const file = path.join(maildir, m.folder, m.sub, m.name);
            const crlf = [
                'From: Carol <carol@example.org>',
                'To: bob@example.com',
                `Subject: ${m.subject}`,
                `Date: ${m.date.toUTCString().replace('GMT', '+0000')}`,
                `Message-ID: <${m.name.split(':')[0]}@example.org>`,
                '',
                `Body of ${m.subject}.`,
                ''
            ].join('\r\n');
            // Dovecot and mbsync write bare LF; IMAP must still serve CRLF. Half the files each way.
            fs.writeFileSync(file, maildirTotal.messages % 2 ? crlf : crlf.replace(/\r\n/g, '\n'));
            fs.utimesSync(file, m.date, m.date);
            sources.set(m.subject, crlf);
            maildirTotal.messages++;
            maildirTotal.bytes += Buffer.byteLength(crlf);
        }

        const result = await runMailmule(['import', 'bob', maildir, '-c', setup.configFile]);
        assert.equal(result.code, 0, result.stderr);
        assert.match(result.stdout, /^INBOX: 3 messages$/m);
        assert.match(result.stdout, /^Sent: 2 messages$/m);
        assert.match(result.stdout, /^imported 5 messages for bob$/m);

        const pw = await runMailmule(['passwd', 'bob', '-c', setup.configFile], { input: 'Bob-LAN-pw-1\n' });
        assert.equal(pw.code, 0, pw.stderr);
        const client = imapClient(imapPort, 'bob', 'Bob-LAN-pw-1');
        await client.connect();
        try {
            for (const [folder, mailbox] of [
                ['', 'INBOX'],
                ['.Sent', 'Sent']
            ] as const) {
                const lock = await client.getMailboxLock(mailbox);
                try {
                    const got = [];
                    for await (const msg of client.fetch('1:*', { envelope: true, flags: true, internalDate: true, size: true, source: true })) {
                        got.push({
                            subject: msg.envelope?.subject,
                            // \Recent is this session's (the first to see the imported mail), not a stored flag.
                            flags: [...(msg.flags ?? [])].filter(flag => flag !== '\\Recent').sort(),
                            date: new Date(msg.internalDate as Date | string).getTime(),
                            source: msg.source?.toString('binary'),
                            size: msg.size
                        });
                    }
                    const want = messages
                        .filter(m => m.folder === folder)
                        .map(m => ({
                            subject: m.subject,
                            flags: [...m.flags].sort(),
                            date: m.date.getTime(),
                            source: sources.get(m.subject),
                            size: Buffer.byteLength(sources.get(m.subject)!)
                        }));
                    assert.deepEqual(got, want, `${mailbox} as seen over IMAP`);
                } finally {
                    lock.release();
                }
            }
        } finally {
            await client.logout();
        }
    });

    test('import refuses an unknown user, a missing directory and a directory that is not a Maildir (exit 3)', { timeout: TEST_TIMEOUT }, async () => {
        const notMaildir = newDir();
        const [unknown, missing, notOne] = await Promise.all([
            runMailmule(['import', 'nobody', notMaildir, '-c', setup.configFile]),
            runMailmule(['import', 'bob', path.join(notMaildir, 'nope'), '-c', setup.configFile]),
            runMailmule(['import', 'bob', notMaildir, '-c', setup.configFile])
        ]);
        assert.equal(unknown.code, 3, unknown.stderr);
        assert.match(unknown.stderr, /no user "nobody"/);
        assert.equal(missing.code, 3, missing.stderr);
        assert.match(missing.stderr, /no such directory/);
        assert.equal(notOne.code, 3, notOne.stderr);
        assert.match(notOne.stderr, /not a Maildir/);
    });

    test('users and users --json list users with mailbox and message counts and bytes', { timeout: TEST_TIMEOUT }, async () => {
        assert.ok(maildirTotal.messages > 0, 'runs after the import test');
        const [json, text] = await Promise.all([runMailmule(['users', '--json', '-c', setup.configFile]), runMailmule(['users', '-c', setup.configFile])]);
        assert.equal(json.code, 0, json.stderr);
        assert.equal(text.code, 0, text.stderr);
        const rows = JSON.parse(json.stdout) as { name: string; address: string; accounts: string[]; password: boolean; mailboxes: number; messages: number; bytes: number }[];
        assert.deepEqual(
            rows.map(r => r.name),
            ['alice', 'bob', 'carol']
        );
        const [alice, bob, carol] = rows;

        // Mailbox counts as the IMAP client sees them.
        const client = imapClient(imapPort, 'bob', 'Bob-LAN-pw-1');
        await client.connect();
        const bobMailboxes = (await client.list()).filter(box => !box.flags.has('\\Noselect')).length;
        await client.logout();

        // The import only used INBOX and Sent, which every user has: same folder count as alice.
        assert.deepEqual(alice, { name: 'alice', address: 'alice@mailmule.lan', accounts: [], password: true, mailboxes: bobMailboxes, messages: 0, bytes: 0 });
        assert.deepEqual(bob, {
            name: 'bob',
            address: 'bob@mailmule.lan',
            accounts: ['bob@example.com'],
            password: true,
            mailboxes: bobMailboxes,
            messages: maildirTotal.messages,
            bytes: maildirTotal.bytes
        });
        assert.equal(carol.password, false);
        assert.equal(carol.messages, 0);

        const lines = text.stdout.trim().split('\n');
        assert.equal(lines.length, 3, text.stdout);
        const bobLine = lines.find(line => line.startsWith('bob '));
        assert.ok(bobLine, text.stdout);
        assert.match(bobLine, /password set/);
        assert.match(bobLine, new RegExp(`\\b${bobMailboxes} mailboxes\\b`));
        assert.match(bobLine, new RegExp(`\\b${maildirTotal.messages} messages\\b`));
        assert.match(bobLine, new RegExp(`\\b${maildirTotal.bytes} bytes\\b`));
        assert.match(bobLine, /bob@mailmule\.lan, bob@example\.com/);
        assert.match(
            lines.find(line => line.startsWith('carol '))!,
            /NO PASSWORD/
        );
    });
});

// ================================================================== exit codes cron and scripts act on

describe('exit codes', { concurrency: true }, () => {
    /** A data directory holding alice with a password and two imported messages. */
    /** Larger than what is kept inline in the database (src/store/inline-messages.ts): the messages are files on disk. */
    const LARGE_BODY = 'a line of text long enough to count\r\n'.repeat(2000);

    async function storeWithMail(): Promise<Setup & { dataDir: string; maildir: string }> {
        const dir = newDir();
        const setup = writeSetup(dir, gatewayYaml(), usersYaml('alice'));
        const maildir = path.join(dir, 'Maildir');
        for (const sub of ['cur', 'new', 'tmp']) fs.mkdirSync(path.join(maildir, sub), { recursive: true });
        for (const n of [1, 2]) {
            fs.writeFileSync(
                path.join(maildir, 'cur', `176726880${n}.M${n}P1.pi:2,S`),
                `From: carol@example.org\r\nSubject: kept ${n}\r\nMessage-ID: <kept-${n}@example.org>\r\n\r\nBody ${n}.\r\n${LARGE_BODY}`
            );
        }
        const pw = await runMailmule(['passwd', 'alice', '-c', setup.configFile], { input: 'Alice-pw-exit\n' });
        assert.equal(pw.code, 0, pw.stderr);
        const imported = await runMailmule(['import', 'alice', maildir, '-c', setup.configFile]);
        assert.equal(imported.code, 0, imported.stderr);
        return { ...setup, dataDir: path.join(dir, 'data'), maildir };
    }

    for (const damage of [
        {
            name: 'truncated to half its size',
            apply: (file: string) => fs.truncateSync(file, Math.floor(fs.statSync(file).size / 2 / 4096) * 4096),
            only: null
        },
        {
            // A bad block: every page of the blobs table zeroed. The file's size and header are
            // intact, and `status` and `queue` never read those pages: without quick_check they
            // answered as usual and exited 0 (the other commands are the same code path: openStore).
            name: 'with the pages of one table zeroed',
            apply: (file: string) => assert.ok(zeroTablePages(path.dirname(file), 'blobs') > 0, 'the blobs table has pages'),
            only: ['queue', 'status']
        },
        {
            // SQLite says SQLITE_NOTADB here, not SQLITE_CORRUPT: a few commands show both map to 7.
            name: 'overwritten with bytes that are not a database',
            apply: (file: string) => fs.writeFileSync(file, Buffer.alloc(fs.statSync(file).size, 'not a database. ')),
            only: ['queue', 'status', 'start']
        }
    ]) {
        test(`a store ${damage.name}: every command that opens it exits 7 with the reason on stderr and nothing on stdout`, { timeout: TEST_TIMEOUT * 6 }, async () => {
            const setup = await storeWithMail();
            const files = messageFiles(setup.dataDir).sort();
            assert.equal(files.length, 2, 'the two imported messages are on disk');
            const database = path.join(setup.dataDir, 'mailmule.sqlite');
            assert.ok(!fs.existsSync(`${database}-wal`), 'the last command closed the database cleanly');
            damage.apply(database);
            const damaged = fs.readFileSync(database);
            const commands: { args: string[]; input?: string }[] = [
                { args: ['queue', '--json'] },
                { args: ['queue'] },
                { args: ['queue', 'show', '1'] },
                { args: ['users', '--json'] },
                { args: ['status', '--json'] },
                { args: ['passwd', 'alice'], input: 'Alice-pw-other\n' },
                { args: ['import', 'alice', setup.maildir] },
                { args: ['sync'] },
                { args: ['start'] }
            ];
            // One at a time: opened together, they would each wait out SQLite's busy timeout on the others' locks.
            for (const command of commands.filter(c => !damage.only || damage.only.includes(c.args[0]))) {
                const name = `mailmule ${command.args.join(' ')}`;
                const result = await runMailmule([...command.args, '-c', setup.configFile], { input: command.input, cwd: setup.dir });
                assert.equal(result.code, 7, `${name}: exit code; stderr: ${result.stderr}`);
                // The daemon's log goes to stdout (the journal under systemd): `start` may log its failure there, nothing else.
                const stdout =
                    command.args[0] === 'start'
                        ? result.stdout
                              .split('\n')
                              .filter(line => line && !/"level":60,.*could not start/.test(line))
                              .join('\n')
                        : result.stdout;
                assert.equal(stdout, '', `${name}: nothing on stdout`);
                // SQLite's error met on a read, or quick_check's finding at open.
                assert.match(
                    result.stderr,
                    /^mailmule: (?:.+\nmailmule: the store \(mailmule\.sqlite in the data directory\) is damaged|refusing to open the store in .+: the database is damaged \(quick_check: )/m,
                    `${name}: stderr`
                );
            }
            assert.ok(fs.readFileSync(database).equals(damaged), 'no command wrote to the damaged database');
            assert.deepEqual(messageFiles(setup.dataDir).sort(), files, 'every message file is still there');
        });
    }

    test('sync: 6 when an account fails, 4 when the run is skipped (no link), 5 while another run holds the lock, 0 when no account failed', { timeout: TEST_TIMEOUT * 2 }, async () => {
        const [closedImap, closedSmtp, closedProbe] = await freePorts(3);
        const dir = newDir();
        const account = (address: string) =>
            [
                `      - address: ${address}`,
                `        imap: { host: 127.0.0.1, port: ${closedImap}, tls: none }`,
                `        smtp: { host: 127.0.0.1, port: ${closedSmtp}, tls: none }`,
                '        credentials: { password: upstream-pw-exit }'
            ].join('\n');
        const accounts = ['users:', '  - name: bob', '    accounts:', account('bob@example.com'), account('bob@example.net'), ''].join('\n');
        const setup = writeSetup(dir, gatewayYaml(), accounts);

        // No daemon runs here: `mailmule sync` runs the uplink itself, and both providers refuse the connection.
        const failed = await runMailmule(['sync', '-c', setup.configFile], { cwd: dir });
        assert.equal(failed.code, 6, describeRun('mailmule', failed));
        assert.match(failed.stdout, /^bob@example\.com: sent 0 msg, received 0 msg;.*\n {2}error: receive: /m, describeRun('mailmule', failed));
        assert.match(failed.stdout, /^run \d+: partial \(2 error\(s\)\);/m, describeRun('mailmule', failed));
        // Before it, the uplink's own warnings (JSON log lines) for each failure.
        assert.match(failed.stderr, /\nmailmule: 2 accounts failed: bob@example\.com, bob@example\.net\n$/, describeRun('mailmule', failed));

        // Only the accounts asked for: none matches, so none failed.
        const none = await runMailmule(['sync', '--account', 'nobody@example.org', '-c', setup.configFile], { cwd: dir });
        assert.equal(none.code, 0, describeRun('mailmule', none));
        assert.match(none.stdout, /^run \d+: ok;/m, describeRun('mailmule', none));

        // Another process holds the uplink lock (this test's own pid: alive, and not the CLI's).
        const lock = path.join(dir, 'data', 'uplink.lock');
        fs.writeFileSync(lock, String(process.pid));
        try {
            const busy = await runMailmule(['sync', '-c', setup.configFile], { cwd: dir });
            assert.equal(busy.code, 5, describeRun('mailmule', busy));
            assert.equal(busy.stdout, '');
        } finally {
            fs.rmSync(lock, { force: true });
        }

        fs.writeFileSync(setup.configFile, gatewayYaml({ extra: `uplink:\n  probe: "127.0.0.1:${closedProbe}"\n` }));
        const skipped = await runMailmule(['sync', '-c', setup.configFile], { cwd: dir });
        assert.equal(skipped.code, 4, describeRun('mailmule', skipped));
        assert.match(skipped.stdout, /^run \d+: skipped \(no link: /m, describeRun('mailmule', skipped));
        assert.equal(skipped.stderr, '');
    });
});

// ================================================================== daemon lifecycle

describe('daemon lifecycle as a child process', () => {
    let setup: Setup;
    let daemon: DaemonProcess;
    let imapPort: number;
    let smtpPort: number;

    before(async () => {
        const dir = newDir();
        [imapPort, smtpPort] = await freePorts(2);
        setup = writeSetup(dir, gatewayYaml({ imapPort, smtpPort }), usersYaml('alice'));
        const pw = await runMailmule(['passwd', 'alice', '-c', setup.configFile], { input: 'Alice-pw-lifecycle\n' });
        assert.equal(pw.code, 0, pw.stderr);
        daemon = DaemonProcess.spawn(setup.configFile, { cwd: dir });
    });
    after(async () => {
        await daemon?.stop();
    });

    test('start logs "mailmule started" as a JSON line naming its listeners', { timeout: TEST_TIMEOUT }, async () => {
        const started = await daemon.waitForStart();
        assert.equal(started.level, 30);
        assert.equal(started.config, setup.configFile);
        assert.equal(started.users, 1);
        assert.deepEqual(started.imap, [`127.0.0.1:${imapPort}/starttls`]);
        assert.deepEqual(started.smtp, [`127.0.0.1:${smtpPort}/starttls`]);
    });

    test('IMAP LOGIN works', { timeout: TEST_TIMEOUT }, async () => {
        assert.equal(await canLogin(imapPort, 'alice', 'Alice-pw-lifecycle'), true);
        assert.equal(await canLogin(imapPort, 'alice', 'wrong-password'), false);
    });

    test('SIGHUP with a broken accounts.yaml logs file:line:col and keeps serving the old config', { timeout: TEST_TIMEOUT }, async () => {
        // A YAML syntax error, then a schema error: both are logged and neither is applied.
        const syntax = usersYaml('alice', 'carol') + '    accounts: ]\n';
        const schema = [usersYaml('alice', 'carol').trimEnd(), '    accounts:', accountYaml('carol@example.com', [], '"abc"'), ''].join('\n');
        for (const [text, expected] of [
            [syntax, `accounts.yaml:${pos(syntax, ']')} `],
            [schema, `accounts.yaml:${pos(schema, '"abc"')} users[1].accounts[0].imap.port: expected a number`]
        ]) {
            writeAccounts(setup.accountsFile, text);
            const mark = daemon.stdoutLines.length;
            daemon.signal('SIGHUP');
            const failed = await daemon.waitForLog('a "reload failed" line', record => /reload failed/.test(record.msg), { from: mark });
            assert.equal(failed.level, 50, 'logged as an error');
            const problems = failed.problems as string[];
            assert.ok(Array.isArray(problems) && problems.some(p => p.startsWith(expected)), `problems ${JSON.stringify(problems)} should start with ${expected}`);
            assert.ok(daemon.running, 'the daemon keeps running');
            assert.equal(await canLogin(imapPort, 'alice', 'Alice-pw-lifecycle'), true);
            // carol was only in the broken file: the old config (alice alone) stays in force.
            assert.equal(await canLogin(imapPort, 'carol', 'anything-at-all'), false);
        }
        const users = await runMailmule(['users', '--json', '-c', setup.configFile]);
        assert.equal(users.code, 2, 'the CLI refuses the broken file too');
    });

    test('SIGHUP with a fixed file that adds a user makes that user exist; after passwd they can log in', { timeout: TEST_TIMEOUT }, async () => {
        writeAccounts(setup.accountsFile, usersYaml('alice', 'carol'));
        const mark = daemon.stdoutLines.length;
        daemon.signal('SIGHUP');
        const reloaded = await daemon.waitForLog('"configuration reloaded"', record => /^configuration reloaded/.test(record.msg), { from: mark });
        assert.equal(reloaded.users, 2);
        assert.equal(reloaded.listenersChanged, false);
        assert.ok(!daemon.records(mark).some(record => record.level >= 50), 'no error on a good reload');

        // The reload created carol's store row and folders.
        const listed = await runMailmule(['users', '--json', '-c', setup.configFile]);
        assert.equal(listed.code, 0, listed.stderr);
        const carol = (JSON.parse(listed.stdout) as { name: string; mailboxes: number; password: boolean }[]).find(row => row.name === 'carol');
        assert.ok(carol && carol.mailboxes > 0 && carol.password === false, listed.stdout);

        const pw = await runMailmule(['passwd', 'carol', '-c', setup.configFile], { input: 'Carol-pw-reloaded\n' });
        assert.equal(pw.code, 0, pw.stderr);
        assert.equal(await canLogin(imapPort, 'carol', 'Carol-pw-reloaded'), true);
        assert.equal(await canLogin(imapPort, 'alice', 'Alice-pw-lifecycle'), true);
    });

    test('SIGTERM makes it exit 0 promptly with a "mailmule stopped" line, even with a client connected', { timeout: TEST_TIMEOUT }, async () => {
        const client = imapClient(imapPort, 'alice', 'Alice-pw-lifecycle');
        await client.connect();
        await client.mailboxOpen('INBOX');
        const startedAt = Date.now();
        daemon.signal('SIGTERM');
        const exit = await daemon.exited(8000);
        const elapsed = Date.now() - startedAt;
        client.close();
        assert.deepEqual(exit, { code: 0, signal: null }, daemon.stderr);
        assert.ok(elapsed < 5000, `took ${elapsed} ms`);
        const records = daemon.records();
        const stopping = records.findIndex(record => record.msg === 'stopping' && record.signal === 'SIGTERM');
        const stopped = records.findIndex(record => record.msg === 'mailmule stopped');
        assert.ok(stopping >= 0 && stopped > stopping, daemon.stdout);
    });
});

describe('SIGTERM with an idle SMTP client connected', () => {
    test('still exits 0 promptly', { timeout: TEST_TIMEOUT }, async () => {
        const dir = newDir();
        const [imapPort, smtpPort] = await freePorts(2);
        const setup = writeSetup(dir, gatewayYaml({ imapPort, smtpPort }), usersYaml('alice'));
        const daemon = DaemonProcess.spawn(setup.configFile, { cwd: dir });
        let session: RawSmtpConnection | undefined;
        try {
            await daemon.waitForStart();
            const connected = await RawSmtpConnection.connect(smtpPort);
            session = connected.client;
            assert.equal(connected.greeting.code, 220);
            assert.equal((await session.cmd('EHLO laptop.lan')).code, 250);
            const startedAt = Date.now();
            daemon.signal('SIGTERM');
            const exit = await daemon.exited(4000);
            assert.deepEqual(exit, { code: 0, signal: null });
            assert.ok(Date.now() - startedAt < 4000);
        } finally {
            session?.destroy();
            await daemon.kill9();
        }
    });
});

describe('start failures', { concurrency: true }, () => {
    test('a config error at start exits 2 with the message on stderr', { timeout: TEST_TIMEOUT }, async () => {
        const dir = newDir();
        const [imapPort, smtpPort] = await freePorts(2);
        const accounts = [usersYaml('bob').trimEnd(), '    accounts:', accountYaml('bob@example.com', [], '"abc"'), ''].join('\n');
        const setup = writeSetup(dir, gatewayYaml({ imapPort, smtpPort }), accounts);
        const result = await runMailmule(['start', '-c', setup.configFile], { cwd: dir, timeoutMs: 10_000 });
        assert.equal(result.code, 2, result.stderr);
        assert.ok(result.stderr.includes(`mailmule: accounts.yaml:${pos(accounts, '"abc"')} users[0].accounts[0].imap.port: expected a number\n`), result.stderr);
        assert.ok(!result.stdout.includes('mailmule started'));
        assert.ok(!fs.existsSync(path.join(dir, 'data')), 'nothing was created');
    });

    test('a listening port already in use exits 8 with the reason (does not hang)', { timeout: TEST_TIMEOUT }, async () => {
        const dir = newDir();
        const blocker = net.createServer();
        await new Promise<void>(resolve => blocker.listen(0, '127.0.0.1', () => resolve()));
        try {
            const [smtpPort] = await freePorts(1);
            const setup = writeSetup(dir, gatewayYaml({ imapPort: (blocker.address() as net.AddressInfo).port, smtpPort }), usersYaml('alice'));
            const result = await runMailmule(['start', '-c', setup.configFile], { cwd: dir, timeoutMs: 10_000 });
            assert.equal(result.code, 8, result.stderr);
            assert.match(result.stderr, /^mailmule: cannot start the IMAP starttls listener: port \d+ on 127\.0\.0\.1 is already in use/m);
        } finally {
            blocker.close();
        }
    });
});

// ================================================================== secrets stay out of the logs

describe('secrets never appear in stdout or stderr', () => {
    const UPSTREAM_PASSWORD = 'S3cr3t-upstream';
    const CLIENT_SECRET = 'oauth-client-secret-Q9w';
    const REFRESH_TOKEN = 'refresh-token-R7x-long';
    const LAN_PASSWORD = 'LAN-pass-Zebra-42';
    const WRONG_PASSWORD = 'Wr0ng-LAN-pass-77';
    const MALFORMED = ['Malformed-Secret-1', 'Malformed-Secret-2', 'Malformed-Secret-3', 'Malformed-Secret-4'];
    const SMTP_WRONG = 'Smtp-Wrong-pw-55';
    const plain = (user: string, pass: string) => Buffer.from(`\0${user}\0${pass}`).toString('base64');

    let setup: Setup;
    let daemon: DaemonProcess;
    let imapPort: number;
    let smtpPort: number;

    before(async () => {
        const dir = newDir();
        [imapPort, smtpPort] = await freePorts(2);
        const accounts = [
            'users:',
            '  - name: alice',
            '    accounts:',
            accountYaml('alice@example.com', [`credentials: { password: "${UPSTREAM_PASSWORD}" }`]),
            '  - name: bob',
            '    accounts:',
            accountYaml('bob@example.org', ['credentialsFile: ./secrets/bob-oauth.yaml']),
            ''
        ].join('\n');
        const oauth = ['oauth2:', '  clientId: mailmule-client-id', `  clientSecret: ${CLIENT_SECRET}`, `  refreshToken: ${REFRESH_TOKEN}`, '  tokenUrl: https://oauth2.example.org/token', ''].join(
            '\n'
        );
        // The most talkative level: nothing secret may appear even there.
        setup = writeSetup(dir, gatewayYaml({ imapPort, smtpPort, level: 'trace' }), accounts, 0o600, { 'secrets/bob-oauth.yaml': { text: oauth, mode: 0o600 } });
        const pw = await runMailmule(['passwd', 'alice', '-c', setup.configFile], { input: `${LAN_PASSWORD}\n` });
        assert.equal(pw.code, 0, pw.stderr);
        daemon = DaemonProcess.spawn(setup.configFile, { cwd: dir });
        await daemon.waitForStart();
    });
    after(async () => {
        await daemon?.stop();
    });

    test('a failed and a successful IMAP login', { timeout: TEST_TIMEOUT }, async () => {
        assert.equal(await canLogin(imapPort, 'alice', WRONG_PASSWORD), false);
        assert.equal(await canLogin(imapPort, 'alice', LAN_PASSWORD), true);
        assert.equal(await canLogin(imapPort, 'alice@example.com', LAN_PASSWORD), true);
        await daemon.waitForLog('a "login failed" line', record => record.msg === 'login failed' && record.username === 'alice');
    });

    test('malformed LOGIN / AUTHENTICATE lines carrying a password', { timeout: TEST_TIMEOUT }, async () => {
        const session = await RawImapConnection.connect(imapPort);
        try {
            const commands = [
                `a1 LOGIN alice "${MALFORMED[0]}`, // unterminated quoted string
                `a2 LOGIN alice ${MALFORMED[1]} extra-argument`,
                `a3 LOGIN alice (${MALFORMED[2]})`,
                `a4 AUTHENTICATE PLAIN ${plain('alice', MALFORMED[3])} junk`
            ];
            for (const command of commands) {
                const tag = command.split(' ')[0];
                const from = session.responses.length;
                session.write(`${command}\r\n`);
                let reply: string;
                try {
                    reply = (await session.waitFor(response => new RegExp(`^${tag} (OK|NO|BAD)`).test(response.text), `the reply to ${tag}`, 5000, from)).text;
                } catch (err) {
                    if (session.closed) break; // the server may hang up on repeated BADs
                    throw err;
                }
                assert.doesNotMatch(reply, new RegExp(`^${tag} OK`), `${command} must not log in`);
            }
            if (!session.closed) {
                session.write('a9 LOGOUT\r\n');
                await session.waitFor(response => response.text.startsWith('a9 '), 'the reply to LOGOUT', 5000).catch(() => null);
            }
        } finally {
            session.destroy();
        }
    });

    test('SMTP AUTH PLAIN, wrong and right', { timeout: TEST_TIMEOUT }, async () => {
        const { client: session, greeting } = await RawSmtpConnection.connect(smtpPort);
        try {
            assert.equal(greeting.code, 220);
            assert.equal((await session.cmd('EHLO laptop.lan')).code, 250);
            assert.equal((await session.cmd(`AUTH PLAIN ${plain('alice', SMTP_WRONG)}`)).code, 535);
            assert.equal((await session.cmd(`AUTH PLAIN ${plain('alice', LAN_PASSWORD)}`)).code, 235);
            await session.quit();
        } finally {
            session.destroy();
        }
    });

    test('SIGHUP reloads (a good file, then one broken on its credentials line)', { timeout: TEST_TIMEOUT }, async () => {
        let mark = daemon.stdoutLines.length;
        daemon.signal('SIGHUP');
        await daemon.waitForLog('"configuration reloaded"', record => /^configuration reloaded/.test(record.msg), { from: mark });

        const good = fs.readFileSync(setup.accountsFile, 'utf8');
        for (const broken of [
            good.replace(`credentials: { password: "${UPSTREAM_PASSWORD}" }`, `credentials:\n          password: ]${UPSTREAM_PASSWORD}`),
            good.replace(`credentials: { password: "${UPSTREAM_PASSWORD}" }`, `credentials: { password: *${UPSTREAM_PASSWORD} }`)
        ]) {
            assert.notEqual(broken, good);
            writeAccounts(setup.accountsFile, broken);
            mark = daemon.stdoutLines.length;
            daemon.signal('SIGHUP');
            await daemon.waitForLog('"reload failed"', record => /reload failed/.test(record.msg), { from: mark });
        }
        writeAccounts(setup.accountsFile, good);
        assert.equal(await canLogin(imapPort, 'alice', LAN_PASSWORD), true);
    });

    test('after SIGTERM, no secret and no LAN password is anywhere in stdout or stderr', { timeout: TEST_TIMEOUT }, async () => {
        daemon.signal('SIGTERM');
        const exit = await daemon.exited(8000);
        assert.equal(exit.code, 0, daemon.stderr);
        const output = daemon.stdout + '\n' + daemon.stderr;
        assert.ok(output.includes('mailmule stopped'), 'the whole log was captured');
        const secrets = [
            UPSTREAM_PASSWORD,
            CLIENT_SECRET,
            REFRESH_TOKEN,
            LAN_PASSWORD,
            WRONG_PASSWORD,
            SMTP_WRONG,
            ...MALFORMED,
            plain('alice', LAN_PASSWORD),
            plain('alice', SMTP_WRONG),
            plain('alice', MALFORMED[3])
        ];
        for (const secret of secrets) {
            assert.ok(
                !output.includes(secret),
                `${secret} appears in the output:\n${output
                    .split('\n')
                    .filter(line => line.includes(secret))
                    .join('\n')}`
            );
        }
        // Fragments too: the tail of a secret quoted by a parser is still a leak.
        for (const fragment of ['S3cr3t', 'Zebra-42', 'Malformed-Secret', 'Wr0ng']) {
            assert.ok(!output.includes(fragment), `${fragment} appears in the output`);
        }
    });
});

// ================================================================== wild-config side effect

describe('a garbage ./config/default.toml in the working directory', () => {
    test("does not stop the daemon (imap-core's wild-config is disabled)", { timeout: TEST_TIMEOUT }, async () => {
        const dir = newDir();
        fs.mkdirSync(path.join(dir, 'config'));
        fs.writeFileSync(path.join(dir, 'config', 'default.toml'), '[[[ this is not toml\nport = = "\n\u0000\n');
        fs.writeFileSync(path.join(dir, 'config', 'development.toml'), 'also = [garbage\n');
        const [imapPort, smtpPort] = await freePorts(2);
        const setup = writeSetup(dir, gatewayYaml({ imapPort, smtpPort }), usersYaml('alice'));
        const pw = await runMailmule(['passwd', 'alice', '-c', 'mailmule.yaml'], { cwd: dir, input: 'Alice-pw-wild\n' });
        assert.equal(pw.code, 0, pw.stderr);
        const daemon = DaemonProcess.spawn('mailmule.yaml', { cwd: dir });
        try {
            const started = await daemon.waitForStart();
            assert.equal(started.config, setup.configFile);
            assert.equal(await canLogin(imapPort, 'alice', 'Alice-pw-wild'), true);
            assert.ok(daemon.running);
            daemon.signal('SIGTERM');
            assert.deepEqual(await daemon.exited(8000), { code: 0, signal: null });
        } finally {
            await daemon.stop();
        }
    });
});
