/**
 * The release (`npm run release`, scripts/release.mjs): what it carries, and that it runs on its own.
 *
 * The tarball is unpacked into an empty directory and its daemon started there with the example
 * configuration (on free loopback ports), by this Node with a PATH that holds only `openssl` (for
 * the self-signed certificate): no npm, no compiler, nothing installed or fetched. It must serve
 * IMAP (LOGIN) and SMTP (EHLO) over TCP.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { builtinModules, createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import { runProcess, describeRun } from './support/run-process';
import { freePort } from './support/ports';
import { startDaemon } from './support/daemon-process';
import { RawImapConnection } from './support/raw-imap-connection';
import { RawSmtpConnection } from './support/raw-smtp';
import { releaseTarball, ROOT } from './support/release';

const IMAP_CORE = path.join(ROOT, 'node_modules', '@zone-eu', 'wildduck', 'imap-core');
const STUB = fs.realpathSync(path.join(ROOT, 'packages', 'wildduck-unused'));
/** The release's limit, compressed (issue 12): an upgrade of the Pi is paid by the byte on a 2G link. */
const MAX_TARBALL_BYTES = 15_000_000;
/** ELF e_machine of each prebuilt addon the release carries. */
const ELF_MACHINE = { x64: 0x3e, arm64: 0xb7 };

test('every package imap-core requires is installed, none is the wildduck-unused stand-in', () => {
    const files = [path.join(IMAP_CORE, 'index.js'), ...(fs.readdirSync(path.join(IMAP_CORE, 'lib'), { recursive: true }) as string[]).map(f => path.join(IMAP_CORE, 'lib', f))].filter(f =>
        f.endsWith('.js')
    );
    const packages = new Set<string>();
    for (const file of files) {
        for (const [, name] of fs.readFileSync(file, 'utf8').matchAll(/require\(\s*['"]([^'"]+)['"]\s*\)/g)) {
            if (name.startsWith('.') || name.startsWith('node:') || builtinModules.includes(name.split('/')[0])) continue;
            const resolved = fs.realpathSync(createRequire(file).resolve(name));
            assert.ok(!resolved.startsWith(STUB + path.sep), `${path.relative(IMAP_CORE, file)} requires ${name}, which package.json overrides with packages/wildduck-unused`);
            packages.add(name.split('/')[0]);
        }
    }
    // The scan found the requires (it is not vacuous): the indexer's MIME libraries among them.
    for (const expected of ['libmime', 'libqp', 'libbase64', 'nodemailer']) assert.ok(packages.has(expected), `no require('${expected}') found in imap-core`);
});

