/**
 * LAN submission with smtp-server: AUTH is required for every message on every listener (no
 * relay for anyone unauthenticated), the sender must be one of the user's own addresses, and
 * the 250 after DATA is sent only once the message, its envelope, the sender's Sent copy and
 * any local deliveries are committed to disk together.
 */
import crypto from 'node:crypto';
import { SMTPServer, type SMTPServerAuthentication, type SMTPServerDataStream, type SMTPServerSession, type SMTPServerAddress } from 'smtp-server';
import { engineLogger } from '../log';
import type { ListenerConfig, ResolvedUser } from '../config';
import { addressesOf, findLocalUser, type SmtpContext } from './context';
import { attemptLogin, loginDeps } from '../auth';
import { bind } from '../listen';
import { normaliseLineEnds } from '../mail/line-ends';
import { fieldName, fieldValue, joinMessage, splitMessage } from './headers';
import { checkIdentityFields } from './identity-fields';
import { failureReply } from './failure';

export interface SmtpServiceOptions {
    listeners: ListenerConfig[];
    tls: { key: Buffer; cert: Buffer };
    maxMessageSize: number;
    maxRecipients: number;
    /** Seconds a client has for each request (smtp.timeout). */
    timeout: number;
    /** Bytes per second that extend a request's time (smtp.minDataRate). */
    minDataRate: number;
}

export interface RunningSmtpListener {
    host: string;
    port: number;
    security: 'starttls' | 'tls';
}

interface SessionUser {
    id: number;
    name: string;
}

function smtpError(code: number, message: string): Error & { responseCode: number } {
    return Object.assign(new Error(message), { responseCode: code });
}

function userOf(session: SMTPServerSession): SessionUser {
    return session.user as SessionUser;
}

export class SmtpService {
    private readonly servers: SMTPServer[] = [];
    readonly listening: RunningSmtpListener[] = [];
    /** Messages received in full whose commit is under way: stop() waits for them. */
    private readonly accepting = new Set<Promise<void>>();

    constructor(
        private readonly ctx: SmtpContext,
        private readonly options: SmtpServiceOptions
    ) {}

    private configuredUser(session: SMTPServerSession): ResolvedUser | null {
        const user = userOf(session);
        return user ? findLocalUser(this.ctx.users(), user.name, this.ctx.localDomain()) : null;
    }

    private isLocalDomain(address: string): boolean {
        return address.toLowerCase().endsWith('@' + this.ctx.localDomain().toLowerCase());
    }

    /** The local user an address delivers to, if any: name@localDomain or an upstream address of theirs. */
    private localRecipient(address: string): ResolvedUser | null {
        const lower = address.toLowerCase();
        const localDomain = this.ctx.localDomain().toLowerCase();
        for (const user of this.ctx.users()) {
            if (addressesOf(user, localDomain).includes(lower)) return user;
        }
        return null;
    }

    private onAuth(auth: SMTPServerAuthentication, session: SMTPServerSession, callback: (err: Error | null | undefined, response?: { user: unknown }) => void): void {
        attemptLogin(loginDeps(this.ctx), { address: session.remoteAddress || 'unknown', username: String(auth.username ?? ''), password: String(auth.password ?? ''), protocol: 'smtp' })
            .then(outcome => {
                if (!outcome.ok) {
                    // A failure is answered late (the auth penalty), but always answered.
                    return void setTimeout(() => callback(smtpError(535, '5.7.8 Authentication failed')), outcome.delayMs).unref();
                }
                callback(null, { user: { id: outcome.user.id, name: outcome.user.name } satisfies SessionUser });
            })
            .catch(err => {
                this.ctx.logger.error({ err: { message: (err as Error).message } }, 'password check failed');
                callback(smtpError(454, '4.7.0 Temporary authentication failure'));
            });
    }

    private onMailFrom(address: SMTPServerAddress, session: SMTPServerSession, callback: (err?: Error | null) => void): void {
        const user = this.configuredUser(session);
        if (!user) return callback(smtpError(530, '5.7.0 Authentication required'));
        const allowed = addressesOf(user, this.ctx.localDomain());
        if (!allowed.includes(address.address.toLowerCase())) {
            return callback(smtpError(550, `5.7.1 You may not send as <${address.address}>; your addresses are: ${allowed.join(', ')}`));
        }
        callback();
    }

