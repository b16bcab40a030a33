/**
 * The local CA end to end (issue 13 item 2): the CA is downloaded from the web listener over plain
 * HTTP, as a phone that does not trust it yet would, and then every TLS listener (IMAP and SMTP,
 * implicit TLS and STARTTLS, and HTTPS) is verified against it alone, for the hostname, for
 * autoconfig.<localDomain> and for the address; a renewed certificate reaches the running
 * listeners; an install with the self-signed pair from before is upgraded as the README says.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { Writable } from 'node:stream';
import { Daemon } from '../src/daemon';
import { createLogger } from '../src/log';
import { startGateway, tempDir, writeConfig, type Gateway } from './support/gateway';
import { waitUntil, withTimeout } from './support/wait';
import { makeOpensslPair } from './support/openssl-pair';

const HOSTNAME = 'mailmule.test';
const AUTOCONFIG = 'autoconfig.mailmule.lan';
const TIMEOUT_MS = 10_000;

let gateway: Gateway;
let caPem: string;

before(async () => {
    gateway = await startGateway({ web: true });
});

after(async () => {
    await gateway?.stop();
});

/** Reads from `socket` until `pattern` matches what arrived; resolves with it. */
function readUntil(socket: net.Socket, pattern: RegExp): Promise<string> {
    return withTimeout(
        new Promise((resolve, reject) => {
            let text = '';
            const onData = (chunk: Buffer) => {
                text += chunk.toString('latin1');
                if (pattern.test(text)) {
                    socket.off('data', onData);
                    socket.off('error', reject);
                    resolve(text);
                }
            };
            socket.on('data', onData);
            socket.once('error', reject);
        }),
        TIMEOUT_MS,
        `a reply matching ${pattern}`
    );
}

/** A TLS handshake verified against `ca` alone, for `servername`; resolves with the peer certificate. */
function handshake(options: { port: number; servername?: string; ca?: string; socket?: net.Socket }): Promise<tls.TLSSocket> {
    return withTimeout(
        new Promise((resolve, reject) => {
            const socket = tls.connect({ host: '127.0.0.1', port: options.port, socket: options.socket, servername: options.servername, ca: options.ca ? [options.ca] : [], rejectUnauthorized: true });
            socket.once('secureConnect', () => resolve(socket));
            socket.once('error', reject);
        }),
        TIMEOUT_MS,
        `a TLS handshake on port ${options.port}`
    );
}

/** STARTTLS on a plain IMAP or SMTP listener, then the handshake. */
async function starttls(kind: 'imap' | 'smtp', port: number, servername: string, ca: string): Promise<tls.TLSSocket> {
    const plain = net.connect({ host: '127.0.0.1', port });
    await withTimeout(new Promise(resolve => plain.once('connect', resolve)), TIMEOUT_MS, 'connect');
    if (kind === 'imap') {
        await readUntil(plain, /^\* OK.*\r\n/);
        plain.write('a STARTTLS\r\n');
        await readUntil(plain, /^a OK.*\r\n/m);
    } else {
        await readUntil(plain, /^220 .*\r\n/);
        plain.write('EHLO client.test\r\n');
        await readUntil(plain, /^250 .*\r\n/m);
        plain.write('STARTTLS\r\n');
        await readUntil(plain, /^220 .*\r\n/m);
    }
    return handshake({ port, socket: plain, servername, ca });
}

function httpsGet(port: number, pathname: string, servername: string, ca: string): Promise<{ status: number; body: string; cert: tls.PeerCertificate }> {
    return withTimeout(
        new Promise((resolve, reject) => {
            const req = https.get({ host: '127.0.0.1', port, path: pathname, servername, ca: [ca], agent: false }, res => {
                let body = '';
                res.setEncoding('utf8');
                res.on('data', chunk => (body += chunk));
                res.on('end', () => resolve({ status: res.statusCode ?? 0, body, cert: (res.socket as tls.TLSSocket).getPeerCertificate() }));
            });
            req.once('error', reject);
        }),
        TIMEOUT_MS,
        `GET ${pathname}`
    );
}

