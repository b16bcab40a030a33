/**
 * The web listener end to end: a real gateway with its plain HTTP and HTTPS listeners on
 * loopback, driven by Node's fetch (undici) over TCP. The HTTPS connections are verified against
 * the gateway's own certificate (added to this process's trusted certificates), never with
 * verification turned off. Autoconfig files are read as Thunderbird reads them
 * (test/support/thunderbird-autoconfig.ts).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import { startGateway, tempDir, upstreamAccount, writeConfig, type Gateway } from './support/gateway';
import { Daemon } from '../src/daemon';
import { ListenError } from '../src/listen';
import { createLogger } from '../src/log';
import { readAutoconfigs, tryAutoconfigs } from './support/thunderbird-autoconfig';
import { imapLoginSucceeds } from './support/imap-login';

const ALICE_PW = 'alice-web-pw-1';
const BOB_PW = 'bob-web-pw-1';
let gateway: Gateway;
let http: string;
let https: string;

before(async () => {
    gateway = await startGateway({
        web: true,
        users: [
            { name: 'alice', password: ALICE_PW, accountsYaml: upstreamAccount('Alice.Upstream@Example.org') },
            { name: 'bob', password: BOB_PW, accountsYaml: upstreamAccount('bob@upstream.test') },
            { name: 'carol', password: 'carol-web-pw-1' },
            // Only ever logs in to look at the others' mail (and must not see it): no other test changes him.
            { name: 'dan', password: 'dan-web-pw-1' }
        ],
        // Small delays, few guesses: the shared penalty is seen without waiting 15 s.
        authPenalty: { baseDelayMs: 1, maxDelayMs: 5, maxGuesses: 3 }
    });
    http = `http://127.0.0.1:${gateway.webPort}`;
    https = `https://127.0.0.1:${gateway.websPort}`;
    const cert = fs.readFileSync(path.join(gateway.dir, 'data', 'tls', 'cert.pem'), 'utf8');
    tls.setDefaultCACertificates([...tls.getCACertificates('default'), cert]);
});

after(async () => {
    await gateway.stop();
});

/** A browser-like form POST: same-origin Origin header, urlencoded body, no redirect following. */
function post(base: string, pathname: string, fields: Record<string, string>, cookie?: string): Promise<Response> {
    return fetch(base + pathname, {
        method: 'POST',
        redirect: 'manual',
        headers: { origin: base, 'content-type': 'application/x-www-form-urlencoded', ...(cookie ? { cookie } : {}) },
        body: new URLSearchParams(fields).toString()
    });
}

function get(url: string, cookie?: string): Promise<Response> {
    return fetch(url, { redirect: 'manual', headers: cookie ? { cookie } : {} });
}

async function login(user: string, password: string): Promise<{ cookie: string; csrf: string }> {
    const res = await post(https, '/login', { username: user, password });
    assert.equal(res.status, 303, await res.text());
    const setCookie = res.headers.get('set-cookie') ?? '';
    const cookie = setCookie.split(';')[0];
    const page = await (await get(https + '/', cookie)).text();
    const csrf = /name="csrf" value="([^"]+)"/.exec(page)?.[1];
    assert.ok(csrf, 'the page carries a CSRF token');
    return { cookie, csrf };
}

test('autoconfig answers for every address a user logs in with, mapped to the user name, as Thunderbird reads it', async () => {
    const asked: { address: string; user: string; xml: string }[] = [];
    for (const [address, user] of [
        ['alice@mailmule.lan', 'alice'],
        ['ALICE@MAILMULE.LAN', 'alice'],
        ['alice.upstream@example.org', 'alice'],
        ['bob@upstream.test', 'bob']
    ]) {
        for (const file of ['/.well-known/autoconfig/mail/config-v1.1.xml', '/mail/config-v1.1.xml']) {
            const res = await get(`${http}${file}?emailaddress=${encodeURIComponent(address)}`);
            assert.equal(res.status, 200, `${file} for ${address}`);
            assert.match(res.headers.get('content-type') ?? '', /^text\/xml/);
            asked.push({ address, user, xml: await res.text() });
        }
    }
    // Over HTTPS too, verified against the gateway's certificate.
    const secure = await get(`${https}/mail/config-v1.1.xml?emailaddress=carol@mailmule.lan`);
    asked.push({ address: 'carol@mailmule.lan', user: 'carol', xml: await secure.text() });
    const configs = await readAutoconfigs(asked.map(a => a.xml));
    asked.forEach(({ address, user }, index) => {
        const config = configs[index];
        assert.equal(config.id, 'mailmule.lan');
        assert.ok(config.domains.includes(address.split('@')[1].toLowerCase()));
        assert.deepEqual(
            [config.incoming, ...config.incomingAlternatives].map(s => [s.type, s.hostname, s.port, s.socketType, s.username, s.authentication]),
            [
                ['imap', 'mailmule.test', gateway.imapsPort, 'SSL', user, 'password-cleartext'],
                ['imap', 'mailmule.test', gateway.imapPort, 'STARTTLS', user, 'password-cleartext']
            ]
        );
        assert.deepEqual(
            [config.outgoing, ...config.outgoingAlternatives].map(s => [s.type, s.hostname, s.port, s.socketType, s.username, s.authentication]),
            [
                ['smtp', 'mailmule.test', gateway.smtpsPort, 'SSL', user, 'password-cleartext'],
                ['smtp', 'mailmule.test', gateway.smtpPort, 'STARTTLS', user, 'password-cleartext']
            ]
        );
    });
});

