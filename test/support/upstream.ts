/**
 * A REAL upstream mail provider on loopback for tests and benchmarks: Debian's Dovecot 2.3
 * (IMAP with CONDSTORE/QRESYNC and COMPRESS=DEFLATE, LMTP, SASL for Postfix) and Postfix 3.7
 * (submission with AUTH through Dovecot, plus a second smtpd without AUTH for load), each
 * instance in its own temporary directory on free ports chosen at run time.
 *
 *     const upstream = await startUpstream();          // alice@upstream.test / alice-pass, bob@… / bob-pass
 *     try {
 *         await upstream.deliver('alice@upstream.test', raw);                  // LMTP straight into Dovecot
 *         const messages = await upstream.listMessages('alice@upstream.test');  // via imapflow
 *         // … point the code under test at 127.0.0.1:upstream.imapPort / upstream.submissionPort …
 *         const out = await upstream.waitForMessages(upstream.catchall.address, 'INBOX', 2);
 *     } finally {
 *         await upstream.stop();
 *     }
 *
 * Routing (nothing ever leaves 127.0.0.1):
 *  - upstream.test recipients must exist (virtual_mailbox_maps) and go to Dovecot over LMTP
 *    (virtual_transport = lmtp:inet:127.0.0.1:<lmtpPort>).
 *  - every other domain ("the internet") goes to the same LMTP listener through
 *    default_transport/relay_transport, and Dovecot's second userdb (driver = static,
 *    allow_all_users) maps any address it does not know to the catch-all Maildir of
 *    `catchall@upstream.test`. The envelope recipient is NOT rewritten, so every envelope
 *    recipient (To, Cc and Bcc alike) yields its own copy in the catch-all INBOX, and Dovecot
 *    writes that recipient into the copy's `Delivered-To:` header (and `Received: … for <rcpt>`)
 *    and the envelope sender into `Return-Path:`. Dovecot only writes Delivered-To when an LMTP
 *    transaction has a single recipient, hence `lmtp_destination_recipient_limit = 1` in Postfix.
 *    Read them with `upstream.listMessages(upstream.catchall.address)`; `sentCopies()` parses
 *    them into { envelopeTo, envelopeFrom, headers, source }.
 *    Side effect: an LMTP delivery (deliver()) to an unknown address, even in upstream.test, also
 *    lands in the catch-all; Postfix itself rejects unknown upstream.test users at RCPT TO.
 *
 * Must run as root (the daemons drop privileges themselves); mail belongs to uid 65534.
 * Start-up takes ~0.1–0.5 s (see `startupMs`): both daemons start in parallel, Postfix's queue is
 * prepared here and marked quick-start, its config files are backdated (see below), and
 * readiness is a greeting on each port, polled every 20 ms up to a deadline.
 * Daemons are stopped by the PIDs in their pid files: by stop() (idempotent, ~0.2 s), or by
 * process 'exit' / SIGINT / SIGTERM / SIGHUP handlers if a test crashes without calling it.
 * Instances are independent (own ports, dirs, instance names), so several may run at once.
 *
 * Dovecot 2.3 answers every failed authentication on a 500 ms tick (auth_failure_delay = 0 only
 * removes the extra delay), so each negative auth test costs about half a second.
 *
 * The daemons' configuration is written by upstream-config.ts, their processes are handled by
 * upstream-processes.ts, the OAuth endpoints are upstream-oauth.ts; this file is the running
 * instance's handle.
 *
 * Over 500 lines: startUpstream is one start/stop sequence for two daemons that share an instance
 * directory, ports and an exit handler, and returns the handle whose methods close over them.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ImapFlow, type ImapFlowOptions } from 'imapflow';
import nodemailer from 'nodemailer';
import { ServingTls } from '../../src/tls';
import { freePort } from './ports';
import { startUidNextFilter, type UidNextFilter } from './upstream-courier';
import { MAIL_UID, UPSTREAM_DOMAIN, dovecotConf, postfixIds, postfixMain, postfixMaster, prepareQueueDirectory } from './upstream-config';
import { startOAuthServer, type OAuthServer } from './upstream-oauth';
import { alive, delay, installExitHandler, live, readPid, run, runDaemonStarter, sleepSync, terminateSteps, waitForGreeting, waitForPort } from './upstream-processes';

export { UPSTREAM_DOMAIN };

export interface UpstreamUser {
    address: string;
    password: string;
}

export interface UpstreamOptions {
    /** Accounts; default alice@upstream.test/alice-pass and bob@upstream.test/bob-pass. */
    users?: UpstreamUser[];
    /** Enable XOAUTH2 and OAUTHBEARER in Dovecot (IMAP and, through SASL, Postfix submission),
     *  with tokens checked by an introspection endpoint served from this process (see `oauth`). */
    oauth2?: boolean;
    /** Self-signed TLS (openssl, SAN 127.0.0.1/localhost/upstream.test): STARTTLS offered (not required) on
     *  the IMAP and submission ports, plus implicit-TLS listeners `imapsPort` and `submissionsPort`. */
    tls?: boolean;
    /** Discard everything accepted on the AUTH-less load smtpd instead of delivering it (default false). */
    discardLoadSmtp?: boolean;
    /** Extra lines appended to dovecot.conf / Postfix main.cf. */
    dovecotExtra?: string;
    postfixExtra?: string;
    /** Bound for the whole start-up (default 15 s). */
    startTimeoutMs?: number;
    /** Where the instance directory is made (default os.tmpdir()): bench/disk-writes.ts puts it on a file system of its own. */
    parentDir?: string;
    /**
     * Per-recipient replies of the submission port (Postfix access maps, recipient → "550 5.1.1
     * text", "421 4.7.0 text", …): `rcpt` answers the RCPT TO, `data` the DATA command of a
     * transaction whose recipient it is (smtpd_data_restrictions). A 421 also closes the session.
     */
    recipientReplies?: { rcpt?: Record<string, string>; data?: Record<string, string> };
    /**
     * 'dovecot' (default): namespace without prefix, "/" delimiter, SPECIAL-USE, CONDSTORE, QRESYNC,
     * COMPRESS. 'courier': how Courier-style servers look (upstream-courier.ts): namespace "INBOX."
     * with "." delimiter, none of those extensions, no UIDNEXT in SELECT. Folder arguments of the
     * helpers below are then server paths ("INBOX.Work").
     */
    flavour?: 'dovecot' | 'courier';
}

