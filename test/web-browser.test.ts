/**
 * The web pages in a real browser: Debian's Chromium, headless, driven by playwright-core (no
 * browser download: it runs /usr/bin/chromium, or MAILMULE_CHROMIUM). A real gateway with its
 * web listeners, and a real upstream provider (Dovecot + Postfix on loopback) for its uplink.
 * Flows, as people click them: a villager logs in, sees a queued message and its state, asks
 * for a message held upstream and sees it moved, changes the password and then logs in over
 * IMAP with the new one; the admin presses "sync now", follows the run live and sees it in the
 * chart and the run history; an autoconfig request is read as Thunderbird reads it; the
 * certificate page is reached from the login page and its CA, downloaded over plain HTTP, is the
 * one the gateway's IMAP over TLS verifies against.
 *
 * HTTPS: Chromium trusts exactly the gateway's key (--ignore-certificate-errors-spki-list with
 * its SPKI hash), nothing else; certificate checks are not turned off.
 *
 * Every page, with everything it loads, is measured as the browser received it (< 100 KB).
 * Screenshots of each page are taken; with UPDATE_SCREENSHOTS=1 they are written to docs/ (the
 * README shows them), else to the test's temporary directory.
 *
 * Skipped, saying why, only when Chromium is not installed (CI installs it: .ci/run).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import nodemailer from 'nodemailer';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startGateway, tempDir, type Gateway } from './support/gateway';
import { headerValue, startUpstream, type Upstream } from './support/upstream';
import { ALICE, aliceAccountYaml } from './support/uplink-account';
import { insertPastRun } from './support/store';
import { startLinkProxy, type LinkProxy } from './support/link-proxy';
import { readAutoconfigs } from './support/thunderbird-autoconfig';
import { imapLoginSucceeds } from './support/imap-login';

const CHROMIUM = process.env.MAILMULE_CHROMIUM ?? '/usr/bin/chromium';
const SKIP = fs.existsSync(CHROMIUM) ? false : `Chromium is not installed at ${CHROMIUM} (apt-get install chromium; CI installs it): the browser tests are skipped`;
const PAGE_BUDGET = 100 * 1024;
const SHOTS = process.env.UPDATE_SCREENSHOTS === '1' ? path.join(__dirname, '..', '..', 'docs') : tempDir('mailmule-shots-');

const ALICE_PW = 'alice-browser-pw';
const MAYOR_PW = 'mayor-browser-pw';
let upstream: Upstream;
let link: LinkProxy;
let gateway: Gateway;
let browser: Browser;
let https: string;
let http: string;

before(async () => {
    if (SKIP) return;
    upstream = await startUpstream();
    // A slow link (256 kbit/s) to the provider's IMAP, so that a run lasts long enough to be watched.
    link = await startLinkProxy({ targetPort: upstream.imapPort, bandwidthBps: 256_000 });
    gateway = await startGateway({
        web: true,
        users: [
            { name: 'alice', password: ALICE_PW, accountsYaml: aliceAccountYaml(link.port, upstream, ['INBOX']) },
            { name: 'mayor', password: MAYOR_PW, admin: true }
        ],
        extraYaml: 'uplink:\n  budget:\n    perDay: 400KB'
    });
    http = `http://127.0.0.1:${gateway.webPort}`;
    https = `https://127.0.0.1:${gateway.websPort}`;
    const cert = fs.readFileSync(path.join(gateway.dir, 'data', 'tls', 'cert.pem'));
    // Node's own requests (fetch) trust the gateway's certificate too.
    tls.setDefaultCACertificates([...tls.getCACertificates('default'), cert.toString()]);
    const spki = crypto
        .createHash('sha256')
        .update(crypto.createPublicKey(cert).export({ type: 'spki', format: 'der' }))
        .digest('base64');
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: [`--ignore-certificate-errors-spki-list=${spki}`] });
});

after(async () => {
    await browser?.close();
    await gateway?.stop();
    await link?.close();
    await upstream?.stop();
});

/** A fresh browser profile (no cookies) with a phone's width, English unless told. */
async function newContext(options: { width?: number; locale?: string } = {}): Promise<BrowserContext> {
    return browser.newContext({ viewport: { width: options.width ?? 420, height: 480 }, locale: options.locale ?? 'en-GB', deviceScaleFactor: 1 });
}

/**
 * Goes to `url` (or runs `action`, which navigates) and returns the bytes the browser received
 * for the page and everything it loaded with it.
 */