test('the CA comes over plain HTTP without login or redirect: DER for Android and Windows, PEM, an iOS profile, and a page with its fingerprint', async () => {
    const base = `http://127.0.0.1:${gateway.webPort}`;
    const crt = await fetch(`${base}/ca.crt`, { redirect: 'manual' });
    assert.equal(crt.status, 200);
    assert.equal(crt.headers.get('content-type'), 'application/x-x509-ca-cert');
    assert.match(crt.headers.get('content-disposition') ?? '', /attachment; filename="mailmule-ca\.crt"/);
    const der = Buffer.from(await crt.arrayBuffer());
    const ca = new crypto.X509Certificate(der);
    assert.equal(ca.ca, true);
    caPem = ca.toString();
    assert.equal(caPem, fs.readFileSync(path.join(gateway.dir, 'data', 'tls', 'ca.pem'), 'utf8'));

    const pem = await fetch(`${base}/ca.pem`, { redirect: 'manual' });
    assert.equal(pem.status, 200);
    assert.equal(pem.headers.get('content-type'), 'application/x-pem-file');
    assert.equal(await pem.text(), caPem);

    const profile = await fetch(`${base}/ca.mobileconfig`, { redirect: 'manual' });
    assert.equal(profile.status, 200);
    assert.equal(profile.headers.get('content-type'), 'application/x-apple-aspen-config');
    const plist = await profile.text();
    assert.match(plist, /<string>com\.apple\.security\.root<\/string>/);
    const data = /<data>\s*([A-Za-z0-9+/=\s]+?)\s*<\/data>/.exec(plist)?.[1];
    assert.ok(data && Buffer.from(data.replace(/\s+/g, ''), 'base64').equals(der), 'the profile carries the same certificate');

    for (const lang of ['en', 'fr']) {
        const page = await fetch(`${base}/ca`, { redirect: 'manual', headers: { 'accept-language': lang } });
        assert.equal(page.status, 200);
        const text = await page.text();
        assert.ok(text.includes(ca.fingerprint256), 'the page shows the SHA-256 fingerprint');
        for (const system of ['Android', 'Windows', 'iPhone', 'macOS', 'Linux', 'Thunderbird']) assert.ok(text.includes(system), `${lang}: steps for ${system}`);
        assert.match(text, lang === 'fr' ? /Télécharger/ : /Download/);
    }
    assert.ok(fs.statSync(path.join(gateway.dir, 'data', 'tls', 'ca-key.pem')).mode % 0o1000 === 0o600);
    assert.ok(fs.statSync(path.join(gateway.dir, 'data', 'tls', 'key.pem')).mode % 0o1000 === 0o600);
    // Everything else still needs HTTPS.
    assert.equal((await fetch(`${base}/login`, { redirect: 'manual' })).status, 308);
});

