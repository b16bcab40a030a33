import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { createLogger } from '../log';
import { ServingTls, TlsError, type ServingTlsOptions, type TlsPair } from './serving';
import { LEAF_VALIDITY_DAYS } from './issue';
import { RENEW_BEFORE_DAYS } from './renewal';

const DAY = 24 * 3600 * 1000;
const T0 = new Date('2026-03-01T12:00:00Z');

function setup(t: { after(fn: () => void): void }): { dir: string; tlsDir: string; lines: string[]; options: ServingTlsOptions & { clock: { now: Date }; addressList: string[] } } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailmule-tls-'));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const lines: string[] = [];
    const clock = { now: T0 };
    const addressList = ['192.168.1.10'];
    return {
        dir,
        tlsDir: path.join(dir, 'tls'),
        lines,
        options: {
            certFile: null,
            keyFile: null,
            dataDir: dir,
            hostname: 'pi.village.lan',
            localDomain: 'village.lan',
            addresses: () => addressList,
            now: () => clock.now,
            logger: createLogger('info', { write: (line: string) => void lines.push(line) }),
            clock,
            addressList
        }
    };
}

const mode = (file: string) => fs.statSync(file).mode & 0o777;
const leafOf = (pair: TlsPair) => new crypto.X509Certificate(pair.cert);

test('first start: a CA and a certificate from it; private keys 0600, the directory 0700; cert.pem carries the CA after the leaf', async t => {
    const { tlsDir, options, lines } = setup(t);
    const tls = await ServingTls.open(options);
    assert.equal(mode(tlsDir), 0o700);
    assert.equal(mode(path.join(tlsDir, 'ca-key.pem')), 0o600);
    assert.equal(mode(path.join(tlsDir, 'key.pem')), 0o600);
    assert.equal(mode(path.join(tlsDir, 'ca.pem')), 0o644);
    const ca = new crypto.X509Certificate(fs.readFileSync(path.join(tlsDir, 'ca.pem')));
    assert.equal(tls.caPem, ca.toString());
    const leaf = leafOf(tls.pair);
    assert.ok(leaf.checkIssued(ca) && leaf.verify(ca.publicKey));
    assert.equal(leaf.checkHost('autoconfig.village.lan'), 'autoconfig.village.lan');
    assert.equal(leaf.checkIP('192.168.1.10'), '192.168.1.10');
    assert.ok(tls.pair.cert.toString().endsWith(ca.toString()), 'the chain: leaf, then CA');
    assert.deepEqual(
        tls.files().map(f => path.basename(f)),
        ['tls', 'ca.pem', 'ca-key.pem', 'cert.pem', 'key.pem']
    );
    assert.ok(lines.some(line => line.includes('created the local certificate authority')));
    assert.ok(!lines.some(line => line.includes('PRIVATE KEY')), 'no key in the log');
});

test('a restart keeps the CA and the certificate; near expiry the certificate is renewed from the same CA and listeners get it', async t => {
    const { tlsDir, options, lines } = setup(t);
    const first = await ServingTls.open(options);
    const caBefore = fs.readFileSync(path.join(tlsDir, 'ca.pem'));
    const caKeyBefore = fs.readFileSync(path.join(tlsDir, 'ca-key.pem'));
    const again = await ServingTls.open(options);
    assert.ok(again.pair.cert.equals(first.pair.cert) && again.pair.key.equals(first.pair.key));
    const renewed: TlsPair[] = [];
    again.onRenewed(pair => renewed.push(pair));
    // The day before the window: nothing to do.
    options.clock.now = new Date(T0.getTime() + (LEAF_VALIDITY_DAYS - RENEW_BEFORE_DAYS - 1) * DAY);
    assert.equal(await again.renewIfDue(), null);
    assert.equal(renewed.length, 0);
    // Inside the window: a new certificate, the same CA.
    options.clock.now = new Date(T0.getTime() + (LEAF_VALIDITY_DAYS - RENEW_BEFORE_DAYS + 1) * DAY);
    assert.match((await again.renewIfDue())!, /expires on/);
    assert.equal(renewed.length, 1);
    assert.ok(fs.readFileSync(path.join(tlsDir, 'ca.pem')).equals(caBefore));
    assert.ok(fs.readFileSync(path.join(tlsDir, 'ca-key.pem')).equals(caKeyBefore));
    assert.ok(!renewed[0].key.equals(first.pair.key), 'a new key');
    assert.equal(again.pair, renewed[0]);
    const leaf = leafOf(again.pair);
    assert.ok(leaf.checkIssued(new crypto.X509Certificate(caBefore)));
    assert.ok(leaf.validToDate.getTime() > leafOf(first.pair).validToDate.getTime() + 300 * DAY);
    assert.ok(fs.readFileSync(path.join(tlsDir, 'cert.pem')).equals(again.pair.cert));
    assert.equal(mode(path.join(tlsDir, 'key.pem')), 0o600);
    assert.ok(lines.some(line => line.includes('issued a TLS certificate from the local CA')));
    // Checked again at once: nothing more to do.
    assert.equal(await again.renewIfDue(), null);
});

test('a new address or hostname: a certificate naming it, from the same CA', async t => {
    const { tlsDir, options } = setup(t);
    const tls = await ServingTls.open(options);
    const ca = fs.readFileSync(path.join(tlsDir, 'ca.pem'));
    options.addressList.push('10.1.2.3');
    assert.match((await tls.renewIfDue())!, /does not name 10\.1\.2\.3/);
    tls.setNames({ hostname: 'mail.village.lan', localDomain: 'village.lan' });
    assert.match((await tls.renewIfDue())!, /does not name mail\.village\.lan/);
    assert.equal(leafOf(tls.pair).checkIP('10.1.2.3'), '10.1.2.3');
    assert.ok(fs.readFileSync(path.join(tlsDir, 'ca.pem')).equals(ca));
});