async function weigh(page: Page, action: () => Promise<unknown>): Promise<{ bytes: number; requests: string[] }> {
    const seen: Promise<number>[] = [];
    const requests: string[] = [];
    const onResponse = (response: import('playwright-core').Response) => {
        requests.push(response.url());
        seen.push(
            response.body().then(
                body => body.length,
                () => 0
            )
        );
    };
    page.on('response', onResponse);
    try {
        await action();
        await page.waitForLoadState('load');
    } finally {
        page.off('response', onResponse);
    }
    return { bytes: (await Promise.all(seen)).reduce((a, b) => a + b, 0), requests };
}

async function shot(page: Page, name: string): Promise<void> {
    await page.screenshot({ path: path.join(SHOTS, `web-${name}.png`), fullPage: true, scale: 'css' });
}

async function logIn(page: Page, user: string, password: string): Promise<void> {
    await page.goto(`${https}/login`);
    await page.fill('#username', user);
    await page.fill('#password', password);
    await Promise.all([page.waitForURL(`${https}/`), page.click('button:has-text("Log in")')]);
}

test('autoconfig, fetched by the browser the way Thunderbird asks for it, reads as Thunderbird reads it', { skip: SKIP }, async () => {
    const context = await newContext();
    try {
        const page = await context.newPage();
        const response = await page.goto(`${http}/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=${encodeURIComponent(ALICE)}`);
        assert.ok(response);
        assert.equal(response.status(), 200);
        assert.match(response.headers()['content-type'], /^text\/xml/);
        const [config] = await readAutoconfigs([await response.text()]);
        assert.equal(config.incoming.hostname, 'mailmule.test');
        assert.deepEqual([config.incoming.port, config.incoming.socketType, config.incoming.username], [gateway.imapsPort, 'SSL', 'alice']);
        assert.deepEqual([config.outgoing.port, config.outgoing.socketType, config.outgoing.username], [gateway.smtpsPort, 'SSL', 'alice']);
        assert.ok(config.domains.includes('upstream.test'));
    } finally {
        await context.close();
    }
});

test("the certificate page, linked from the login page, offers the local CA over plain HTTP, and the gateway's TLS verifies against it", { skip: SKIP }, async () => {
    const context = await newContext();
    try {
        const page = await context.newPage();
        await page.goto(`${https}/login`);
        const weight = await weigh(page, () => Promise.all([page.waitForURL(`${https}/ca`), page.click('a[href="/ca"]')]));
        assert.ok(weight.bytes < PAGE_BUDGET, `certificate page: ${weight.bytes} bytes`);
        await shot(page, 'ca');
        const pageText = (await page.textContent('body')) ?? '';

        // The download, as a phone on the village Wi-Fi gets it before it trusts anything: plain HTTP, no redirect.
        const download = await context.request.get(`${http}/ca.crt`, { maxRedirects: 0 });
        assert.equal(download.status(), 200);
        assert.equal(download.headers()['content-type'], 'application/x-x509-ca-cert');
        const ca = new crypto.X509Certificate(await download.body());
        assert.ok(ca.ca, 'the download is a CA certificate');
        assert.ok(pageText.includes(ca.fingerprint256), "the page shows the downloaded certificate's SHA-256 fingerprint");

        // IMAP over TLS, trusting nothing but the downloaded CA, for the gateway's name.
        const socket = tls.connect({ host: '127.0.0.1', port: gateway.imapsPort, servername: 'mailmule.test', ca: [ca.toString()] });
        try {
            const [greeting] = await Promise.all([
                new Promise<string>((resolve, reject) => {
                    socket.once('data', chunk => resolve(chunk.toString('latin1')));
                    socket.once('error', reject);
                }),
                new Promise<void>((resolve, reject) => {
                    socket.once('secureConnect', resolve);
                    socket.once('error', reject);
                })
            ]);
            assert.equal(socket.authorized, true, String(socket.authorizationError));
            assert.match(greeting, /^\* OK/);
        } finally {
            socket.destroy();
        }
    } finally {
        await context.close();
    }
});