export interface UpstreamMessage {
    uid: number;
    /** Stored flags and keywords (the session-bound \Recent is left out). */
    flags: string[];
    size: number;
    modseq?: bigint;
    /** Whole message as stored by Dovecot (with the Return-Path/Delivered-To/Received headers it added). */
    source: Buffer;
    /** The raw header block (folded lines as stored); read fields with headerValue(). */
    headers: string;
}

export interface SentCopy extends UpstreamMessage {
    /** Envelope recipient this copy was delivered for (from Delivered-To). */
    envelopeTo: string;
    /** Envelope sender (from Return-Path). */
    envelopeFrom: string;
}

export interface FolderStatus {
    uidValidity: number;
    uidNext: number;
    messages: number;
    highestModseq: bigint;
}

export interface UpstreamOAuth {
    /** Token endpoint (grant_type=refresh_token, form-encoded), as the uplink's oauth2.tokenUrl. */
    tokenUrl: string;
    /** RFC 7662 introspection endpoint Dovecot calls (POST token=…). */
    introspectionUrl: string;
    clientId: string;
    /** The refresh token that the token endpoint exchanges for an access token of `address`. */
    refreshTokenFor(address: string): string;
    /** A fresh access token valid for `ttlSeconds` (default 3600). */
    issueAccessToken(address: string, ttlSeconds?: number): string;
    /** Invalidate every access token issued so far (refresh tokens stay valid). */
    revokeAccessTokens(): void;
    /** Requests seen by the endpoints. */
    stats(): { tokenRequests: number; introspections: number };
}