test('autoconfig for an address nobody here has, or none, is 404', async () => {
    for (const query of ['?emailaddress=mallory@mailmule.lan', '?emailaddress=alice', '', '?emailaddress=' + 'a'.repeat(5000) + '@x.org']) {
        const res = await get(`${http}/mail/config-v1.1.xml${query}`);
        assert.equal(res.status, 404, query.slice(0, 40));
        await res.arrayBuffer();
    }
});

test('plain HTTP moves everything but autoconfig to HTTPS; nothing else is reachable without logging in', async () => {
    const res = await get(`${http}/password?x=1`);
    assert.equal(res.status, 308);
    assert.equal(res.headers.get('location'), `${https}/password?x=1`);
    const home = await get(`${https}/`);
    assert.equal(home.status, 303);
    assert.equal(home.headers.get('location'), '/login');
    const loginPage = await get(`${https}/login`);
    assert.equal(loginPage.status, 200);
    assert.match(await loginPage.text(), /<form method="post" action="\/login">/);
    // A POST without a session is refused, whatever it carries.
    const anonymous = await post(https, '/password', { current: 'x', next: 'y', repeat: 'y', csrf: 'z' });
    assert.equal(anonymous.status, 403);
});

test('logging in: a wrong password is refused, a right one gives an HttpOnly, Secure, SameSite session; the page shows only this user', async () => {
    const wrong = await post(https, '/login', { username: 'alice', password: 'nope' });
    assert.equal(wrong.status, 401);
    assert.match(await wrong.text(), /Wrong user name or password/);
    assert.equal(wrong.headers.get('set-cookie'), null);
    const res = await post(https, '/login', { username: 'alice.upstream@example.org', password: ALICE_PW });
    assert.equal(res.status, 303);
    const setCookie = res.headers.get('set-cookie') ?? '';
    assert.match(setCookie, /HttpOnly/i);
    assert.match(setCookie, /Secure/i);
    assert.match(setCookie, /SameSite=Strict/i);
    const page = await (await get(`${https}/`, setCookie.split(';')[0])).text();
    assert.match(page, /Hello, alice/);
    assert.match(page, /alice\.upstream@example\.org/);
    assert.doesNotMatch(page, /bob/);
    // French for a French browser.
    const fr = await fetch(`${https}/`, { redirect: 'manual', headers: { cookie: setCookie.split(';')[0], 'accept-language': 'fr-FR,fr;q=0.9,en;q=0.5' } });
    assert.match(await fr.text(), /Bonjour, alice/);
    assert.ok(!gateway.logLines.some(line => line.includes(ALICE_PW)), 'no password in the log');
});

test('a cross-site form post is refused (Origin), and so is one without the session token', async () => {
    const { cookie, csrf } = await login('bob', BOB_PW);
    const crossSite = await fetch(`${https}/password`, {
        method: 'POST',
        redirect: 'manual',
        headers: { origin: 'http://evil.example', 'content-type': 'application/x-www-form-urlencoded', cookie },
        body: new URLSearchParams({ csrf, current: BOB_PW, next: 'changed-by-evil', repeat: 'changed-by-evil' }).toString()
    });
    assert.equal(crossSite.status, 403);
    const noToken = await post(https, '/password', { current: BOB_PW, next: 'changed-by-evil', repeat: 'changed-by-evil' }, cookie);
    assert.equal(noToken.status, 403);
    // Another user's token does not work with this session.
    const alice = await login('alice', ALICE_PW);
    const otherToken = await post(https, '/password', { csrf: alice.csrf, current: BOB_PW, next: 'changed-by-evil', repeat: 'changed-by-evil' }, cookie);
    assert.equal(otherToken.status, 403);
    assert.equal(await imapLoginSucceeds(gateway.imapsPort, 'bob', BOB_PW), true, 'bob keeps his password');
});

