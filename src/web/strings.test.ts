import { test } from 'node:test';
import assert from 'node:assert/strict';
import { html } from 'hono/html';
import { LANGUAGES, stringsFor, stringsNamed } from './strings';
import { adminPart } from './admin';
import { syncPart } from './sync';
import { accountPage, loginPage } from './pages';
import { mineView } from './mine';

/** Strings that are the same word in both languages. */
const SAME = new Set(['port', 'sslTls', 'starttls', 'messages']);

test('English and French each have every string, and French translates each one', () => {
    const en = stringsNamed('en')!;
    const fr = stringsNamed('fr')!;
    assert.deepEqual(LANGUAGES, ['en', 'fr']);
    assert.deepEqual(Object.keys(fr).sort(), Object.keys(en).sort());
    const french = new Map<string, unknown>(Object.entries(fr));
    for (const [key, english] of Object.entries(en)) {
        if (typeof english === 'string' && !SAME.has(key)) assert.notEqual(french.get(key), english, `fr.${key} is not translated`);
    }
    assert.equal(stringsNamed('constructor'), null);
    assert.equal(stringsNamed(undefined), null);
});

test('Accept-Language picks the preferred language there is a table for', () => {
    assert.equal(stringsFor('fr-FR,fr;q=0.9,en;q=0.5').lang, 'fr');
    assert.equal(stringsFor('de-DE,fr;q=0.7,en;q=0.8').lang, 'en');
    assert.equal(stringsFor('de, fr;q=0.5').lang, 'fr');
    assert.equal(stringsFor('fr;q=0, en').lang, 'en');
    assert.equal(stringsFor('constructor').lang, 'en');
    assert.equal(stringsFor(undefined).lang, 'en');
});

/** Every English string of more than one word (so none that French shares by chance). */
function englishPhrases(): string[] {
    const en = stringsNamed('en')!;
    return Object.values(en).filter((v): v is string => typeof v === 'string' && v.includes(' '));
}

test('a French page holds no English string: every word on the pages comes from the tables', async () => {
    const fr = stringsNamed('fr')!;
    const formatTime = (at: number) => `T${at}`;
    const mine = mineView(fr, { userId: 1, accounts: ['a@x.org'], queue: [], usage: [], lastRun: null, problems: [], nextRun: null, held: [], formatTime });
    const now = new Date(2026, 5, 15);
    const rendered = [
        loginPage(fr, fr.loginFailed),
        accountPage(fr, {
            name: 'amina',
            csrf: 't',
            addresses: ['amina@village.lan'],
            hostname: 'pi',
            imap: [{ port: 993, security: 'tls' }],
            smtp: [{ port: 587, security: 'starttls' }],
            mine,
            admin: true
        }),
        adminPart(fr, {
            csrf: 't',
            now,
            lastRun: {
                id: 1,
                trigger: 'x',
                startedAt: 1,
                finishedAt: 2,
                status: 'ok',
                message: null,
                accounts: [{ account: 'a@x.org', bytesSent: 1, bytesReceived: 2, messagesSent: 0, messagesReceived: 0, durationMs: 1, errors: [] }]
            },
            nextRun: null,
            running: false,
            recentRuns: [{ id: 1, trigger: 'x', startedAt: 1, finishedAt: 2, status: 'partial', message: null, bytesSent: 1, bytesReceived: 2, messagesSent: 0, messagesReceived: 0 }],
            perDay: [{ period: '2026-06-15', account: 'a@x.org', bytesSent: 1, bytesReceived: 2 }],
            perMonth: [{ period: '2026-06', account: 'a@x.org', bytesSent: 1, bytesReceived: 2 }],
            budgetPerDay: 0,
            queue: [],
            users: [{ name: 'amina', mailboxes: 5, hasPassword: false, messages: 0, bytes: 0 }],
            disk: { free: 1, total: 2 },
            formatTime,
            dayLabel: d => String(d.getDate()),
            monthLabel: d => String(d.getMonth())
        }),
        syncPart(
            fr,
            {
                trigger: 'x',
                startedAt: 1,
                accounts: [{ account: 'a@x.org', user: 'amina', phase: 'receive', activity: 'x', elapsedMs: 1, messagesSent: 0, messagesReceived: 0, bytesSent: 0, bytesReceived: 0 }],
                outcome: null
            },
            formatTime
        ),
        syncPart(fr, null, formatTime)
    ];
    const pages: string[] = [];
    for (const page of rendered) pages.push((await html`${page}`).toString());
    for (const phrase of englishPhrases()) {
        for (const page of pages) assert.ok(!page.includes(phrase), `English on a French page: "${phrase}"`);
    }
    assert.match(pages[2], /Synchroniser maintenant/);
});
