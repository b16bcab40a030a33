/**
 * The routes. Reachable without logging in: the autoconfig files, the local CA (ca.ts), the
 * login form and nothing else. Every form that changes something carries the session's CSRF token and must come from
 * this origin (hono's csrf(): Origin / Sec-Fetch-Site). Plain HTTP is redirected to HTTPS, when
 * there is an HTTPS listener, except for the autoconfig files and the CA (a device cannot yet trust
 * the LAN certificate when it asks for them).
 */
import { Hono, type Context } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import { bodyLimit } from 'hono/body-limit';
import { csrf } from 'hono/csrf';
import { getCookie, setCookie, deleteCookie } from 'hono/cookie';
import { HTTPException } from 'hono/http-exception';
import { addressesOf } from '../config';
import { storeErrorCode } from '../store';
import { attemptLogin, loginDeps, findLocalUser } from '../auth';
import type { WebContext } from './context';
import { autoconfigXml } from './autoconfig';
import { Sessions, sameToken, type Session } from './sessions';
import { stringsFor, stringsNamed, type Strings } from './strings';
import { accountPage, adminPage, loginPage, messagePage, syncPage } from './pages';
import { adminPart, diskOf } from './admin';
import { mineView } from './mine';
import { DAYS, MONTHS, daysSince, monthsSince } from './history';
import { REFRESH_SECONDS, syncPart } from './sync';
import { CA_PATHS, caRoutes } from './ca';

const COOKIE = 'mailmule_session';
/** The language chosen at the foot of a page (a preference, not a secret: readable by nobody but this site all the same). */
const LANG_COOKIE = 'mailmule_lang';
/** Runs listed under the charts. */
const RECENT_RUNS = 10;
/** Forms here are a few fields: 16 KB is generous. */
export const MAX_BODY_BYTES = 16 * 1024;
const MIN_PASSWORD = 8;
const MAX_PASSWORD = 256;
/** Longest user name or address taken from a form or query. */
const MAX_NAME = 320;
const PUBLIC_PATHS = new Set(['/.well-known/autoconfig/mail/config-v1.1.xml', '/mail/config-v1.1.xml']);

export interface WebAppOptions {
    /** The HTTPS port plain HTTP redirects to; null: no HTTPS listener, pages are served over HTTP. */
    httpsPort: () => number | null;
}

type Env = { Bindings: HttpBindings; Variables: { strings: Strings; session: Session | null } };
type C = Context<Env>;

function remoteAddress(c: C): string {
    return c.env.incoming.socket.remoteAddress ?? 'unknown';
}

function isHttps(c: C): boolean {
    return new URL(c.req.url).protocol === 'https:';
}

function field(body: Record<string, unknown>, name: string, max: number): string {
    const value = body[name];
    return typeof value === 'string' ? value.slice(0, max) : '';
}

