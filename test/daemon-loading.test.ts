/**
 * What a daemon start loads when there is nothing to issue (issue 11: daemon RSS). The X.509
 * library (@peculiar/x509 with tsyringe, reflect-metadata and the asn1 modules, about 8 MB of
 * RSS) is for making the local CA and issuing certificates; a start that finds a good certificate
 * must not load it, nor the uplink's IMAP client before a run.
 *
 * The daemon's hostname is set outside the CA's scope (src/tls/scope.ts), so that the start goes
 * through the scope check that every machine with a public address goes through: the certificate
 * lacks a name, the name may not be signed, nothing is issued. The daemon runs as a child with a
 * preload that writes every module file it loaded when it exits.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ServingTls } from '../src/tls';
import { tempDir, writeConfig } from './support/gateway';
import { assignFreePorts, startDaemon } from './support/daemon-process';

const dir = tempDir('mailmule-daemon-loading-');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const NEVER_AT_START: { what: string; pattern: RegExp }[] = [
    { what: '@peculiar/x509', pattern: /[\\/]@peculiar[\\/]x509[\\/]/ },
    { what: 'the asn1 modules', pattern: /[\\/]@peculiar[\\/]asn1-/ },
    { what: 'tsyringe', pattern: /[\\/]tsyringe[\\/]/ },
    { what: 'reflect-metadata', pattern: /[\\/]reflect-metadata[\\/]/ },
    { what: "the local CA's issuing code", pattern: /dist[\\/]src[\\/]tls[\\/](issue|constraints|x509)\.js$/ },
    { what: 'imapflow', pattern: /[\\/]imapflow[\\/]/ }
];

test('a daemon start that issues nothing loads neither the X.509 library nor the uplink client', { timeout: 60_000 }, async () => {
    const { configFile } = writeConfig(dir);
    await assignFreePorts(configFile);
    const dataDir = path.join(dir, 'data');
    await ServingTls.open({ certFile: null, keyFile: null, dataDir, hostname: 'mailmule.test', localDomain: 'mailmule.lan' });
    const certBefore = fs.readFileSync(path.join(dataDir, 'tls', 'cert.pem'));
    // A name the CA may not sign for: the start checks the scope and keeps the certificate.
    fs.writeFileSync(configFile, fs.readFileSync(configFile, 'utf8').replace('hostname: mailmule.test', 'hostname: pi.elsewhere.example'));

    const out = path.join(dir, 'loaded.json');
    const preload = path.join(dir, 'record-modules.js');
    fs.writeFileSync(preload, `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify(Object.keys(require.cache))));\n`);
    const daemon = await startDaemon(configFile, ['-r', preload]);
    assert.equal(await daemon.stop(), 0);

    const loaded = JSON.parse(fs.readFileSync(out, 'utf8')) as string[];
    assert.ok(
        daemon.stdoutLines.some(line => line.includes('the local CA may not sign for these names')),
        'the start went through the scope check'
    );
    for (const { what, pattern } of NEVER_AT_START) {
        assert.deepEqual(
            loaded.filter(file => pattern.test(file)),
            [],
            `the daemon loaded ${what} at start`
        );
    }
    assert.ok(fs.readFileSync(path.join(dataDir, 'tls', 'cert.pem')).equals(certBefore), 'nothing was issued');
});
