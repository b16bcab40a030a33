/**
 * Sending the queue: each due message goes out through the SMTP server of the account that
 * owns its MAIL FROM, all of one account's messages over one connection, with exactly the
 * envelope that was submitted (Bcc recipients included).
 *
 * Each message is marked 'sending' (committed) before its first byte leaves, and the
 * provider's answer per recipient is committed as soon as it arrives, so after a crash only a
 * message whose final reply was lost in flight can go out a second time.
 */
import fs from 'node:fs';
import type net from 'node:net';
import type { ResolvedAccount } from '../config';
import type { QueueEntry } from '../store';
import { bounceToSender } from '../queue';
import type { UplinkContext, AccountProgress } from './context';
import type { WireMeter } from './meter';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const SMTPConnection = require('nodemailer/lib/smtp-connection');

/** 15 minutes, doubling per attempt, at most a day. */
export function backoffMs(attempts: number): number {
    return Math.min(15 * 60 * 1000 * 2 ** Math.max(attempts - 1, 0), 24 * 3600 * 1000);
}

interface SendInfo {
    accepted?: string[];
    rejected?: string[];
    rejectedErrors?: { recipient?: string; responseCode?: number; response?: string; message?: string }[];
    response?: string;
}

interface SmtpError extends Error {
    responseCode?: number;
    response?: string;
    code?: string;
}

function describe(err: SmtpError): string {
    return (err.response || err.message || String(err)).replace(/\s+/g, ' ').slice(0, 300);
}

function connectSocket(meter: WireMeter, host: string, port: number, timeoutMs: number): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
        const socket = meter.connect(host, port, timeoutMs);
        const onError = (err: Error) => {
            socket.destroy();
            reject(err);
        };
        socket.once('error', onError);
        socket.once('timeout', () => onError(Object.assign(new Error(`connection to ${host}:${port} timed out`), { code: 'ETIMEDOUT' })));
        socket.once('connect', () => {
            socket.off('error', onError);
            socket.setTimeout(0);
            resolve(socket);
        });
    });
}

function call<T>(fn: (cb: (err: SmtpError | null, value?: T) => void) => void): Promise<T> {
    return new Promise((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value as T))));
}

/**
 * One SMTPConnection step (connect, login, send) that also fails when the connection errors or
 * ends before the step's callback: nodemailer calls neither connect()'s nor login()'s callback
 * when the link dies after the greeting, and a step that never settles would hang the run.
 */
function step<T>(connection: any, fn: (cb: (err?: SmtpError | null, value?: T) => void) => void): Promise<T> {
    return new Promise((resolve, reject) => {
        const onError = (err: SmtpError) => finish(err);
        const onEnd = () => finish(Object.assign(new Error('the connection to the provider closed'), { code: 'ECONNECTION' }) as SmtpError);
        function finish(err?: SmtpError | null, value?: T): void {
            connection.off('error', onError);
            connection.off('end', onEnd);
            if (err) reject(err);
            else resolve(value as T);
        }
        connection.on('error', onError);
        connection.on('end', onEnd);
        fn(finish);
    });
}