test('changing the password: the current one is required; then IMAP takes only the new one and other sessions end', async () => {
    const first = await login('carol', 'carol-web-pw-1');
    const second = await login('carol', 'carol-web-pw-1');
    const mismatch = await post(https, '/password', { csrf: first.csrf, current: 'carol-web-pw-1', next: 'new-carol-pw', repeat: 'other-carol-pw' }, first.cookie);
    assert.equal(mismatch.status, 400);
    const short = await post(https, '/password', { csrf: first.csrf, current: 'carol-web-pw-1', next: 'short', repeat: 'short' }, first.cookie);
    assert.equal(short.status, 400);
    const wrongCurrent = await post(https, '/password', { csrf: first.csrf, current: 'not-it', next: 'new-carol-pw', repeat: 'new-carol-pw' }, first.cookie);
    assert.equal(wrongCurrent.status, 401);
    const ok = await post(https, '/password', { csrf: first.csrf, current: 'carol-web-pw-1', next: 'new-carol-pw', repeat: 'new-carol-pw' }, first.cookie);
    assert.equal(ok.status, 200);
    assert.match(await ok.text(), /Your password is changed/);
    assert.equal(await imapLoginSucceeds(gateway.imapsPort, 'carol', 'new-carol-pw'), true, 'IMAP takes the new password');
    assert.equal(await imapLoginSucceeds(gateway.imapsPort, 'carol', 'carol-web-pw-1'), false, 'IMAP refuses the old one');
    assert.equal((await get(`${https}/`, second.cookie)).status, 303, 'the other session ended');
    assert.equal((await get(`${https}/`, first.cookie)).status, 200, 'this session goes on');
    const logout = await post(https, '/logout', { csrf: first.csrf }, first.cookie);
    assert.equal(logout.status, 303);
    assert.equal((await get(`${https}/`, first.cookie)).status, 303, 'logged out');
});

test('web login failures count in the same penalty as IMAP and SMTP', async () => {
    // Three different wrong passwords for bob on the web page (maxGuesses 3) ...
    for (const guess of ['guess-1', 'guess-2', 'guess-3']) {
        assert.equal((await post(https, '/login', { username: 'bob', password: guess })).status, 401);
    }
    // ... and bob is refused from this address over IMAP too, even with his password.
    assert.equal(await imapLoginSucceeds(gateway.imapsPort, 'bob', BOB_PW), false);
    // Nobody else is.
    assert.equal(await imapLoginSucceeds(gateway.imapsPort, 'alice', ALICE_PW), true);
});

test('hostile input is answered and the listener stays up: oversized body, header, garbage', async () => {
    const big = await fetch(`${https}/login`, {
        method: 'POST',
        headers: { origin: https, 'content-type': 'application/x-www-form-urlencoded' },
        body: 'username=alice&password=' + 'x'.repeat(100_000)
    });
    assert.equal(big.status, 413);
    const hugeHeader = await fetch(`${https}/login`, { headers: { 'x-junk': 'y'.repeat(20_000) } });
    assert.equal(hugeHeader.status, 431);
    const reply = await new Promise<string>((resolve, reject) => {
        const socket = net.connect(gateway.webPort, '127.0.0.1', () => socket.write('GARBAGE \x00\x01 / NOT-HTTP\r\n\r\n'));
        const chunks: Buffer[] = [];
        socket.on('data', chunk => chunks.push(chunk));
        socket.on('end', () => resolve(Buffer.concat(chunks).toString('latin1')));
        socket.on('error', reject);
        socket.setTimeout(5000, () => reject(new Error('no answer to garbage')));
    });
    assert.match(reply, /^HTTP\/1\.1 400/);
    const still = await get(`${http}/mail/config-v1.1.xml?emailaddress=alice@mailmule.lan`);
    assert.equal(still.status, 200);
});

