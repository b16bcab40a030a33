import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCa, issueLeaf, LEAF_VALIDITY_DAYS } from './issue';
import { caScope } from './scope';
import { leafNames, machineAddresses, renewalReason, RENEW_BEFORE_DAYS } from './renewal';

const DAY = 24 * 3600 * 1000;
const T0 = new Date('2026-03-01T12:00:00Z');
const names = leafNames({ hostname: 'Pi.Village.lan', localDomain: 'village.lan', addresses: ['192.168.1.10'] });

test('leaf names: the hostname first, autoconfig.<localDomain>, localhost, loopback and the addresses, each once', () => {
    assert.deepEqual(names, { dns: ['pi.village.lan', 'autoconfig.village.lan', 'localhost'], ip: ['127.0.0.1', '::1', '192.168.1.10'] });
    assert.deepEqual(leafNames({ hostname: '10.0.0.2', localDomain: 'v.lan', addresses: ['10.0.0.2', '127.0.0.1', 'not an address'] }), {
        dns: ['autoconfig.v.lan', 'localhost'],
        ip: ['10.0.0.2', '127.0.0.1', '::1']
    });
});

test('machine addresses: every interface but link-local IPv6 (a certificate cannot say its zone)', () => {
    const info = (address: string, family: 'IPv4' | 'IPv6', internal = false) => ({ address, family, internal, netmask: '', mac: '', cidr: null }) as never;
    assert.deepEqual(machineAddresses({ lo: [info('127.0.0.1', 'IPv4', true)], eth0: [info('192.168.1.10', 'IPv4'), info('fe80::1', 'IPv6'), info('fd00::10', 'IPv6')], wlan0: undefined }), [
        '127.0.0.1',
        '192.168.1.10',
        'fd00::10'
    ]);
});

test('renewal: good until RENEW_BEFORE_DAYS are left, then due; expired, not yet valid, another CA, a missing name', async () => {
    const ca = await createCa({ hostname: 'pi.village.lan', scope: caScope('pi.village.lan', 'village.lan'), now: T0 });
    const leaf = await issueLeaf(ca, names, T0);
    assert.equal(renewalReason(leaf.certPem, ca.certPem, names, T0), null);
    const lastGoodDay = new Date(T0.getTime() + (LEAF_VALIDITY_DAYS - RENEW_BEFORE_DAYS - 1) * DAY);
    assert.equal(renewalReason(leaf.certPem, ca.certPem, names, lastGoodDay), null);
    const due = new Date(T0.getTime() + (LEAF_VALIDITY_DAYS - RENEW_BEFORE_DAYS + 1) * DAY);
    assert.match(renewalReason(leaf.certPem, ca.certPem, names, due)!, /expires on .*less than 30 days/);
    assert.match(renewalReason(leaf.certPem, ca.certPem, names, new Date(T0.getTime() + (LEAF_VALIDITY_DAYS + 1) * DAY))!, /expired on/);
    assert.match(renewalReason(leaf.certPem, ca.certPem, names, new Date(T0.getTime() - 3 * DAY))!, /valid only from/);
    const otherCa = await createCa({ hostname: 'pi.village.lan', scope: caScope('pi.village.lan', 'village.lan'), now: T0 });
    assert.match(renewalReason(leaf.certPem, otherCa.certPem, names, T0)!, /not from the local CA/);
    const moved = leafNames({ hostname: 'pi.village.lan', localDomain: 'village.lan', addresses: ['192.168.1.77'] });
    assert.match(renewalReason(leaf.certPem, ca.certPem, moved, T0)!, /does not name 192\.168\.1\.77/);
    const renamed = leafNames({ hostname: 'mail.village.lan', localDomain: 'village.lan', addresses: [] });
    assert.match(renewalReason(leaf.certPem, ca.certPem, renamed, T0)!, /does not name mail\.village\.lan/);
    assert.match(renewalReason('garbage', ca.certPem, names, T0)!, /cannot be read/);
});

test('issued certificates: the CA signs certificates only; the leaf is CA:FALSE for serverAuth, signed by the CA', async () => {
    const crypto = await import('node:crypto');
    const ca = await createCa({ hostname: 'pi.village.lan', scope: caScope('pi.village.lan', 'village.lan'), now: T0 });
    const leaf = await issueLeaf(ca, names, T0);
    const caCert = new crypto.X509Certificate(ca.certPem);
    const leafCert = new crypto.X509Certificate(leaf.certPem);
    assert.equal(caCert.ca, true);
    assert.equal(leafCert.ca, false);
    assert.ok(leafCert.checkIssued(caCert) && leafCert.verify(caCert.publicKey));
    assert.deepEqual(leafCert.keyUsage, ['1.3.6.1.5.5.7.3.1']);
    assert.equal(leafCert.subjectAltName, 'DNS:pi.village.lan, DNS:autoconfig.village.lan, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, IP Address:192.168.1.10');
    assert.match(caCert.subject, /CN=mailmule CA pi\.village\.lan 2026-03-01/);
});
