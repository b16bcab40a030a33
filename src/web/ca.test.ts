import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { createCa } from '../tls/issue';
import { caRoutes, mobileconfig } from './ca';

/** A CA as src/tls makes it (CN "mailmule CA test <date>"). */
async function someCa(): Promise<string> {
    return (await createCa({ hostname: 'test', scope: { dns: ['test'], ip: [] }, now: new Date() })).certPem;
}

test('the iOS profile is the same for the same CA (installing it again replaces it) and names it', async () => {
    const cert = new crypto.X509Certificate(await someCa());
    const profile = mobileconfig(cert, 'a & b');
    assert.equal(profile, mobileconfig(cert, 'a & b'));
    const uuids = profile.match(/<key>PayloadUUID<\/key>\s*<string>([^<]+)<\/string>/g) ?? [];
    assert.equal(uuids.length, 2);
    for (const entry of uuids) assert.match(entry, /[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-8[0-9A-F]{3}-[0-9A-F]{12}/);
    assert.match(profile, /<string>mailmule CA test \d{4}-\d\d-\d\d<\/string>/);
    assert.match(profile, /<string>a &#38; b<\/string>/);
});

test('the page escapes the hostname, picks the language, and says so when there is no local CA', async () => {
    const pem = await someCa();
    const app = caRoutes({ hostname: () => '<b>pi</b>', localCa: () => pem });
    const page = await (await app.request('/ca', { headers: { 'accept-language': 'fr-FR,fr;q=0.9' } })).text();
    assert.ok(page.includes('&lt;b&gt;pi&lt;/b&gt;') && !page.includes('<b>pi</b>'));
    assert.match(page, /lang="fr"/);
    assert.ok(page.includes(new crypto.X509Certificate(pem).fingerprint256));
    const none = caRoutes({ hostname: () => 'pi', localCa: () => null });
    assert.equal((await none.request('/ca.crt')).status, 404);
    assert.equal((await none.request('/ca.mobileconfig')).status, 404);
    assert.match(await (await none.request('/ca')).text(), /administrator provided/);
});