export interface Upstream {
    dir: string;
    domain: string;
    /** IMAP (with the 'courier' flavour: its front, which drops UIDNEXT from SELECT). */
    imapPort: number;
    lmtpPort: number;
    /** Postfix submission: AUTH required (PLAIN/LOGIN, via Dovecot's auth socket); STARTTLS offered with `tls: true`. */
    submissionPort: number;
    /** Postfix smtpd without AUTH (clients from 127.0.0.0/8 may relay), for load tests. */
    smtpPort: number;
    /** With `tls: true`: implicit-TLS IMAP (993-style) and submission (465-style); otherwise null. */
    imapsPort: number | null;
    submissionsPort: number | null;
    /** With `tls: true`: the certificate authority (PEM) of the provider's certificate, to pass as `ca` to clients. */
    certPem: string | null;
    users: UpstreamUser[];
    /** Mailbox that receives every message addressed outside upstream.test. */
    catchall: UpstreamUser;
    dovecotConf: string;
    postfixConfigDir: string;
    /** Present with `oauth2: true`. */
    oauth?: UpstreamOAuth;
    /** Time startUpstream() took, ms. */
    startupMs: number;
    /** Deliver a raw message over LMTP to one or more recipients (envelope sender `from`). */
    deliver(to: string | string[], raw: Buffer, options?: { from?: string }): Promise<void>;
    /** A connected ImapFlow session for `address` (caller logs out). */
    connect(address: string, options?: Partial<ImapFlowOptions>): Promise<ImapFlow>;
    listMessages(address: string, folder?: string): Promise<UpstreamMessage[]>;
    /** Poll (bounded) until `folder` holds at least `count` messages, or `predicate` holds. */
    waitForMessages(address: string, folder: string, until: number | ((messages: UpstreamMessage[]) => boolean), timeoutMs?: number): Promise<UpstreamMessage[]>;
    /** Copies Postfix "sent to the internet" so far (catch-all INBOX), parsed. */
    sentCopies(): Promise<SentCopy[]>;
    /** Replace the flags of one message (STORE FLAGS). */
    setFlags(address: string, folder: string, uid: number, flags: string[]): Promise<void>;
    status(address: string, folder?: string): Promise<FolderStatus>;
    createFolder(address: string, folder: string): Promise<void>;
    /**
     * Simulate a server-side UIDVALIDITY reset of an existing folder, keeping its messages and
     * flags. `renumber` (default true) throws away Dovecot's uidlist and indexes so the messages
     * get new UIDs from 1 and a new UIDVALIDITY (and new MODSEQs), like a restored/migrated
     * server; `renumber: false` only bumps UIDVALIDITY (doveadm mailbox update). Close IMAP
     * sessions that have the folder selected first.
     */
    recreateFolder(address: string, folder: string, options?: { renumber?: boolean }): Promise<{ before: FolderStatus; after: FolderStatus }>;
    /** Run doveadm against this instance. */
    doveadm(args: string[]): Promise<string>;
    logs(): { dovecot: string; postfix: string };
    stop(): Promise<void>;
}

export const DEFAULT_UPSTREAM_USERS: UpstreamUser[] = [
    { address: 'alice@upstream.test', password: 'alice-pass' },
    { address: 'bob@upstream.test', password: 'bob-pass' }
];
const CATCHALL: UpstreamUser = { address: 'catchall@upstream.test', password: 'catchall-pass' };

/** The header block of a message (up to the first empty line), folded lines as they are. */
export function headerBlock(source: Buffer): string {
    const text = source.toString('latin1');
    const end = text.search(/\r?\n\r?\n/);
    return end < 0 ? text : text.slice(0, end);
}

/** First value of header `name` in a header block (unfolded), or undefined. */
export function headerValue(headers: string, name: string): string | undefined {
    const unfolded = headers.replace(/\r?\n[ \t]+/g, ' ');
    const match = unfolded.match(new RegExp(`^${name}:[ \\t]*(.*)$`, 'im'));
    return match ? match[1].trim() : undefined;
}

/** Maildir++ directory for a folder under a user's Maildir (INBOX is the root); `courier`: paths are "INBOX.A.B". */
function maildirFor(root: string, folder: string, courier = false): string {
    if (folder.toUpperCase() === 'INBOX') return root;
    return path.join(root, '.' + (courier ? folder.replace(/^INBOX\./i, '') : folder.split('/').join('.')));
}