test('the release tarball unpacks into an empty directory and serves IMAP and SMTP with no npm, compiler or network', { timeout: 300_000 }, async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mailmule-release-test-'));
    let daemon: Awaited<ReturnType<typeof startDaemon>> | null = null;
    try {
        const tarball = await releaseTarball(path.join(tmp, 'build'));
        const size = fs.statSync(tarball).size;
        assert.ok(size <= MAX_TARBALL_BYTES, `${tarball} is ${size} bytes, over ${MAX_TARBALL_BYTES}`);

        const install = path.join(tmp, 'opt');
        fs.mkdirSync(install);
        const untar = spawnSync('tar', ['xzf', tarball, '-C', install], { encoding: 'utf8' });
        assert.equal(untar.status, 0, untar.stderr);
        const [top, ...others] = fs.readdirSync(install);
        assert.deepEqual(others, [], 'the tarball has one top directory');
        const release = path.join(install, top);

        // What it carries: both prebuilt SQLite addons (one tarball for a Pi and a PC), imap-core
        // without the rest of WildDuck, no development or WildDuck-server packages, no install scripts.
        for (const [arch, machine] of Object.entries(ELF_MACHINE)) {
            const addon = fs.readFileSync(path.join(release, 'node_modules', 'better-sqlite3', 'prebuilds', `linux-${arch}.node`));
            assert.equal(addon.readUInt16LE(18), machine, `linux-${arch}.node is not an ELF for ${arch}`);
        }
        for (const absent of ['mongodb', 'ioredis', 'bullmq', '@aws-sdk', 'openpgp', 'restify', 'mailauth', 'typescript', 'eslint', 'mailparser', 'patch-package', 'node-addon-api']) {
            assert.ok(!fs.existsSync(path.join(release, 'node_modules', absent)), `the release carries ${absent}`);
        }
        assert.ok(!fs.existsSync(path.join(release, 'node_modules', '@zone-eu', 'wildduck', 'lib')), 'the release carries WildDuck beyond imap-core');
        assert.ok(!fs.existsSync(path.join(release, 'node_modules', 'better-sqlite3', 'deps')), 'the release carries the SQLite sources');
        const shipped = JSON.parse(fs.readFileSync(path.join(release, 'package.json'), 'utf8')) as { scripts?: unknown; devDependencies?: unknown };
        assert.equal(shipped.scripts, undefined, 'the shipped package.json has scripts');
        assert.equal(shipped.devDependencies, undefined);
        const info = JSON.parse(fs.readFileSync(path.join(release, 'build-info.json'), 'utf8')) as { arches: string[] };
        assert.deepEqual(info.arches, Object.keys(ELF_MACHINE));

        // An environment with openssl alone on the PATH, npm told to stay offline, a HOME of its own.
        const bin = path.join(tmp, 'bin');
        fs.mkdirSync(bin);
        const openssl = spawnSync('sh', ['-c', 'command -v openssl'], { encoding: 'utf8' }).stdout.trim();
        assert.ok(openssl, 'openssl is not installed (bash .ci/run installs it)');
        fs.symlinkSync(openssl, path.join(bin, 'openssl'));
        const env = { PATH: bin, HOME: tmp, LANG: 'C.UTF-8', npm_config_offline: 'true' };
        assert.equal(spawnSync('/bin/sh', ['-c', 'command -v g++ cc make npm'], { env, encoding: 'utf8' }).stdout.trim(), '', 'a compiler or npm is reachable');

        // The example configuration as shipped, on free loopback ports.
        const etc = path.join(tmp, 'etc');
        fs.cpSync(path.join(release, 'config'), etc, { recursive: true });
        const configFile = path.join(etc, 'mailmule.yaml');
        const ports: Record<number, number> = { 1143: await freePort(), 1993: await freePort(), 1587: await freePort(), 1465: await freePort() };
        let yaml = fs.readFileSync(configFile, 'utf8').replaceAll('host: 0.0.0.0', 'host: 127.0.0.1');
        for (const [from, to] of Object.entries(ports)) {
            assert.ok(yaml.includes(`port: ${from}\n`), `the example config has no port ${from}`);
            yaml = yaml.replace(`port: ${from}\n`, `port: ${to}\n`);
        }
        fs.writeFileSync(configFile, yaml);

        const main = path.join(release, 'dist', 'src', 'cli', 'main.js');
        const passwd = await runProcess(process.execPath, [main, 'passwd', 'demo', '-c', configFile], { timeoutMs: 60_000, env, input: 'demo-pass\n' });
        assert.equal(passwd.code, 0, describeRun('mailmule passwd (from the release)', passwd));
        daemon = await startDaemon(configFile, [], [], { main, env });

        const imap = await RawImapConnection.connect(ports[1993], { tls: true });
        assert.match((await imap.command('LOGIN demo "demo-pass"')).tagged, /^\S+ OK/);
        assert.match((await imap.command('SELECT INBOX')).tagged, /^\S+ OK/);
        await imap.command('LOGOUT');
        imap.destroy();
        const starttls = await RawImapConnection.connect(ports[1143]);
        assert.match((await starttls.command('CAPABILITY')).untagged.map(r => r.text).join('\n'), /STARTTLS/);
        starttls.destroy();

        const { client: smtp, greeting } = await RawSmtpConnection.connect(ports[1465], { tls: true });
        assert.equal(greeting.code, 220);
        const ehlo = await smtp.cmd('EHLO laptop.lan');
        assert.equal(ehlo.code, 250, ehlo.text);
        assert.ok(
            ehlo.lines.some(line => /^AUTH\b.*PLAIN/.test(line)),
            ehlo.text
        );
        await smtp.quit();
        const { client: submission } = await RawSmtpConnection.connect(ports[1587]);
        assert.ok((await submission.cmd('EHLO laptop.lan')).lines.includes('STARTTLS'));
        await submission.quit();

        assert.equal(await daemon.stop(), 0);
        daemon = null;
    } finally {
        if (daemon) await daemon.kill9();
        fs.rmSync(tmp, { recursive: true, force: true });
    }
});