test('a villager logs in, sees a queued message and its state, asks for a held message and sees it moved, changes the password', { skip: SKIP }, async () => {
    // A message alice sent from her mail app, waiting for the uplink; one large message held upstream.
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: gateway.smtpsPort, secure: true, auth: { user: 'alice', pass: ALICE_PW }, tls: { rejectUnauthorized: false } });
    await transport.sendMail({ from: ALICE, to: 'cousin@elsewhere.test', subject: 'Harvest dates', text: 'See you on the 12th.' });
    transport.close();
    const store = gateway.daemon.store;
    const user = store.users.get('alice')!;
    const inbox = store.mailboxes.get(user.id, 'INBOX')!;
    const raw = Buffer.from('From: school@example.org\r\nTo: alice@upstream.test\r\nSubject: Class photos\r\nMessage-ID: <photos@example.org>\r\n\r\n(the text; 4 photos left upstream)\r\n');
    store.sync.importUpstream(user.id, inbox.id, raw, store.messages.analyse(raw), { account: ALICE, folder: 'INBOX', uidValidity: 9, uid: 77 }, { flags: [], idate: Date.now(), stub: true });

    const context = await newContext();
    try {
        const page = await context.newPage();
        const loginWeight = await weigh(page, () => page.goto(`${https}/login`));
        assert.ok(loginWeight.bytes < PAGE_BUDGET, `login page: ${loginWeight.bytes} bytes`);
        assert.deepEqual(loginWeight.requests, [`${https}/login`], 'the login page loads nothing else');
        await shot(page, 'login');

        await page.fill('#username', 'alice');
        await page.fill('#password', 'wrong password');
        await page.click('button:has-text("Log in")');
        assert.match((await page.textContent('.error')) ?? '', /Wrong user name or password/);

        await page.fill('#password', ALICE_PW);
        const homeWeight = await weigh(page, () => Promise.all([page.waitForURL(`${https}/`), page.click('button:has-text("Log in")')]));
        assert.ok(homeWeight.bytes < PAGE_BUDGET, `account page: ${homeWeight.bytes} bytes`);
        assert.match((await page.textContent('header')) ?? '', /Hello, alice/);
        const queued = page.locator('#outgoing tr', { hasText: 'Harvest dates' });
        assert.match((await queued.textContent()) ?? '', /cousin@elsewhere\.test\s*Waiting for the next uplink/);
        assert.match((await page.locator('#held').textContent()) ?? '', /Class photos/);
        await shot(page, 'account');

        // "Fetch at the next uplink": the page says so, the row goes, the message is in Fetch full.
        await page.locator('#held tr', { hasText: 'Class photos' }).locator('button').click();
        await page.waitForSelector('p.ok');
        assert.match((await page.textContent('p.ok')) ?? '', /Asked for: the next uplink brings it whole/);
        assert.equal(await page.locator('#held').count(), 0, 'no longer listed as held');
        assert.equal(store.mailboxes.status(user.id, 'Fetch full')?.messages, 1, 'moved into Fetch full, where the uplink looks');

        // The password: IMAP takes the new one and refuses the old.
        await page.fill('#current', ALICE_PW);
        await page.fill('#next', 'a-new-alice-pw');
        await page.fill('#repeat', 'a-new-alice-pw');
        await page.click('button:has-text("Change your password")');
        await page.waitForSelector('p.ok');
        assert.match((await page.textContent('p.ok')) ?? '', /Your password is changed/);
        assert.equal(await imapLoginSucceeds(gateway.imapsPort, 'alice', 'a-new-alice-pw'), true, 'IMAP takes the new password');
        assert.equal(await imapLoginSucceeds(gateway.imapsPort, 'alice', ALICE_PW), false, 'IMAP refuses the old one');
    } finally {
        await context.close();
    }
});