test('a key.pem that is not cert.pem’s (a crash between the two writes) is reissued', async t => {
    const { tlsDir, options } = setup(t);
    await ServingTls.open(options);
    fs.copyFileSync(path.join(tlsDir, 'ca-key.pem'), path.join(tlsDir, 'key.pem'));
    const tls = await ServingTls.open(options);
    assert.equal(
        crypto
            .createPublicKey(tls.pair.key)
            .export({ format: 'der', type: 'spki' })
            .equals(leafOf(tls.pair).publicKey.export({ format: 'der', type: 'spki' })),
        true
    );
});

test('upgrade: the self-signed pair of an older install is moved aside, a CA made, and the change logged', async t => {
    const { tlsDir, options, lines } = setup(t);
    fs.mkdirSync(tlsDir, { mode: 0o700 });
    // What src/tls made before the local CA.
    execFileSync(
        'openssl',
        ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', path.join(tlsDir, 'key.pem'), '-out', path.join(tlsDir, 'cert.pem')].concat([
            '-days',
            '3650',
            '-subj',
            '/CN=pi.village.lan/O=mailmule',
            '-addext',
            'subjectAltName=DNS:pi.village.lan,DNS:localhost,IP:127.0.0.1'
        ]),
        { stdio: 'ignore' }
    );
    const oldCert = fs.readFileSync(path.join(tlsDir, 'cert.pem'));
    const oldKey = fs.readFileSync(path.join(tlsDir, 'key.pem'));
    const tls = await ServingTls.open(options);
    assert.ok(fs.readFileSync(path.join(tlsDir, 'cert.pem.self-signed')).equals(oldCert));
    assert.ok(fs.readFileSync(path.join(tlsDir, 'key.pem.self-signed')).equals(oldKey));
    assert.ok(leafOf(tls.pair).checkIssued(new crypto.X509Certificate(tls.caPem!)));
    const warning = lines.map(line => JSON.parse(line) as { level: number; msg: string }).find(entry => entry.msg.includes('replaced the self-signed TLS certificate'));
    assert.ok(warning && warning.level === 40, 'a warning says so');
});

test('a configured pair is served as it is: no CA, no files written, never renewed', async t => {
    const { dir, options } = setup(t);
    const certFile = path.join(dir, 'admin.crt');
    const keyFile = path.join(dir, 'admin.key');
    fs.writeFileSync(certFile, 'CERT');
    fs.writeFileSync(keyFile, 'KEY');
    const tls = await ServingTls.open({ ...options, certFile, keyFile });
    assert.equal(tls.pair.cert.toString(), 'CERT');
    assert.equal(tls.caPem, null);
    assert.deepEqual(tls.files(), []);
    options.clock.now = new Date(T0.getTime() + 10 * 365 * DAY);
    assert.equal(await tls.renewIfDue(), null);
    assert.ok(!fs.existsSync(path.join(dir, 'tls')));
    await assert.rejects(ServingTls.open({ ...options, certFile, keyFile: null }), TlsError);
    await assert.rejects(ServingTls.open({ ...options, certFile, keyFile: path.join(dir, 'missing.key') }), /cannot read .*missing\.key/);
});

test('a CA whose key is gone is refused with what to do, not replaced behind the clients’ backs', async t => {
    const { tlsDir, options } = setup(t);
    await ServingTls.open(options);
    fs.rmSync(path.join(tlsDir, 'ca-key.pem'));
    await assert.rejects(
        ServingTls.open(options),
        (err: Error) => err instanceof TlsError && /ca\.pem has no matching private key.*restore ca-key\.pem from a backup, or remove ca\.pem/.test(err.message)
    );
});

test('a new hostname outside what the CA may sign for: a warning, and the certificate stays (no reissue at every check)', async t => {
    const { options, lines } = setup(t);
    const tls = await ServingTls.open(options);
    const before = tls.pair;
    tls.setNames({ hostname: 'mail.other.org', localDomain: 'village.lan' });
    assert.equal(await tls.renewIfDue(), null);
    assert.equal(await tls.renewIfDue(), null);
    assert.equal(tls.pair, before);
    const warnings = lines.map(line => JSON.parse(line) as { level: number; msg: string; outside?: string[] }).filter(entry => entry.level === 40);
    assert.equal(warnings.length, 2);
    assert.deepEqual(warnings[0].outside, ['mail.other.org']);
    assert.match(warnings[0].msg, /remove ca\.pem and ca-key\.pem to make a CA for the new names/);
});

test('a public address of the machine is left off the certificate with an info line, not a warning: the CA signs for the LAN only, and a fresh CA would not change that', async t => {
    const { options, lines } = setup(t);
    options.addressList.push('192.0.2.2', '2001:db8::2');
    const tls = await ServingTls.open(options);
    const entries = lines.map(line => JSON.parse(line) as { level: number; msg: string; outside?: string[] });
    assert.deepEqual(
        entries.filter(entry => entry.level >= 40).map(entry => entry.msg),
        []
    );
    const info = entries.find(entry => /public addresses of this machine are left off/.test(entry.msg));
    assert.deepEqual(info?.outside, ['192.0.2.2', '2001:db8::2']);
    const names = new crypto.X509Certificate(tls.pair.cert).subjectAltName ?? '';
    assert.match(names, /IP Address:192\.168\.1\.10/);
    assert.doesNotMatch(names, /192\.0\.2\.2|2001:db8/i);
});