async function openConnection(ctx: UplinkContext, account: ResolvedAccount, meter: WireMeter): Promise<any> {
    const endpoint = account.smtp;
    const socket = await connectSocket(meter, endpoint.host, endpoint.port, ctx.timeouts.connectMs);
    const connection = new SMTPConnection({
        host: endpoint.host,
        port: endpoint.port,
        connection: socket,
        secure: endpoint.tls === 'implicit',
        requireTLS: endpoint.tls === 'starttls',
        ignoreTLS: endpoint.tls === 'none',
        opportunisticTLS: endpoint.tls === 'starttls-if-offered',
        name: ctx.hostname(),
        connectionTimeout: ctx.timeouts.connectMs,
        greetingTimeout: ctx.timeouts.connectMs,
        socketTimeout: ctx.timeouts.socketMs,
        tls: { servername: endpoint.host }
    });
    connection.on('error', () => {
        // Errors are reported through the pending callback; this keeps a late one from crashing the daemon.
    });
    try {
        await step(connection, cb => connection.connect(cb));
        const credentials = account.credentials;
        if (credentials?.password) {
            await step(connection, cb => connection.login({ user: endpoint.user ?? account.address, pass: credentials.password }, cb));
        } else if (credentials?.oauth2) {
            // SMTPConnection does XOAUTH2 only through a token provider in `oauth2` (getToken and
            // buildXOAuth2Token, like nodemailer's XOAuth2); a bare accessToken makes it fall back to
            // PLAIN ("Missing credentials"). The provider serves the shared cache, refreshing on a retry.
            const user = endpoint.user ?? account.address;
            const oauth2 = credentials.oauth2;
            const provider = {
                getToken(isRetry: boolean, cb: (err: Error | null, token?: string) => void) {
                    ctx.tokens.accessToken(account.address, oauth2, isRetry).then(token => cb(null, token), err => cb(err as Error));
                },
                buildXOAuth2Token(token: string) {
                    return Buffer.from(['user=' + user, 'auth=Bearer ' + token, '', ''].join('\x01'), 'utf-8').toString('base64');
                }
            };
            await step(connection, cb => connection.login({ user, oauth2: provider }, cb));
        }
    } catch (err) {
        // A half-open session (greeting seen, login refused or cut) must not outlive the step.
        connection.close();
        throw err;
    }
    return connection;
}

/**
 * Sends the due messages of one account. Returns when done, when the budget stops it, or
 * when the connection failed (remaining messages stay queued for the next run).
 */
export async function sendAccount(
    ctx: UplinkContext,
    account: ResolvedAccount,
    entries: QueueEntry[],
    meter: WireMeter,
    progress: AccountProgress
): Promise<void> {
    const maxAgeMs = ctx.queueMaxAgeMs();
    const live: QueueEntry[] = [];
    for (const entry of entries) {
        if (Date.now() - entry.createdAt > maxAgeMs) {
            await expire(ctx, entry);
            progress.errors.push(`message ${entry.id} expired after ${Math.round(maxAgeMs / 86400000)} days and was returned to the sender`);
        } else {
            live.push(entry);
        }
    }
    if (!live.length) return;

    let connection: any;
    try {
        connection = await openConnection(ctx, account, meter);
    } catch (err) {
        const message = describe(err as SmtpError);
        progress.errors.push(`SMTP ${account.smtp.host}: ${message}`);
        ctx.logger.warn({ account: account.address, error: message }, 'could not connect to the provider; messages stay queued');
        if ((err as SmtpError).code === 'EAUTH') {
            for (const entry of live) deferEntry(ctx, entry, `authentication failed: ${message}`);
        }
        return;
    }

    try {
        for (const entry of live) {
            const pending = entry.recipients.filter(r => r.state === 'pending').map(r => r.address);
            if (!pending.length) continue;
            if (!ctx.budget.allows(entry.size + 512)) {
                progress.waiting.push(`message ${entry.id} (${entry.size} bytes) waits for the next run: budget`);
                progress.budgetStopped = true;
                break;
            }
            ctx.store.markSending(entry.id);
            let info: SendInfo;
            try {
                const stream = fs.createReadStream(ctx.store.blobs.pathOf(entry.blobHash));
                info = await step<SendInfo>(connection, cb => connection.send({ from: entry.mailFrom, to: pending }, stream, cb));
            } catch (err) {
                const smtpErr = err as SmtpError;
                const message = describe(smtpErr);
                if (smtpErr.responseCode && smtpErr.responseCode >= 500) {
                    await failRecipients(ctx, entry, pending.map(address => ({ address, error: message, code: smtpErr.responseCode! })));
                    progress.errors.push(`message ${entry.id}: ${message}`);
                    continue;
                }
                deferEntry(ctx, entry, message);
                progress.errors.push(`message ${entry.id} deferred: ${message}`);
                if (!smtpErr.responseCode) {
                    // The connection is gone; what is left waits for the next run.
                    return;
                }
                continue;
            }
            const refused = await applyResult(ctx, entry, pending, info);
            for (const line of refused) progress.errors.push(`message ${entry.id}: ${line}`);
            progress.messagesSent++;
            progress.report();
        }
        await call(cb => {
            connection.once('end', () => cb(null));
            connection.quit();
        }).catch(() => undefined);
    } finally {
        connection.close();
    }
}