test('IMAP, SMTP and HTTPS verify against the downloaded CA alone, for the hostname, autoconfig.<localDomain> and the address', async () => {
    assert.ok(caPem, 'the download test ran first');
    for (const servername of [HOSTNAME, AUTOCONFIG, undefined]) {
        const imaps = await handshake({ port: gateway.imapsPort, servername, ca: caPem });
        assert.match(await readUntil(imaps, /^\* OK.*\r\n/), /^\* OK/);
        imaps.destroy();
        const smtps = await handshake({ port: gateway.smtpsPort, servername, ca: caPem });
        assert.match(await readUntil(smtps, /^220 .*\r\n/), /^220 /);
        smtps.destroy();
    }
    for (const servername of [HOSTNAME, AUTOCONFIG]) {
        const imap = await starttls('imap', gateway.imapPort, servername, caPem);
        imap.write('b CAPABILITY\r\n');
        assert.match(await readUntil(imap, /^b OK.*\r\n/m), /IMAP4rev1/);
        imap.destroy();
        const smtp = await starttls('smtp', gateway.smtpPort, servername, caPem);
        smtp.write('EHLO client.test\r\n');
        assert.match(await readUntil(smtp, /^250 .*\r\n/m), /AUTH/);
        smtp.destroy();
        const page = await httpsGet(gateway.websPort, '/ca', servername, caPem);
        assert.equal(page.status, 200);
    }
    // The CA is what makes these pass: another name, or no CA, fails.
    await assert.rejects(handshake({ port: gateway.imapsPort, servername: 'imap.example.org', ca: caPem }), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
    await assert.rejects(handshake({ port: gateway.smtpsPort, servername: HOSTNAME }), { code: 'SELF_SIGNED_CERT_IN_CHAIN' });
});

test('a renewed certificate reaches the running listeners: a new hostname is served from the same CA, no restart', async () => {
    assert.ok(caPem, 'the download test ran first');
    const before = (await handshake({ port: gateway.imapsPort, servername: HOSTNAME, ca: caPem })).getPeerCertificate();
    const mark = gateway.logLines.length;
    const config = fs.readFileSync(gateway.configFile, 'utf8');
    fs.writeFileSync(gateway.configFile, config.replace(`hostname: ${HOSTNAME}`, 'hostname: pi.mailmule.test'));
    assert.equal(gateway.daemon.reload(), true);
    await waitUntil(() => gateway.logLines.slice(mark).some(line => line.includes('issued a TLS certificate from the local CA')), 'the renewal');
    const imaps = await handshake({ port: gateway.imapsPort, servername: 'pi.mailmule.test', ca: caPem });
    assert.notEqual(imaps.getPeerCertificate().serialNumber, before.serialNumber);
    imaps.destroy();
    (await starttls('imap', gateway.imapPort, 'pi.mailmule.test', caPem)).destroy();
    (await starttls('smtp', gateway.smtpPort, 'pi.mailmule.test', caPem)).destroy();
    (await handshake({ port: gateway.smtpsPort, servername: 'pi.mailmule.test', ca: caPem })).destroy();
    assert.equal((await httpsGet(gateway.websPort, '/ca', 'pi.mailmule.test', caPem)).status, 200);
    assert.equal(fs.readFileSync(path.join(gateway.dir, 'data', 'tls', 'ca.pem'), 'utf8'), caPem, 'the CA is unchanged');
});

/** A daemon on `dir` (config written by writeConfig), its log lines collected. */
async function startDaemon(dir: string, extraYaml = ''): Promise<{ daemon: Daemon; logLines: string[] }> {
    const { configFile } = writeConfig(dir, { web: true, extraYaml });
    const logLines: string[] = [];
    const sink = new Writable({
        write(chunk, _encoding, done) {
            logLines.push(...chunk.toString().split('\n').filter(Boolean));
            done();
        }
    });
    const daemon = new Daemon(configFile, { logger: createLogger('info', sink) });
    await daemon.start();
    return { daemon, logLines };
}

test('upgrade: an install with the self-signed pair from before gets a CA; the old pair is kept aside and the change logged', async t => {
    const dir = tempDir();
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const tlsDir = path.join(dir, 'data', 'tls');
    fs.mkdirSync(tlsDir, { recursive: true, mode: 0o700 });
    // Exactly what src/tls generated before the local CA.
    makeOpensslPair({
        certFile: path.join(tlsDir, 'cert.pem'),
        keyFile: path.join(tlsDir, 'key.pem'),
        subject: `/CN=${HOSTNAME}/O=mailmule`,
        altNames: [`DNS:${HOSTNAME}`, 'DNS:localhost', 'IP:127.0.0.1'],
        days: 3650,
        leaf: true
    });
    const oldCert = fs.readFileSync(path.join(tlsDir, 'cert.pem'), 'utf8');
    const { daemon, logLines } = await startDaemon(dir);
    try {
        assert.equal(fs.readFileSync(path.join(tlsDir, 'cert.pem.self-signed'), 'utf8'), oldCert);
        assert.ok(logLines.some(line => /"level":40.*replaced the self-signed TLS certificate/.test(line)));
        const web = daemon.webListeners.find(l => l.security === 'plain')!;
        const ca = await (await fetch(`http://127.0.0.1:${web.port}/ca.pem`)).text();
        const imaps = daemon.listeners.find(l => l.security === 'tls')!;
        (await handshake({ port: imaps.port, servername: HOSTNAME, ca })).destroy();
        // The old certificate no longer opens the door: the client installs the CA once.
        await assert.rejects(handshake({ port: imaps.port, servername: HOSTNAME, ca: oldCert }));
    } finally {
        await daemon.stop();
    }
});

test("an admin's own pair (tls.cert, tls.key) is served untouched: no CA is made, and the page says there is nothing to install", async t => {
    const dir = tempDir();
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const cert = path.join(dir, 'admin.crt');
    const key = path.join(dir, 'admin.key');
    makeOpensslPair({ certFile: cert, keyFile: key, subject: `/CN=${HOSTNAME}`, altNames: [`DNS:${HOSTNAME}`], days: 30 });
    const before = fs.readFileSync(cert);
    const { daemon } = await startDaemon(dir, `tls:\n  cert: ${cert}\n  key: ${key}\n`);
    try {
        const web = daemon.webListeners.find(l => l.security === 'plain')!;
        assert.equal((await fetch(`http://127.0.0.1:${web.port}/ca.crt`)).status, 404);
        assert.match(await (await fetch(`http://127.0.0.1:${web.port}/ca`)).text(), /the administrator provided/);
        const imaps = daemon.listeners.find(l => l.security === 'tls')!;
        (await handshake({ port: imaps.port, servername: HOSTNAME, ca: before.toString() })).destroy();
        assert.ok(!fs.existsSync(path.join(dir, 'data', 'tls')));
        assert.ok(fs.readFileSync(cert).equals(before));
    } finally {
        await daemon.stop();
    }
});