export function createWebApp(ctx: WebContext, options: WebAppOptions): Hono<Env> {
    const sessions = new Sessions();
    const app = new Hono<Env>();

    app.use('*', async (c, next) => {
        // ?lang= picks a language and a cookie remembers it; else the browser's Accept-Language.
        const chosen = stringsNamed(c.req.query('lang'));
        if (chosen) setCookie(c, LANG_COOKIE, chosen.lang, { httpOnly: true, sameSite: 'Lax', secure: isHttps(c), path: '/', maxAge: 365 * 86400 });
        c.set('strings', chosen ?? stringsNamed(getCookie(c, LANG_COOKIE)) ?? stringsFor(c.req.header('accept-language')));
        c.set('session', null);
        await next();
        c.header('X-Content-Type-Options', 'nosniff');
        c.header('X-Frame-Options', 'DENY');
        c.header('Referrer-Policy', 'no-referrer');
        c.header('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
        if (!c.res.headers.has('Cache-Control')) c.header('Cache-Control', 'no-store');
    });

    // Plain HTTP: only the public files; the rest moves to HTTPS when there is an HTTPS listener.
    app.use('*', async (c, next) => {
        const httpsPort = options.httpsPort();
        if (isHttps(c) || httpsPort === null || PUBLIC_PATHS.has(c.req.path) || CA_PATHS.has(c.req.path)) return next();
        const url = new URL(c.req.url);
        url.protocol = 'https:';
        url.port = httpsPort === 443 ? '' : String(httpsPort);
        return c.redirect(url.toString(), 308);
    });

    app.use(
        '*',
        bodyLimit({
            maxSize: MAX_BODY_BYTES,
            onError: c => c.html(messagePage(c.var.strings, '413', c.var.strings.tooLarge), 413)
        })
    );
    app.use('*', csrf());

    app.use('*', async (c, next) => {
        c.set('session', sessions.get(getCookie(c, COOKIE)));
        await next();
    });

    const autoconfig = (c: C) => {
        const address = (c.req.query('emailaddress') ?? '').trim().toLowerCase().slice(0, MAX_NAME);
        const user = address.includes('@') ? findLocalUser(ctx.users(), address, ctx.localDomain()) : null;
        const listeners = ctx.mailListeners();
        const xml = user && autoconfigXml({ hostname: ctx.hostname(), localDomain: ctx.localDomain(), address, username: user.name, imap: listeners.imap, smtp: listeners.smtp });
        if (!xml) return c.text('no mail account here for that address\n', 404);
        c.header('Cache-Control', 'no-store');
        return c.body(xml, 200, { 'Content-Type': 'text/xml; charset=utf-8' });
    };
    for (const path of PUBLIC_PATHS) app.get(path, autoconfig);
    app.route('/', caRoutes(ctx));

    const startSession = (c: C, user: { id: number; name: string }) => {
        const session = sessions.create(user);
        setCookie(c, COOKIE, session.id, { httpOnly: true, sameSite: 'Strict', secure: isHttps(c), path: '/' });
        return session;
    };

    app.get('/login', c => (c.var.session ? c.redirect('/', 303) : c.html(loginPage(c.var.strings))));

    app.post('/login', async c => {
        const body = await c.req.parseBody();
        const username = field(body, 'username', MAX_NAME);
        const password = field(body, 'password', MAX_PASSWORD);
        const outcome = await attemptLogin(loginDeps(ctx), { address: remoteAddress(c), username, password, protocol: 'web' });
        if (!outcome.ok) {
            // As IMAP and SMTP: a failure is answered late (the auth penalty), but answered.
            await new Promise(resolve => setTimeout(resolve, outcome.delayMs));
            return c.html(loginPage(c.var.strings, c.var.strings.loginFailed, username), 401);
        }
        const previous = c.var.session;
        if (previous) sessions.end(previous.id);
        startSession(c, outcome.user);
        ctx.logger.info({ user: outcome.user.name, remoteAddress: remoteAddress(c) }, 'web login');
        return c.redirect('/', 303);
    });

    // Everything below needs a session; a form that changes something also needs its token.
    app.use('*', async (c, next) => {
        const session = c.var.session;
        if (!session) return c.req.method === 'GET' || c.req.method === 'HEAD' ? c.redirect('/login', 303) : c.html(messagePage(c.var.strings, '403', c.var.strings.formExpired), 403);
        if (c.req.method === 'POST') {
            const body = await c.req.parseBody();
            if (!sameToken(field(body, 'csrf', 100), session.csrf)) return c.html(messagePage(c.var.strings, '403', c.var.strings.formExpired), 403);
        }
        await next();
    });

    const account = (c: C, session: Session, message?: { kind: 'error' | 'ok'; text: string }, status: 200 | 400 | 401 = 200) => {
        const user = ctx.users().find(u => u.name === session.userName);
        const listeners = ctx.mailListeners();
        const s = c.var.strings;
        const now = new Date();
        const monthStart = new Date(now.getFullYear(), now.getMonth(), 1).getTime();
        const timeFormat = new Intl.DateTimeFormat(s.lang, { dateStyle: 'medium', timeStyle: 'short' });
        const mine = mineView(s, {
            userId: session.userId,
            accounts: user ? user.accounts.map(a => a.address) : [],
            queue: ctx.store.queue.list(),
            usage: ctx.store.runs.bytesSince(monthStart),
            lastRun: ctx.store.runs.last(),
            problems: ctx.store.accountProblems.list(),
            nextRun: ctx.nextRun(),
            held: ctx.store.sync.heldUpstream(session.userId, ctx.fetchFullFolder),
            formatTime: at => timeFormat.format(at)
        });
        return c.html(
            accountPage(
                c.var.strings,
                {
                    name: session.userName,
                    csrf: session.csrf,
                    addresses: user ? addressesOf(user, ctx.localDomain()) : [],
                    hostname: ctx.hostname(),
                    imap: listeners.imap,
                    smtp: listeners.smtp,
                    mine,
                    admin: Boolean(user?.admin)
                },
                message
            ),
            status
        );
    };

    app.get('/', c => account(c, c.var.session!));

    app.post('/logout', c => {
        sessions.end(c.var.session!.id);
        deleteCookie(c, COOKIE, { path: '/', secure: isHttps(c) });
        return c.redirect('/login', 303);
    });

    // "Fetch at the next uplink": the same as moving the stub into "Fetch full" in a mail app.
    app.post('/held', async c => {
        const s = c.var.strings;
        const session = c.var.session!;
        const body = await c.req.parseBody();
        const mailboxId = Number(field(body, 'mailbox', 20));
        const uid = Number(field(body, 'uid', 20));
        // Only a stub of this user's (heldUpstream selects by user id; move checks it again).
        const held = ctx.store.sync.heldUpstream(session.userId, ctx.fetchFullFolder, 10_000).find(m => m.mailboxId === mailboxId && m.uid === uid);
        if (!held) return account(c, session, { kind: 'error', text: s.fetchGone }, 400);
        if (!ctx.store.mailboxes.get(session.userId, ctx.fetchFullFolder)) ctx.store.mailboxes.create(session.userId, ctx.fetchFullFolder);
        ctx.store.messages.move(session.userId, held.mailboxId, [held.uid], ctx.fetchFullFolder);
        ctx.logger.info({ user: session.userName, mailbox: held.mailboxPath, uid: held.uid }, 'asked on the web page for a message held upstream');
        return account(c, session, { kind: 'ok', text: s.fetchQueued });
    });

    const isAdmin = (session: Session) => Boolean(ctx.users().find(u => u.name === session.userName)?.admin);

    const admin = (c: C, session: Session, message?: { kind: 'error' | 'ok'; text: string }, status: 200 | 400 | 409 | 503 = 200) => {
        const s = c.var.strings;
        const timeFormat = new Intl.DateTimeFormat(s.lang, { dateStyle: 'medium', timeStyle: 'short' });
        const dayFormat = new Intl.DateTimeFormat(s.lang, { day: 'numeric', month: 'short' });
        const monthFormat = new Intl.DateTimeFormat(s.lang, { month: 'short', year: '2-digit' });
        const now = new Date();
        const body = adminPart(s, {
            csrf: session.csrf,
            now,
            lastRun: ctx.store.runs.last(),
            nextRun: ctx.nextRun(),
            running: ctx.uplink.isRunning(),
            recentRuns: ctx.store.runHistory.recent(RECENT_RUNS),
            perDay: ctx.store.runHistory.bytesPer('day', daysSince(now, DAYS)),
            perMonth: ctx.store.runHistory.bytesPer('month', monthsSince(now, MONTHS)),
            budgetPerDay: ctx.uplink.budgetPerDay(),
            queue: ctx.store.queue.list().reverse(),
            users: ctx.store.users.summaries(),
            disk: diskOf(ctx.store.dataDir),
            formatTime: at => timeFormat.format(at),
            dayLabel: date => dayFormat.format(date),
            monthLabel: date => monthFormat.format(date)
        });
        return c.html(adminPage(s, { name: session.userName, csrf: session.csrf }, body, message), status);
    };

    app.use('/admin/*', async (c, next) => {
        if (!isAdmin(c.var.session!)) return c.html(messagePage(c.var.strings, '403', c.var.strings.forbidden), 403);
        await next();
    });
    app.use('/admin', async (c, next) => {
        if (!isAdmin(c.var.session!)) return c.html(messagePage(c.var.strings, '403', c.var.strings.forbidden), 403);
        await next();
    });

    app.get('/admin', c => admin(c, c.var.session!));

    // "Sync now": starts a run in the background and shows the page that follows it.
    app.post('/admin/sync', c => {
        const s = c.var.strings;
        const session = c.var.session!;
        const started = ctx.uplink.startRun(`web: ${session.userName}`);
        if (started === 'busy') return admin(c, session, { kind: 'error', text: s.syncBusy }, 409);
        if (started === 'not-ready') return admin(c, session, { kind: 'error', text: s.syncNotReady }, 503);
        ctx.logger.info({ user: session.userName }, 'uplink run started on the status page');
        return c.redirect('/admin/sync', 303);
    });

    app.get('/admin/sync', c => {
        const s = c.var.strings;
        const session = c.var.session!;
        const timeFormat = new Intl.DateTimeFormat(s.lang, { dateStyle: 'medium', timeStyle: 'medium' });
        const run = ctx.uplink.latest();
        const live = Boolean(run && !run.outcome);
        return c.html(
            syncPage(
                s,
                { name: session.userName, csrf: session.csrf },
                syncPart(s, run, at => timeFormat.format(at)),
                live ? REFRESH_SECONDS : undefined
            )
        );
    });

    app.post('/admin/queue', async c => {
        const s = c.var.strings;
        const body = await c.req.parseBody();
        const id = Number(field(body, 'id', 20));
        const action = field(body, 'action', 10);
        if (!Number.isSafeInteger(id) || (action !== 'retry' && action !== 'drop')) return admin(c, c.var.session!, { kind: 'error', text: s.queueGone }, 400);
        try {
            if (action === 'retry') {
                if (!ctx.store.queue.retry(id)) return admin(c, c.var.session!, { kind: 'error', text: s.queueGone }, 400);
            } else {
                ctx.store.queue.drop(id);
            }
        } catch (err) {
            if (!storeErrorCode(err)) throw err;
            return admin(c, c.var.session!, { kind: 'error', text: s.queueGone }, 400);
        }
        ctx.logger.info({ user: c.var.session!.userName, queueId: id, action }, 'queue entry changed on the status page');
        return admin(c, c.var.session!, { kind: 'ok', text: action === 'retry' ? s.retried : s.dropped });
    });

    app.post('/password', async c => {
        const s = c.var.strings;
        const session = c.var.session!;
        const body = await c.req.parseBody();
        const current = field(body, 'current', MAX_PASSWORD + 1);
        const next = field(body, 'next', MAX_PASSWORD + 1);
        if (next !== field(body, 'repeat', MAX_PASSWORD + 1)) return account(c, session, { kind: 'error', text: s.passwordMismatch }, 400);
        if ([...next].length < MIN_PASSWORD || [...next].length > MAX_PASSWORD) return account(c, session, { kind: 'error', text: s.passwordLength(MIN_PASSWORD, MAX_PASSWORD) }, 400);
        // The current password goes through the same check (and penalty) as a login.
        const outcome = await attemptLogin(loginDeps(ctx), { address: remoteAddress(c), username: session.userName, password: current, protocol: 'web' });
        if (!outcome.ok || outcome.user.id !== session.userId) {
            if (!outcome.ok) await new Promise(resolve => setTimeout(resolve, outcome.delayMs));
            return account(c, session, { kind: 'error', text: s.currentWrong }, 401);
        }
        ctx.store.users.setPasswordHash(session.userName, await ctx.hashPassword(next));
        sessions.endOthers(session.userId, session.id);
        ctx.logger.info({ user: session.userName, remoteAddress: remoteAddress(c) }, 'password changed on the web page');
        return account(c, session, { kind: 'ok', text: s.passwordChanged });
    });

    app.notFound(c => c.html(messagePage(c.var.strings ?? stringsFor(undefined), '404', (c.var.strings ?? stringsFor(undefined)).notFound), 404));

    app.onError((err, c) => {
        const s = c.var.strings ?? stringsFor(undefined);
        if (err instanceof HTTPException) {
            return err.status === 403 ? c.html(messagePage(s, '403', s.formExpired), 403) : c.html(messagePage(s, String(err.status), s.failure), err.status);
        }
        ctx.logger.error({ err: { message: err.message, stack: err.stack }, path: c.req.path }, 'web request failed');
        return c.html(messagePage(s, '500', s.failure), 500);
    });

    return app;
}
