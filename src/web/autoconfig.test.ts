import { test } from 'node:test';
import assert from 'node:assert/strict';
import { autoconfigXml, isHostName } from './autoconfig';

const base = {
    hostname: 'pi.mailmule.lan',
    localDomain: 'mailmule.lan',
    address: 'amina@example.com',
    username: 'amina',
    imap: [
        { port: 143, security: 'starttls' as const },
        { port: 993, security: 'tls' as const }
    ],
    smtp: [
        { port: 587, security: 'starttls' as const },
        { port: 465, security: 'tls' as const }
    ]
};

test('TLS ports come first, STARTTLS after; both domains listed; the user name as given', () => {
    const xml = autoconfigXml(base)!;
    assert.ok(xml.indexOf('<port>993</port>') < xml.indexOf('<port>143</port>'));
    assert.ok(xml.indexOf('<port>465</port>') < xml.indexOf('<port>587</port>'));
    assert.match(xml, /<domain>example\.com<\/domain>\n {4}<domain>mailmule\.lan<\/domain>/);
    assert.equal(xml.match(/<username>amina<\/username>/g)?.length, 4);
    assert.match(xml, /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<clientConfig version="1\.1">/);
});

test('nothing usable, no file: no IMAP or SMTP listener, or a host name Thunderbird refuses', () => {
    assert.equal(autoconfigXml({ ...base, imap: [] }), null);
    assert.equal(autoconfigXml({ ...base, smtp: [] }), null);
    assert.equal(autoconfigXml({ ...base, hostname: 'bad host' }), null);
    assert.equal(autoconfigXml({ ...base, hostname: 'pi_box' }), null);
});

test('markup in a user name is escaped', () => {
    assert.match(autoconfigXml({ ...base, username: 'a<b>&"c' })!, /<username>a&lt;b&gt;&amp;&quot;c<\/username>/);
});

test('host names as Thunderbird takes them', () => {
    for (const ok of ['mailmule.lan', 'pi', 'a-b.c1', '192.168.1.2']) assert.equal(isHostName(ok), true, ok);
    for (const bad of ['', '-a.lan', 'a..b', 'a b', 'a_b', 'x'.repeat(64) + '.lan']) assert.equal(isHostName(bad), false, bad);
});
