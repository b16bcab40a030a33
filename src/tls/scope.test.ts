import crypto from 'node:crypto';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { caScope, scopeOf, withinScope } from './scope';
import { createCa, issueLeaf, type PemPair } from './issue';
import { x509 } from './x509';

const NOW = new Date('2026-03-01T12:00:00Z');

test('scope: the local domain and the hostname (once when one is under the other), localhost, private and loopback ranges', () => {
    assert.deepEqual(caScope('pi.village.lan', 'village.lan').dns, ['village.lan', 'localhost']);
    assert.deepEqual(caScope('mailmule.test', 'mailmule.lan').dns, ['mailmule.lan', 'mailmule.test', 'localhost']);
    assert.deepEqual(caScope('192.168.1.10', 'village.lan').dns, ['village.lan', 'localhost']);
    assert.ok(caScope('a', 'b').ip.includes('192.168.0.0/16'));
});

test('the scope is written into the CA and read back; names outside it are left out of a certificate', async () => {
    const scope = caScope('mailmule.test', 'village.lan');
    const ca = await createCa({ hostname: 'mailmule.test', scope, now: NOW });
    assert.deepEqual(scopeOf(ca.certPem), scope);
    const split = withinScope(
        { dns: ['pi.mailmule.test', 'autoconfig.village.lan', 'localhost', 'other.example', 'evilvillage.lan'], ip: ['127.0.0.1', '::1', '192.168.7.7', '8.8.8.8', 'fd00::1'] },
        scopeOf(ca.certPem)
    );
    assert.deepEqual(split.names, { dns: ['pi.mailmule.test', 'autoconfig.village.lan', 'localhost'], ip: ['127.0.0.1', '::1', '192.168.7.7', 'fd00::1'] });
    assert.deepEqual(split.outside, ['other.example', 'evilvillage.lan', '8.8.8.8']);
    assert.deepEqual(withinScope({ dns: ['any.example'], ip: ['8.8.8.8'] }, null).outside, []);
});

test('scopeOf reads IPv6 subnets as written (zero runs compressed) and a CA without name constraints as null', async () => {
    const scope = { dns: ['village.lan'], ip: ['10.1.2.0/24', '2001:db8:0:1::/64', 'fd00:1::/32', '::1/128', 'fe80::/10'] };
    assert.deepEqual(scopeOf((await createCa({ hostname: 'pi.village.lan', scope, now: NOW })).certPem), scope);
    const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
    const keys = await crypto.webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify']);
    const plain = await x509.X509CertificateGenerator.createSelfSigned({
        serialNumber: '01',
        name: 'CN=plain',
        keys,
        signingAlgorithm: algorithm,
        extensions: [new x509.BasicConstraintsExtension(true, 0, true)]
    });
    assert.equal(scopeOf(plain.toString('pem')), null);
});

/** A TLS handshake against a server with `leaf` (and the CA after it), verified with `ca` alone. */
async function handshake(ca: PemPair, leaf: PemPair, servername: string): Promise<void> {
    const server = tls.createServer({ key: leaf.keyPem, cert: leaf.certPem + ca.certPem }, socket => socket.end());
    server.on('tlsClientError', () => {});
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
    try {
        await new Promise<void>((resolve, reject) => {
            const socket = tls.connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, servername, ca: [ca.certPem] }, () => {
                socket.destroy();
                resolve();
            });
            socket.once('error', reject);
        });
    } finally {
        await new Promise(resolve => server.close(resolve));
    }
}

test('clients enforce the scope: a certificate from the CA for a public name is refused, one for a local name accepted', async () => {
    const ca = await createCa({ hostname: 'pi.village.lan', scope: caScope('pi.village.lan', 'village.lan'), now: NOW });
    await handshake(ca, await issueLeaf(ca, { dns: ['pi.village.lan', 'autoconfig.village.lan'], ip: ['127.0.0.1'] }, NOW), 'autoconfig.village.lan');
    // What a thief of ca-key.pem would try: the provider's name.
    await assert.rejects(handshake(ca, await issueLeaf(ca, { dns: ['imap.gmail.com'], ip: [] }, NOW), 'imap.gmail.com'), { message: /permitted subtree violation/ });
    await assert.rejects(handshake(ca, await issueLeaf(ca, { dns: ['pi.village.lan'], ip: ['8.8.8.8'] }, NOW), 'pi.village.lan'), { message: /permitted subtree violation/ });
});
