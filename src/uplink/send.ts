/**
 * The SMTP transport of the queue: each due message goes out through the SMTP server of the
 * account that owns its MAIL FROM, all of one account's messages over one connection, with
 * exactly the envelope that was submitted (Bcc recipients included).
 *
 * This module only speaks SMTP (nodemailer's SMTPConnection over a metered socket) and says
 * what the provider answered; the queue (src/queue/delivery.ts) decides what that makes of
 * each recipient and commits it. The queue marks a message 'sending' (committed) before its
 * first byte leaves and commits the answer as soon as it arrives, so after a crash only a
 * message whose final reply was lost in flight can go out a second time.
 */
import type net from 'node:net';
import type { Readable } from 'node:stream';
import type { ResolvedAccount } from '../config';
import type { QueueEntry } from '../store';
import { classifyConnectionError, pendingRecipients, type ProviderAnswer } from '../queue';
import type { UplinkContext, AccountProgress } from './context';
import type { WireMeter } from './meter';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const SMTPConnection = require('nodemailer/lib/smtp-connection') as new (options: object) => SmtpSession;

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

/** What this module uses of nodemailer's SMTPConnection, with the results it reads. */
interface SmtpSession extends NodeJS.EventEmitter {
    connect(cb: (err?: SmtpError | null) => void): void;
    login(auth: object, cb: (err?: SmtpError | null) => void): void;
    send(envelope: { from: string; to: string[] }, message: Readable, cb: (err?: SmtpError | null, info?: SendInfo) => void): void;
    /** RSET: ends a transaction that did not complete. */
    reset(cb: (err?: SmtpError | null) => void): void;
    quit(): void;
    close(): void;
    /** Set by nodemailer once the session is closed or closing: no further transaction can use it. */
    _destroyed?: boolean;
    _closing?: boolean;
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
function step<T>(connection: SmtpSession, fn: (cb: (err?: SmtpError | null, value?: T) => void) => void): Promise<T> {
    return new Promise((resolve, reject) => {
        const onError = (err: SmtpError) => finish(err);
        const onEnd = () => finish(Object.assign(new Error('the connection to the provider closed'), { code: 'ECONNECTION' }));
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

async function openConnection(ctx: UplinkContext, account: ResolvedAccount, meter: WireMeter): Promise<SmtpSession> {
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
                    ctx.tokens.accessToken(account.address, oauth2, isRetry).then(
                        token => cb(null, token),
                        err => cb(err as Error)
                    );
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

/** A 421 (RFC 5321 3.8): the provider is closing the session, whatever else the transaction did. */
function closing(answer: ProviderAnswer): boolean {
    if (answer.kind === 'refused') return answer.code === 421;
    return answer.kind === 'answered' && answer.refused.some(refusal => refusal.code === 421);
}

/** Whether the session can carry another transaction (nodemailer marks it destroyed once the link is gone). */
function usable(connection: SmtpSession | null): boolean {
    return connection !== null && !connection._destroyed && !connection._closing;
}

/**
 * Sends the due messages of one account over one connection, each message's outcome its own:
 * after a transaction that did not complete (a refused RCPT or DATA, a 421) the session is
 * RSET, and after a lost connection (or an RSET that fails) a new one is opened for the next
 * message. Returns when done, when the budget stops it, or when no connection can be had: then
 * every entry still to be offered records the failed attempt (delivery.connectionFailed).
 */
export async function sendAccount(ctx: UplinkContext, account: ResolvedAccount, entries: QueueEntry[], meter: WireMeter, progress: AccountProgress): Promise<void> {
    const { live, notes } = await ctx.queue.expire(entries);
    progress.errors.push(...notes);
    if (!live.length) return;

    const endpoint = `${account.smtp.host}:${account.smtp.port}`;
    let connection: SmtpSession | null = null;
    /** Opens the session, or records the failure on `unsent` and returns null. */
    const connect = async (unsent: QueueEntry[]): Promise<SmtpSession | null> => {
        try {
            progress.step(`connecting to ${account.smtp.host}`);
            const opened = await openConnection(ctx, account, meter);
            ctx.queue.connected(account.address);
            progress.step(`sending ${live.length} message${live.length === 1 ? '' : 's'}`);
            return opened;
        } catch (err) {
            const text = describe(err as SmtpError);
            const failure = classifyConnectionError(err as SmtpError, text);
            progress.errors.push(`SMTP ${endpoint}: ${text}`);
            ctx.logger.warn({ account: account.address, error: text, kind: failure.kind }, 'could not connect to the provider; messages deferred');
            await ctx.queue.connectionFailed(unsent, failure, endpoint);
            return null;
        }
    };

    try {
        let needsReset = false;
        for (const [index, entry] of live.entries()) {
            const pending = pendingRecipients(entry);
            if (!pending.length) continue;
            if (!ctx.budget.allows(entry.size + 512)) {
                progress.waiting.push(`message ${entry.id} (${entry.size} bytes) waits for the next run: budget`);
                progress.budgetStopped = true;
                break;
            }
            if (connection && usable(connection) && needsReset) {
                // The last transaction ended without a final reply: a new MAIL FROM on top of it
                // would be refused (503 nested MAIL) and the next DATA dropped. RSET starts clean.
                const session = connection;
                await step(session, cb => session.reset(cb)).catch(() => session.close());
            }
            if (!connection || !usable(connection)) {
                connection?.close();
                connection = await connect(live.slice(index).filter(unsent => pendingRecipients(unsent).length));
                if (!connection) return;
            }
            ctx.queue.starting(entry);
            const answer = await transmit(ctx, connection, entry, pending);
            const outcome = await ctx.queue.answered(entry, pending, answer);
            progress.errors.push(...outcome.notes);
            needsReset = answer.kind !== 'answered';
            if (answer.kind === 'unanswered' || closing(answer)) {
                // No reply, or the provider said it is closing: the next message gets a new connection.
                connection.close();
            }
            if (answer.kind === 'answered') {
                progress.messagesSent++;
                progress.report();
            }
        }
        if (connection && usable(connection)) {
            const session = connection;
            await call(cb => {
                session.once('end', () => cb(null));
                session.quit();
            }).catch(() => undefined);
        }
    } finally {
        connection?.close();
    }
}

/** One SMTP transaction (MAIL, RCPT per recipient, DATA) for one message, and what the provider said. */
async function transmit(ctx: UplinkContext, connection: SmtpSession, entry: QueueEntry, recipients: string[]): Promise<ProviderAnswer> {
    try {
        const stream = ctx.queue.messageStream(entry);
        const info = await step<SendInfo>(connection, cb => connection.send({ from: entry.mailFrom, to: recipients }, stream, cb));
        return {
            kind: 'answered',
            accepted: info.accepted ?? [],
            refused: (info.rejectedErrors ?? []).map(rejection => ({
                recipient: rejection.recipient ?? '',
                code: rejection.responseCode ?? 0,
                text: (rejection.response || rejection.message || 'rejected').slice(0, 300)
            }))
        };
    } catch (err) {
        const smtpErr = err as SmtpError;
        const text = describe(smtpErr);
        return smtpErr.responseCode ? { kind: 'refused', code: smtpErr.responseCode, text } : { kind: 'unanswered', text };
    }
}