test('the Thunderbird reader used above refuses what Thunderbird refuses', async () => {
    const good = await (await get(`${http}/mail/config-v1.1.xml?emailaddress=alice@mailmule.lan`)).text();
    const broken = [
        good.replace(/<username>alice<\/username>/g, ''),
        good.replace(/<socketType>(SSL|STARTTLS)<\/socketType>/g, '<socketType>TLS</socketType>'),
        good.replace(/<hostname>mailmule.test<\/hostname>/g, '<hostname>mail host</hostname>'),
        good.replace('<emailProvider id="mailmule.lan">', '<emailProvider id="bad id">'),
        good.replace('</clientConfig>', '')
    ];
    const read = await tryAutoconfigs([good, ...broken]);
    assert.ok(!(read[0] instanceof Error), read[0] instanceof Error ? read[0].message : '');
    assert.deepEqual(
        read.slice(1).map(r => (r instanceof Error ? r.message.split(':')[0] : 'accepted')),
        ['<incomingServer> has no <username>', 'need proper <socketType> in XML', 'hostname_syntax.error', 'hostname_syntax.error', 'not well-formed XML']
    );
});

test('a villager sees their own outgoing mail and its state, and nobody else’s', async () => {
    const transport = nodemailer.createTransport({
        host: '127.0.0.1',
        port: gateway.smtpsPort,
        secure: true,
        auth: { user: 'alice', pass: ALICE_PW },
        tls: { rejectUnauthorized: false }
    });
    await transport.sendMail({ from: 'Alice.Upstream@Example.org', to: 'friend@elsewhere.test', subject: 'Seeds for the co-op <b>', text: 'Hello.' });
    transport.close();
    const alice = await login('alice', ALICE_PW);
    const page = await (await get(`${https}/`, alice.cookie)).text();
    const row = /<tr class="waiting">\s*<td>([^<]*)<\/td>\s*<td>([^<]*)<\/td>\s*<td>([^<]*)<\/td>/.exec(page);
    assert.ok(row, 'a waiting row in the outgoing table');
    assert.deepEqual(row.slice(1), ['Seeds for the co-op &lt;b&gt;', 'friend@elsewhere.test', 'Waiting for the next uplink']);
    assert.match(page, /alice\.upstream@example\.org<\/strong>: No uplink has run yet/);
    const dan = await login('dan', 'dan-web-pw-1');
    const other = await (await get(`${https}/`, dan.cookie)).text();
    assert.doesNotMatch(other, /Seeds for the co-op/);
    assert.match(other, /Nothing waiting, nothing sent lately/);
});

test('every page, as served, weighs well under 100 KB (no script, no framework)', async () => {
    const alice = await login('alice', ALICE_PW);
    for (const [url, cookie] of [
        [`${https}/login`, undefined],
        [`${https}/`, alice.cookie],
        [`${https}/nothing-here`, alice.cookie]
    ] as const) {
        const res = await get(url, cookie);
        const body = await res.text();
        assert.ok(Buffer.byteLength(body) < 20 * 1024, `${url}: ${Buffer.byteLength(body)} bytes`);
        assert.doesNotMatch(body, /<script|<link /i, `${url} loads nothing else`);
    }
});