test('the admin presses "sync now", follows the run, and sees it in the chart and the run history', { skip: SKIP }, async () => {
    // Two weeks of earlier runs, so the charts have a history.
    const day = 86400 * 1000;
    const noon = new Date();
    noon.setHours(12, 0, 0, 0);
    // Days back: every fifth day from 40 to 15, then every day from 10 to yesterday.
    const pastDays = [40, 35, 30, 25, 20, 15, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1];
    for (const back of pastDays) {
        insertPastRun(gateway.daemon.store, noon.getTime() - back * day, 'schedule 30 1 * * *', back === 3 ? 'partial' : 'ok', [
            [ALICE, 2000 + ((back * 7919) % 9000), 20_000 + ((back * 104_729) % 90_000)],
            ['bob@example.org', 1000 + ((back * 3571) % 5000), 5000 + ((back * 7727) % 40_000)]
        ]);
    }
    // A 200 KB photo waiting upstream: about 6 s to come down the slow link.
    const photo = crypto
        .randomBytes(150 * 1024)
        .toString('base64')
        .replace(/.{76}/g, '$&\r\n');
    await upstream.deliver(
        ALICE,
        Buffer.from(
            `From: uncle@example.org\r\nTo: ${ALICE}\r\nSubject: The new well\r\nMessage-ID: <well@example.org>\r\nContent-Type: image/jpeg\r\nContent-Transfer-Encoding: base64\r\n\r\n${photo}\r\n`
        )
    );
    const context = await newContext({ width: 760 });
    try {
        const page = await context.newPage();
        await logIn(page, 'mayor', MAYOR_PW);
        await page.click('a[href="/admin"]');
        assert.match((await page.textContent('h1')) ?? '', /Gateway status/);
        assert.match((await page.locator('#queue').textContent()) ?? '', /Harvest dates[\s\S]*Waiting for the next uplink/);
        assert.equal(await page.locator('#chart-day path:not(.budget)').count(), 2, 'the daily chart has bars for both accounts');
        assert.equal(await page.locator('#chart-day path.budget').count(), 1, 'the daily budget marked');

        // Sync now: the run page refreshes itself until the run ends.
        await page.click('#sync-now');
        await page.waitForURL(`${https}/admin/sync`);
        assert.match((await page.textContent('h1')) ?? '', /Uplink run/);
        // Live: a later refresh of the page shows the photo coming down.
        await page.locator('#progress tr.receive').waitFor({ timeout: 30_000 });
        assert.equal(await page.locator('meta[http-equiv="refresh"]').count(), 1, 'the page refreshes while the run goes on');
        assert.match((await page.textContent('#sync-state')) ?? '', /refreshes by itself/);
        await shot(page, 'sync');
        // Meanwhile the status page offers to follow the run, and a second "sync now" is refused.
        const other = await context.newPage();
        await other.goto(`${https}/admin`);
        assert.equal(await other.locator('a[href="/admin/sync"]').textContent(), 'Follow the run in progress');
        assert.equal(await other.locator('#sync-now').count(), 0);
        await other.close();
        const csrf = (await page.locator('header input[name="csrf"]').getAttribute('value')) ?? '';
        const cookie = (await context.cookies(https)).map(c => `${c.name}=${c.value}`).join('; ');
        const again = await fetch(`${https}/admin/sync`, {
            method: 'POST',
            redirect: 'manual',
            headers: { origin: https, cookie, 'content-type': 'application/x-www-form-urlencoded' },
            body: new URLSearchParams({ csrf }).toString()
        });
        assert.equal(again.status, 409);
        assert.match(await again.text(), /An uplink run is already going on/);
        await page.locator('#sync-state.ok').waitFor({ timeout: 60_000 });
        assert.match((await page.textContent('#sync-state')) ?? '', /Finished: all well/);
        assert.match((await page.locator('#progress').textContent()) ?? '', new RegExp(`${ALICE.replace('.', '\\.')}[\\s\\S]*done[\\s\\S]*1 in, 1 out`));
        assert.equal(await page.locator('meta[http-equiv="refresh"]').count(), 0, 'no more refreshing once the run has ended');

        // The provider got the message; the status page shows the run, its bytes, and the message sent.
        await upstream.waitForMessages(upstream.catchall.address, 'INBOX', messages => messages.some(m => headerValue(m.headers, 'subject') === 'Harvest dates'), 30_000);
        const adminWeight = await weigh(page, () => page.click('a[href="/admin"]'));
        assert.ok(adminWeight.bytes < PAGE_BUDGET, `status page: ${adminWeight.bytes} bytes`);
        assert.equal(adminWeight.requests.length, 1, 'the status page loads nothing else (the charts are inline SVG)');
        const latest = page.locator('#runs tr').nth(1);
        assert.match((await latest.textContent()) ?? '', /web: mayor\s*all well/);
        assert.match((await page.locator('#queue').textContent()) ?? '', /Harvest dates[\s\S]*Sent/);
        const aliceBars = (await page.locator('#chart-day path', { hasText: ALICE }).getAttribute('d')) ?? '';
        assert.equal(aliceBars.match(/M/g)?.length, pastDays.filter(back => back < 31).length + 1, 'a bar for alice on each earlier day with a run in the last 31, and today');
        const todayLabel = new Intl.DateTimeFormat('en', { day: 'numeric', month: 'short' }).format(new Date());
        const todayRow = page.locator('#chart-day-figures tr').last();
        assert.match((await todayRow.textContent({ timeout: 1000 })) ?? '', new RegExp(`^\\s*${todayLabel}\\s*[1-9][\\d.]* KB`), 'today: alice’s bytes of this run');
        assert.match((await page.locator('#chart-month').textContent()) ?? '', new RegExp(ALICE.replace('.', '\\.')));
        await shot(page, 'admin');

        // French, chosen at the foot of the page and remembered.
        await page.click('a[hreflang="fr"]');
        assert.match((await page.textContent('h1')) ?? '', /État de la passerelle/);
        await page.goto(`${https}/admin/sync`);
        assert.match((await page.textContent('#sync-state')) ?? '', /Terminée : tout va bien/);
    } finally {
        await context.close();
    }
});