    private onRcptTo(address: SMTPServerAddress, session: SMTPServerSession, callback: (err?: Error | null) => void): void {
        const user = this.configuredUser(session);
        if (!user) return callback(smtpError(530, '5.7.0 Authentication required'));
        if (session.envelope.rcptTo.length >= this.options.maxRecipients) {
            return callback(smtpError(452, `4.5.3 Too many recipients (at most ${this.options.maxRecipients} per message)`));
        }
        const rcpt = address.address;
        if (this.isLocalDomain(rcpt)) {
            if (!this.localRecipient(rcpt)) return callback(smtpError(550, `5.1.1 <${rcpt}>: no such user here`));
            return callback();
        }
        // An upstream address of a local user is a local recipient: delivered here, never relayed.
        if (this.localRecipient(rcpt)) return callback();
        const mailFrom = session.envelope.mailFrom ? session.envelope.mailFrom.address.toLowerCase() : '';
        if (!user.accounts.some(account => account.address.toLowerCase() === mailFrom)) {
            const upstream = user.accounts.map(account => account.address);
            return callback(
                smtpError(
                    550,
                    upstream.length
                        ? `5.7.1 Mail to <${rcpt}> leaves the village: send it from one of your upstream addresses: ${upstream.join(', ')}`
                        : `5.7.1 Mail to <${rcpt}> leaves the village, but you have no upstream account; ask the admin to add one`
                )
            );
        }
        callback();
    }