function deferEntry(ctx: UplinkContext, entry: QueueEntry, error: string): void {
    ctx.store.recordSendResult(entry.id, { sent: [], failed: [], deferredError: error, state: 'deferred', nextAttemptAt: Date.now() + backoffMs(entry.attempts + 1) });
}

/** Records the provider's answer per recipient; returns one line per refused recipient, for the run report. */
async function applyResult(ctx: UplinkContext, entry: QueueEntry, pending: string[], info: SendInfo): Promise<string[]> {
    const accepted = new Set((info.accepted ?? []).map(a => a.toLowerCase()));
    const sent = pending.filter(address => accepted.has(address.toLowerCase()));
    const failed: { address: string; error: string; code: number }[] = [];
    const deferred: string[] = [];
    for (const rejection of info.rejectedErrors ?? []) {
        const address = rejection.recipient ?? '';
        const error = (rejection.response || rejection.message || 'rejected').slice(0, 300);
        if ((rejection.responseCode ?? 0) >= 500) failed.push({ address, error, code: rejection.responseCode! });
        else deferred.push(error);
    }
    const stillPending = pending.length - sent.length - failed.length;
    const state = stillPending > 0 ? 'deferred' : sent.length || entry.recipients.some(r => r.state === 'sent') ? 'sent' : 'failed';
    ctx.store.recordSendResult(entry.id, {
        sent,
        failed: failed.map(({ address, error }) => ({ address, error })),
        deferredError: deferred[0] ?? null,
        state,
        nextAttemptAt: state === 'deferred' ? Date.now() + backoffMs(entry.attempts + 1) : null
    });
    if (failed.length) await bounce(ctx, entry, failed);
    ctx.logger.info({ queueId: entry.id, account: entry.account, sent: sent.length, failed: failed.length, deferred: stillPending }, 'message sent upstream');
    return (info.rejectedErrors ?? []).map(rejection => `<${rejection.recipient ?? ''}> ${(rejection.responseCode ?? 0) >= 500 ? 'failed' : 'deferred'}: ${(rejection.response || rejection.message || 'rejected').slice(0, 300)}`);
}

async function failRecipients(ctx: UplinkContext, entry: QueueEntry, failures: { address: string; error: string; code: number }[]): Promise<void> {
    const anySent = entry.recipients.some(r => r.state === 'sent');
    ctx.store.recordSendResult(entry.id, {
        sent: [],
        failed: failures.map(({ address, error }) => ({ address, error })),
        deferredError: null,
        state: anySent ? 'sent' : 'failed',
        nextAttemptAt: null
    });
    await bounce(ctx, entry, failures);
}

async function expire(ctx: UplinkContext, entry: QueueEntry): Promise<void> {
    const pending = entry.recipients.filter(r => r.state === 'pending');
    await failRecipients(
        ctx,
        entry,
        pending.map(r => ({ address: r.address, error: `4.4.7 not delivered within the queue lifetime${entry.lastError ? ` (last error: ${entry.lastError})` : ''}`, code: 447 }))
    );
}

async function bounce(ctx: UplinkContext, entry: QueueEntry, failures: { address: string; error: string; code: number }[]): Promise<void> {
    try {
        await bounceToSender(
            ctx.store,
            entry,
            failures.map(failure => {
                const status = /\b([245]\.\d{1,3}\.\d{1,3})\b/.exec(failure.error)?.[1] ?? (failure.code === 447 ? '4.4.7' : '5.0.0');
                return { address: failure.address, status, diagnostic: failure.error, action: 'failed' as const, remoteMta: entry.account.split('@')[1] };
            }),
            { reportingMta: ctx.hostname() }
        );
    } catch (err) {
        ctx.logger.error({ queueId: entry.id, err: { message: (err as Error).message } }, 'could not deliver the bounce');
    }
}