export async function startUpstream(options: UpstreamOptions = {}): Promise<Upstream> {
    const started = Date.now();
    const deadline = started + (options.startTimeoutMs ?? 15_000);
    const users = (options.users ?? DEFAULT_UPSTREAM_USERS).map(u => ({ address: u.address.toLowerCase(), password: u.password }));
    for (const user of users) {
        if (!/^[^@:\s]+@[^@:\s]+$/.test(user.address) || /[:\s]/.test(user.password)) {
            throw new Error(`unusable upstream user ${JSON.stringify(user)}`);
        }
    }
    const accounts = [...users, CATCHALL];

    const P = fs.mkdtempSync(path.join(options.parentDir ?? os.tmpdir(), 'mm-up-'));
    fs.chmodSync(P, 0o755); // the daemons' unprivileged users traverse it
    const dovecotConfFile = path.join(P, 'dovecot', 'dovecot.conf');
    const postfixEtc = path.join(P, 'postfix', 'etc');
    const dovecotPidFile = path.join(P, 'dovecot', 'run', 'master.pid');
    const postfixPidFile = path.join(P, 'postfix', 'spool', 'pid', 'master.pid');
    let dovecotPid: number | null = null;
    let postfixPid: number | null = null;
    let oauthServer: OAuthServer | null = null;
    let uidNextFilter: UidNextFilter | null = null;
    let stopping: Promise<void> | null = null;
    let launched = false;

    const instance = {
        /** For the exit handler: stop both masters (waiting synchronously, bounded), then remove $P. */
        killSync() {
            live.delete(instance);
            for (const step of terminateSteps(postfixPid ?? readPid(postfixPidFile), dovecotPid ?? readPid(dovecotPidFile))) {
                const until = Date.now() + step.waitMs;
                while (!step.until() && Date.now() < until) sleepSync(10);
            }
            try {
                fs.rmSync(P, { recursive: true, force: true, maxRetries: 3 });
            } catch {
                /* best effort at exit */
            }
        }
    };
    live.add(instance);
    installExitHandler();

    const readLog = (file: string) => {
        try {
            return fs.readFileSync(file, 'utf8');
        } catch {
            return '';
        }
    };
    const logs = () => ({ dovecot: readLog(path.join(P, 'dovecot', 'log', 'dovecot.log')), postfix: readLog(path.join(P, 'postfix', 'log', 'postfix.log')) });

    async function stop(): Promise<void> {
        if (stopping) return stopping;
        stopping = (async () => {
            // A daemon that was just launched may not have written its pid file yet (bounded wait).
            const pidWait = Date.now() + (launched ? 2000 : 0);
            for (;;) {
                postfixPid ??= readPid(postfixPidFile);
                dovecotPid ??= readPid(dovecotPidFile);
                if ((postfixPid !== null && dovecotPid !== null) || Date.now() >= pidWait) break;
                await delay(20);
            }
            for (const step of terminateSteps(postfixPid, dovecotPid)) {
                const until = Date.now() + step.waitMs;
                while (!step.until() && Date.now() < until) await delay(10);
            }
            if (oauthServer) await oauthServer.close();
            if (uidNextFilter) await uidNextFilter.close();
            live.delete(instance);
            fs.rmSync(P, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 });
        })();
        return stopping;
    }

    try {
        if (options.flavour === 'courier' && options.tls) throw new Error("the 'courier' flavour does not combine with tls: true");
        const ports = await Promise.all(Array.from({ length: options.tls ? 6 : 4 }, () => freePort()));
        if (new Set(ports).size !== ports.length) throw new Error('free port collision');
        const [imapPort, lmtpPort, submissionPort, smtpPort] = ports;
        const imapsPort = ports[4] ?? null;
        const submissionsPort = ports[5] ?? null;
        let tlsFiles: { certFile: string; keyFile: string } | null = null;
        let certPem: string | null = null;
        if (options.tls) {
            // mailmule's own local CA makes the provider's certificate too; clients trust the CA.
            const { pair } = await ServingTls.open({ certFile: null, keyFile: null, dataDir: P, hostname: UPSTREAM_DOMAIN, localDomain: UPSTREAM_DOMAIN });
            tlsFiles = { certFile: pair.certFile, keyFile: pair.keyFile };
            certPem = pair.caCert!.toString();
        }

        // ---- Dovecot ----
        for (const d of ['run', 'state', 'log', 'mail']) fs.mkdirSync(path.join(P, 'dovecot', d), { recursive: true });
        fs.chownSync(path.join(P, 'dovecot', 'mail'), MAIL_UID, MAIL_UID);
        fs.writeFileSync(
            path.join(P, 'dovecot', 'users'),
            accounts
                .map(u => {
                    const [local, domain] = u.address.split('@');
                    return `${u.address}:{PLAIN}${u.password}:${MAIL_UID}:${MAIL_UID}::${P}/dovecot/mail/${domain}/${local}::\n`;
                })
                .join('')
        );
        let oauthConf: string | null = null;
        if (options.oauth2) {
            oauthServer = await startOAuthServer(users.map(u => u.address));
            oauthConf = path.join(P, 'dovecot', 'oauth2.conf.ext');
            fs.writeFileSync(
                oauthConf,
                [
                    `introspection_mode = post`,
                    `introspection_url = ${oauthServer.api.introspectionUrl}`,
                    `username_attribute = username`,
                    `active_attribute = active`,
                    `active_value = true`,
                    `timeout_msecs = 5000`,
                    ''
                ].join('\n')
            );
        }
        fs.writeFileSync(dovecotConfFile, dovecotConf(P, { imap: imapPort, lmtp: lmtpPort, imaps: imapsPort }, options, oauthConf, tlsFiles));

        // ---- Postfix ----
        for (const d of ['etc', 'spool', 'data', 'log']) fs.mkdirSync(path.join(P, 'postfix', d), { recursive: true });
        fs.chownSync(path.join(P, 'postfix', 'data'), ...postfixIds());
        fs.writeFileSync(path.join(postfixEtc, 'main.cf'), postfixMain(P, lmtpPort, options, tlsFiles));
        fs.writeFileSync(path.join(postfixEtc, 'master.cf'), postfixMaster({ submission: submissionPort, smtp: smtpPort, submissions: submissionsPort }, options));
        fs.writeFileSync(path.join(postfixEtc, 'vmailbox'), accounts.map(u => `${u.address} ok\n`).join(''));
        if (options.recipientReplies) {
            const accessMap = (replies: Record<string, string> = {}) =>
                Object.entries(replies)
                    .map(([recipient, reply]) => `${recipient} ${reply}\n`)
                    .join('');
            fs.writeFileSync(path.join(postfixEtc, 'rcpt_replies'), accessMap(options.recipientReplies.rcpt));
            fs.writeFileSync(path.join(postfixEtc, 'data_replies'), accessMap(options.recipientReplies.data));
        }
        prepareQueueDirectory(path.join(P, 'postfix', 'spool'));
        // Postfix re-reads a config/map file every 300 ms until its mtime is over a second old
        // ("is it still being edited?"), which alone cost ~1.5 s per start: backdate them.
        const past = new Date(Date.now() - 60_000);
        for (const name of fs.readdirSync(postfixEtc)) fs.utimesSync(path.join(postfixEtc, name), past, past);

        // Both starters daemonize and exit; Postfix only needs Dovecot's auth socket when a client
        // authenticates, so they start in parallel.
        launched = true;
        const startDovecot = runDaemonStarter('dovecot', ['-c', dovecotConfFile], path.join(P, 'dovecot', 'log', 'start.out'), Math.max(1000, deadline - Date.now()));
        const startPostfix = runDaemonStarter('postfix', ['-c', postfixEtc, 'start'], path.join(P, 'postfix', 'log', 'start.out'), Math.max(1000, deadline - Date.now()));
        const settled = await Promise.allSettled([startDovecot, startPostfix]);
        const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
        if (failed) throw failed.reason;
        // The starters exit before the daemonized masters have written their pid files.
        const check = () => {
            dovecotPid ??= readPid(dovecotPidFile);
            postfixPid ??= readPid(postfixPidFile);
            if (dovecotPid !== null && !alive(dovecotPid)) throw new Error('dovecot exited');
            if (postfixPid !== null && !alive(postfixPid)) throw new Error('postfix master exited');
        };
        await Promise.all([
            waitForGreeting(imapPort, '* OK', deadline, 'Dovecot IMAP', check),
            waitForGreeting(lmtpPort, '220', deadline, 'Dovecot LMTP', check),
            waitForGreeting(submissionPort, '220', deadline, 'Postfix submission', check),
            waitForGreeting(smtpPort, '220', deadline, 'Postfix smtpd', check),
            ...(imapsPort ? [waitForPort(imapsPort, deadline, 'Dovecot IMAPS', check)] : []),
            ...(submissionsPort ? [waitForPort(submissionsPort, deadline, 'Postfix submissions', check)] : [])
        ]);
        check();
        if (dovecotPid === null || postfixPid === null) throw new Error('no pid file from dovecot or postfix');
        if (options.flavour === 'courier') uidNextFilter = await startUidNextFilter(imapPort);
        const clientImapPort = uidNextFilter?.port ?? imapPort;

        const passwordOf = (address: string) => {
            const user = accounts.find(u => u.address === address.toLowerCase());
            if (!user) throw new Error(`no such upstream user ${address}`);
            return user.password;
        };

        async function connect(address: string, extra: Partial<ImapFlowOptions> = {}): Promise<ImapFlow> {
            const client = new ImapFlow({
                host: '127.0.0.1',
                port: clientImapPort,
                secure: false,
                auth: { user: address, pass: passwordOf(address) },
                logger: false,
                disableAutoIdle: true,
                tls: certPem ? { ca: [certPem] } : undefined,
                ...extra
            });
            client.on('error', () => {
                /* reported through the failing command */
            });
            await client.connect();
            return client;
        }

        async function withMailbox<T>(address: string, folder: string, fn: (client: ImapFlow) => Promise<T>): Promise<T> {
            const client = await connect(address);
            try {
                const lock = await client.getMailboxLock(folder);
                try {
                    return await fn(client);
                } finally {
                    lock.release();
                }
            } finally {
                await client.logout().catch(() => client.close());
            }
        }

        async function listMessages(address: string, folder = 'INBOX'): Promise<UpstreamMessage[]> {
            return withMailbox(address, folder, async client => {
                const mailbox = client.mailbox;
                if (!mailbox || mailbox.exists === 0) return [];
                const out: UpstreamMessage[] = [];
                for await (const message of client.fetch('1:*', { uid: true, flags: true, size: true, source: true })) {
                    const source = message.source ?? Buffer.alloc(0);
                    out.push({
                        uid: message.uid,
                        flags: [...(message.flags ?? [])].filter(f => f !== '\\Recent'),
                        size: message.size ?? source.length,
                        modseq: message.modseq,
                        source,
                        headers: headerBlock(source)
                    });
                }
                return out.sort((a, b) => a.uid - b.uid);
            });
        }

        async function waitForMessages(address: string, folder: string, until: number | ((m: UpstreamMessage[]) => boolean), timeoutMs = 10_000): Promise<UpstreamMessage[]> {
            const predicate = typeof until === 'number' ? (m: UpstreamMessage[]) => m.length >= until : until;
            const end = Date.now() + timeoutMs;
            let messages: UpstreamMessage[];
            for (;;) {
                messages = await listMessages(address, folder);
                if (predicate(messages)) return messages;
                if (Date.now() >= end) {
                    throw new Error(
                        `timed out after ${timeoutMs} ms waiting for messages in ${address} ${folder} (have ${messages.length})\n--- postfix log tail ---\n${logs().postfix.split('\n').slice(-15).join('\n')}`
                    );
                }
                await delay(50);
            }
        }

        async function status(address: string, folder = 'INBOX'): Promise<FolderStatus> {
            const out = await run('doveadm', ['-c', dovecotConfFile, '-f', 'flow', 'mailbox', 'status', '-u', address, 'uidvalidity uidnext messages highestmodseq', folder]);
            const fields = Object.fromEntries(
                out
                    .trim()
                    .split(/\s+/)
                    .map(kv => kv.split('=', 2) as [string, string])
            );
            return { uidValidity: Number(fields.uidvalidity), uidNext: Number(fields.uidnext), messages: Number(fields.messages), highestModseq: BigInt(fields.highestmodseq ?? '0') };
        }

        async function recreateFolder(address: string, folder: string, opts: { renumber?: boolean } = {}): Promise<{ before: FolderStatus; after: FolderStatus }> {
            const before = await status(address, folder);
            if (opts.renumber !== false) {
                const [local, domain] = address.toLowerCase().split('@');
                const root = path.join(P, 'dovecot', 'mail', domain, local, 'Maildir');
                const dir = maildirFor(root, folder, options.flavour === 'courier');
                if (!fs.existsSync(path.join(dir, 'cur'))) throw new Error(`no maildir for ${address} ${folder} at ${dir}`);
                // Forget the UID assignments and every index; the message files (and their flags,
                // kept in the file names; keywords map through dovecot-keywords) stay.
                for (const name of fs.readdirSync(dir)) {
                    if (name === 'dovecot-uidlist' || name.startsWith('dovecot.index')) fs.rmSync(path.join(dir, name), { force: true });
                }
                for (const name of fs.readdirSync(root)) {
                    if (name.startsWith('dovecot.list.index')) fs.rmSync(path.join(root, name), { force: true });
                }
            }
            let after = await status(address, folder); // re-syncs the maildir, assigning a new UIDVALIDITY
            if (after.uidValidity === before.uidValidity) {
                const next = Math.max(before.uidValidity + 1, Math.floor(Date.now() / 1000));
                await run('doveadm', ['-c', dovecotConfFile, 'mailbox', 'update', '-u', address, '--uid-validity', String(next), folder]);
                after = await status(address, folder);
            }
            if (after.uidValidity === before.uidValidity) throw new Error('UIDVALIDITY did not change');
            return { before, after };
        }

        const deliverTransport = nodemailer.createTransport({
            host: '127.0.0.1',
            port: lmtpPort,
            lmtp: true,
            secure: false,
            ignoreTLS: true,
            connectionTimeout: 5000,
            greetingTimeout: 5000,
            socketTimeout: 10_000
        });

        const upstream: Upstream = {
            dir: P,
            domain: UPSTREAM_DOMAIN,
            imapPort: clientImapPort,
            lmtpPort,
            submissionPort,
            smtpPort,
            imapsPort,
            submissionsPort,
            certPem,
            users,
            catchall: { ...CATCHALL },
            dovecotConf: dovecotConfFile,
            postfixConfigDir: postfixEtc,
            oauth: oauthServer?.api,
            startupMs: 0,
            async deliver(to, raw, opts = {}) {
                const recipients = Array.isArray(to) ? to : [to];
                const info = await deliverTransport.sendMail({ envelope: { from: opts.from ?? 'sender@example.org', to: recipients }, raw });
                if (info.rejected.length) throw new Error(`LMTP rejected ${info.rejected.join(', ')}: ${info.response}`);
            },
            connect,
            listMessages,
            waitForMessages,
            async sentCopies() {
                const messages = await listMessages(CATCHALL.address, 'INBOX');
                return messages.map(m => ({
                    ...m,
                    envelopeTo: (headerValue(m.headers, 'Delivered-To') ?? '').replace(/^<|>$/g, ''),
                    envelopeFrom: (headerValue(m.headers, 'Return-Path') ?? '').replace(/^<|>$/g, '')
                }));
            },
            async setFlags(address, folder, uid, flags) {
                await withMailbox(address, folder, async client => {
                    const ok = await client.messageFlagsSet(String(uid), flags, { uid: true });
                    if (!ok) throw new Error(`STORE FLAGS failed for uid ${uid}`);
                });
            },
            status,
            async createFolder(address, folder) {
                const client = await connect(address);
                try {
                    await client.mailboxCreate(folder);
                } finally {
                    await client.logout().catch(() => client.close());
                }
            },
            recreateFolder,
            doveadm: args => run('doveadm', ['-c', dovecotConfFile, ...args]),
            logs,
            stop: async () => {
                deliverTransport.close();
                await stop();
            }
        };
        upstream.startupMs = Date.now() - started;
        return upstream;
    } catch (err) {
        const { dovecot, postfix } = logs();
        await stop();
        const detail = `\n--- dovecot.log ---\n${dovecot.slice(-3000)}\n--- postfix.log ---\n${postfix.slice(-3000)}`;
        throw new Error(`startUpstream failed: ${err instanceof Error ? err.message : String(err)}${detail}`, { cause: err });
    }
}