    private onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback: (err?: Error | null, message?: string) => void): void {
        const chunks: Buffer[] = [];
        let length = 0;
        let failed = false;
        stream.on('data', (chunk: Buffer) => {
            // Past the limit, stop keeping data: smtp-server answers 552 when the stream ends.
            if (!stream.sizeExceeded) {
                chunks.push(chunk);
                length += chunk.length;
            }
        });
        stream.once('error', err => {
            failed = true;
            this.ctx.logger.info({ session: session.id, err: { message: err.message } }, 'message not received in full; nothing stored');
            callback(smtpError(451, '4.3.0 Message not received in full'));
        });
        stream.once('end', () => {
            if (failed) return;
            if (stream.sizeExceeded) {
                return callback(smtpError(552, `5.3.4 Message exceeds the maximum size of ${this.options.maxMessageSize} bytes`));
            }
            const accepting = this.accept(Buffer.concat(chunks, length), session).then(
                message => callback(null, message),
                err => {
                    if (typeof err?.responseCode === 'number') return callback(err);
                    const reply = failureReply(err);
                    this.ctx.logger.error({ session: session.id, reply: reply.code, err: { message: err?.message, code: err?.code } }, 'could not queue message');
                    callback(smtpError(reply.code, reply.text));
                }
            );
            this.accepting.add(accepting);
            void accepting.finally(() => this.accepting.delete(accepting));
        });
    }

    /** Builds the submission (headers, copies, recipients) and commits it. */
    private async accept(received: Buffer, session: SMTPServerSession): Promise<string> {
        const user = this.configuredUser(session);
        const sessionUser = userOf(session);
        if (!user || !sessionUser) throw smtpError(530, '5.7.0 Authentication required');
        if (received.includes(0)) {
            throw smtpError(554, '5.6.0 Message contains NUL characters, which SMTP does not allow');
        }
        const raw = normaliseLineEnds(received);
        const localDomain = this.ctx.localDomain();
        const allowed = addressesOf(user, localDomain);
        const mailFrom = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
        const split = splitMessage(raw);
        // Every From, Sender and Resent-From/-Sender field is checked: a second one must not smuggle in someone else's address.
        const identity = checkIdentityFields(split.fields, allowed, mailFrom);
        if (!identity.ok) {
            const shown = Array.from(identity.value).slice(0, 200).join('');
            throw smtpError(550, `5.7.1 The ${identity.field} header (${shown}) is not yours; your addresses are: ${allowed.join(', ')}`);
        }
        const fields = identity.fields;
        const hostname = this.ctx.hostname();
        if (!fieldValue(fields, 'message-id')) fields.push(`Message-ID: <${crypto.randomUUID()}@${hostname}>`);
        if (!fieldValue(fields, 'date')) fields.push(`Date: ${new Date().toUTCString().replace('GMT', '+0000')}`);
        const recipients = session.envelope.rcptTo.map(r => r.address);
        const received_ = [
            `Received: from ${session.hostNameAppearsAs || 'unknown'} (${session.clientHostname || 'unknown'} [${session.remoteAddress}])`,
            `\tby ${hostname} (mailmule) with ${session.transmissionType || 'ESMTPSA'} id ${session.id}`,
            `\tfor ${recipients.length === 1 ? `<${recipients[0]}>` : 'multiple recipients'}; ${new Date().toUTCString().replace('GMT', '+0000')}`
        ].join('\r\n');
        fields.unshift(received_);

        const sentRaw = joinMessage(fields, split.body);
        const relayFields = fields.filter(field => fieldName(field) !== 'bcc');
        const relayRaw = relayFields.length === fields.length ? sentRaw : joinMessage(relayFields, split.body);
        const sentAnalysed = this.ctx.store.messages.analyse(sentRaw);
        const relayAnalysed = relayRaw === sentRaw ? sentAnalysed : this.ctx.store.messages.analyse(relayRaw);

        // A local user's upstream address gets the message in their INBOX now and, when the sender
        // has an upstream account to relay through, at the provider too (so it is there for their
        // phone); the uplink later links that upstream copy to the local one by Message-ID.
        const canRelay = user.accounts.some(a => a.address.toLowerCase() === mailFrom.toLowerCase());
        const relayRecipients = recipients.filter(address => !this.isLocalDomain(address) && (canRelay || !this.localRecipient(address)));
        const localUserIds = recipients
            .map(address => this.localRecipient(address))
            .filter((u): u is ResolvedUser => Boolean(u))
            .map(u => this.ctx.store.users.ensure(u.name).id);
        const account = user.accounts.find(a => a.address.toLowerCase() === mailFrom.toLowerCase()) ?? null;

        const result = await this.ctx.submit({
            userId: sessionUser.id,
            mailFrom,
            account: account ? account.address : null,
            relayRecipients,
            relay: { raw: relayRaw, analysed: relayAnalysed },
            sent: { raw: sentRaw, analysed: sentAnalysed },
            localUserIds
        });
        this.ctx.logger.info(
            {
                session: session.id,
                user: user.name,
                queueId: result.queueId,
                size: relayRaw.length,
                relayRecipients: relayRecipients.length,
                localRecipients: result.deliveredTo.length
            },
            'message accepted'
        );
        return result.queueId !== null ? `2.0.0 Ok: queued as ${result.queueId}` : '2.0.0 Ok: delivered locally';
    }

    private createServer(listener: ListenerConfig): SMTPServer {
        const secure = listener.security === 'tls';
        const server = new SMTPServer({
            secure,
            key: this.options.tls.key,
            cert: this.options.tls.cert,
            name: this.ctx.hostname(),
            banner: 'mailmule submission',
            authMethods: ['PLAIN', 'LOGIN'],
            authOptional: false,
            allowInsecureAuth: !secure && listener.allowPlaintextAuth,
            size: this.options.maxMessageSize,
            // Silence, and (smtp-server patch 002) each request's deadline with its minimum rate.
            socketTimeout: this.options.timeout * 1000,
            requestTimeout: this.options.timeout * 1000,
            minDataRate: this.options.minDataRate,
            // Our replies carry their own enhanced codes (RFC 3463) in the text.
            hideENHANCEDSTATUSCODES: true,
            hideDSN: true,
            // On SIGTERM, idle clients get 1 s (as imap-core gives them), not smtp-server's default 30 s.
            closeTimeout: 1000,
            // The uplink is usually down: a reverse DNS lookup per LAN connection would only add delay.
            disableReverseLookup: true,
            disabledCommands: [],
            logger: engineLogger(this.ctx.logger) as never,
            onAuth: (auth, session, cb) => this.onAuth(auth, session, cb),
            onMailFrom: (address, session, cb) => this.onMailFrom(address, session, cb),
            onRcptTo: (address, session, cb) => this.onRcptTo(address, session, cb),
            onData: (stream, session, cb) => this.onData(stream, session, cb)
        });
        // A failed bind is reported once, by start(), as the reason the daemon cannot start.
        let bound = false;
        server.server.once('listening', () => (bound = true));
        server.on('error', err => {
            if (!bound) return;
            this.ctx.logger.warn({ err: { message: err.message, code: (err as NodeJS.ErrnoException).code }, port: listener.port }, 'SMTP connection error');
        });
        return server;
    }

    async start(): Promise<RunningSmtpListener[]> {
        for (const listener of this.options.listeners) {
            const server = this.createServer(listener);
            const port = await bind(server.server, `the SMTP ${listener.security} listener`, listener.host, listener.port);
            this.servers.push(server);
            this.listening.push({ host: listener.host, port, security: listener.security });
        }
        return this.listening;
    }

    /** Serves `pair` to every connection from now on (a renewed certificate); open sessions keep theirs. */
    setTls(pair: { key: Buffer; cert: Buffer }): void {
        for (const server of this.servers) server.updateSecureContext({ key: pair.key, cert: pair.cert });
    }

    /**
     * Stops accepting connections; a client still in a session gets 1 s (closeTimeout), then 421.
     * A message whose DATA was still arriving is dropped (its stream fails: nothing is stored, the
     * client sends it again); one already received is committed before this resolves, so the
     * store can be closed after it.
     */
    async stop(): Promise<void> {
        await Promise.all(this.servers.map(server => new Promise<void>(resolve => server.close(() => resolve()))));
        this.servers.length = 0;
        await Promise.allSettled([...this.accepting]);
    }
}