test('a web port already in use stops the start, naming the listener (all or none)', async () => {
    const blocker = net.createServer();
    await new Promise<void>(resolve => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    const dir = tempDir();
    try {
        const { configFile } = writeConfig(dir, { extraYaml: `web:\n  listeners:\n    - { host: 127.0.0.1, port: ${port}, security: plain }` });
        const daemon = new Daemon(configFile, { logger: createLogger('silent') });
        await assert.rejects(daemon.start(), (err: unknown) => {
            assert.ok(err instanceof ListenError);
            assert.match(err.message, new RegExp(`cannot start the web plain listener: port ${port} on 127\\.0\\.0\\.1 is already in use`));
            return true;
        });
    } finally {
        blocker.close();
        fs.rmSync(dir, { recursive: true, force: true });
    }
});

test('a message held upstream: "fetch at the next uplink" moves it into Fetch full, as a mail app would', async () => {
    const store = gateway.daemon.store;
    const alice = store.users.get('alice')!;
    const inbox = store.mailboxes.get(alice.id, 'INBOX')!;
    const raw = Buffer.from('From: x@example.org\r\nTo: alice.upstream@example.org\r\nSubject: Big photos\r\nMessage-ID: <big@example.org>\r\n\r\n(the text; 3 attachments left upstream)\r\n');
    const uid = store.sync.importUpstream(
        alice.id,
        inbox.id,
        raw,
        store.messages.analyse(raw),
        { account: 'Alice.Upstream@Example.org', folder: 'INBOX', uidValidity: 7, uid: 42 },
        { flags: [], idate: Date.now(), stub: true }
    )!;
    const session = await login('alice', ALICE_PW);
    const page = await (await get(`${https}/`, session.cookie)).text();
    assert.match(page, /Large messages left upstream/);
    assert.match(page, /Big photos/);
    // Dan neither sees it nor can ask for it.
    const dan = await login('dan', 'dan-web-pw-1');
    assert.doesNotMatch(await (await get(`${https}/`, dan.cookie)).text(), /Big photos/);
    const stolen = await post(https, '/held', { csrf: dan.csrf, mailbox: String(inbox.id), uid: String(uid) }, dan.cookie);
    assert.equal(stolen.status, 400);
    const asked = await post(https, '/held', { csrf: session.csrf, mailbox: String(inbox.id), uid: String(uid) }, session.cookie);
    assert.equal(asked.status, 200);
    assert.match(await asked.text(), /Asked for: the next uplink brings it whole/);
    // Over IMAP: the message is in Fetch full, where the uplink looks for it, and gone from INBOX.
    const imap = new ImapFlow({ host: '127.0.0.1', port: gateway.imapsPort, secure: true, auth: { user: 'alice', pass: ALICE_PW }, logger: false, tls: { rejectUnauthorized: false } });
    await imap.connect();
    try {
        const lock = await imap.getMailboxLock('Fetch full');
        try {
            const subjects: string[] = [];
            for await (const message of imap.fetch('1:*', { envelope: true })) subjects.push(message.envelope?.subject ?? '');
            assert.deepEqual(subjects, ['Big photos']);
        } finally {
            lock.release();
        }
        const inboxLock = await imap.getMailboxLock('INBOX');
        try {
            assert.deepEqual(await imap.search({ header: { 'message-id': '<big@example.org>' } }, { uid: true }), [], 'not in INBOX any more');
        } finally {
            inboxLock.release();
        }
    } finally {
        await imap.logout();
    }
    assert.doesNotMatch(await (await get(`${https}/`, session.cookie)).text(), /Big photos/, 'no longer listed as held');
});

test('the status page is for admins only: runs, every queue entry with retry and drop, users, disk', async () => {
    const dan = await login('dan', 'dan-web-pw-1');
    assert.equal((await get(`${https}/admin`, dan.cookie)).status, 403, 'not an admin yet');
    fs.writeFileSync(gateway.accountsFile, fs.readFileSync(gateway.accountsFile, 'utf8').replace('  - name: dan\n', '  - name: dan\n    admin: true\n'));
    assert.equal(gateway.daemon.reload(), true);
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: gateway.smtpsPort, secure: true, auth: { user: 'alice', pass: ALICE_PW }, tls: { rejectUnauthorized: false } });
    await transport.sendMail({ from: 'Alice.Upstream@Example.org', to: 'mayor@elsewhere.test', subject: 'For the admin', text: 'Hello.' });
    transport.close();
    const entry = gateway.daemon.store.queue.list().find(e => e.subject === 'For the admin')!;
    const page = await (await get(`${https}/admin`, dan.cookie)).text();
    assert.match(page, /Gateway status/);
    assert.match(page, /For the admin/);
    assert.match(page, /<td>alice<\/td>/);
    assert.match(page, /id="disk">Disk: [\d.]+ [KMG]?B free of/);
    const alice = await login('alice', ALICE_PW);
    assert.equal((await get(`${https}/admin`, alice.cookie)).status, 403);
    const notAdmin = await post(https, '/admin/queue', { csrf: alice.csrf, id: String(entry.id), action: 'drop' }, alice.cookie);
    assert.equal(notAdmin.status, 403);
    assert.equal((await post(https, '/admin/sync', { csrf: alice.csrf }, alice.cookie)).status, 403, 'no sync now for a villager');
    assert.equal((await get(`${https}/admin/sync`, alice.cookie)).status, 403);
    assert.equal(gateway.daemon.store.runs.last(), null, 'no run started');
    // A queued entry is due already: retry has nothing to do; drop removes it.
    assert.equal((await post(https, '/admin/queue', { csrf: dan.csrf, id: String(entry.id), action: 'retry' }, dan.cookie)).status, 400);
    const dropped = await post(https, '/admin/queue', { csrf: dan.csrf, id: String(entry.id), action: 'drop' }, dan.cookie);
    assert.equal(dropped.status, 200);
    assert.match(await dropped.text(), /Dropped\./);
    assert.equal(gateway.daemon.store.queue.get(entry.id), null);
    assert.equal((await post(https, '/admin/queue', { csrf: dan.csrf, id: String(entry.id), action: 'drop' }, dan.cookie)).status, 400, 'gone');
});
