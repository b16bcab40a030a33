/**
 * The LAN IMAP service: one imap-core server per configured listener, all sharing the same
 * handlers, store and notifier.
 */
import type { EventEmitter } from 'node:events';
import type { Server } from 'node:net';
import { engineLogger, isClientGone } from '../log';
import { bind } from '../listen';
import type { ListenerConfig } from '../config';
import type { TlsPair } from '../tls';
import { IMAPServer } from './engine';
import type { ImapContext } from './context';
import { onAuth } from './on-auth';
import { onList, onLsub } from './on-list';
import { onSubscribe, onUnsubscribe } from './on-subscribe';
import { onCreate } from './on-create';
import { onRename } from './on-rename';
import { onDelete } from './on-delete';
import { onOpen } from './on-open';
import { onStatus } from './on-status';
import { onAppend, onAppendMultiple } from './on-append';
import { onAppendCatenate } from './on-catenate';
import { onStore } from './on-store';
import { onExpunge } from './on-expunge';
import { onCopy } from './on-copy';
import { onMove } from './on-move';
import { onFetch } from './on-fetch';
import { onSearch } from './on-search';
import { onSort } from './on-sort';
import { onThread } from './on-thread';
import { onGetQuota, onGetQuotaRoot } from './on-quota';
import { ConnectionLimit } from './connection-limit';
import { logCommand } from './command-log';

/** Dovecot's command line limit; imaptest's `id` file needs more than imap-core's 8 KiB. */
export const MAX_LINE_LENGTH = 64 * 1024;

export interface ImapServiceOptions {
    listeners: ListenerConfig[];
    tls: TlsPair;
    hostname: string;
    version: string;
    /** Largest APPEND accepted (imap-core enforces at least 1 MiB). */
    maxMessageSize: number;
    /** Seconds a connection has to log in. */
    loginTimeout: number;
    /** Seconds of silence after which a logged-in session outside IDLE is closed. */
    autologoutTimeout: number;
    /** Seconds of silence in IDLE after which a keep-alive is sent. */
    idleKeepalive: number;
    /** Seconds a client may take none of the output waiting for it before it is disconnected. */
    outputTimeout: number;
    /** Logged-in sessions per (user, client address). */
    maxConnectionsPerUserAddress: number;
}

export interface RunningListener {
    host: string;
    port: number;
    security: 'starttls' | 'tls';
}

/** An imap-core IMAPServer as used here: it wraps a net or TLS server, and its hooks (onAuth, onFetch, ...) are properties. */
interface ImapCoreServer extends EventEmitter {
    server: Server;
    listen(port: number, host: string, callback: () => void): void;
    close(callback: () => void): void;
    /** Rebuilds the TLS context implicit TLS and STARTTLS upgrade with (imap-core's own method). */
    updateSecureContext(options: { key: Buffer; cert: Buffer }): void;
    [hook: string]: unknown;
}

export class ImapService {
    private readonly servers: ImapCoreServer[] = [];
    readonly listening: RunningListener[] = [];
    /** Shared by all listeners: the limit is per user and address, whichever port is used. */
    readonly connectionLimit: ConnectionLimit;

    constructor(
        private readonly ctx: ImapContext,
        private readonly options: ImapServiceOptions
    ) {
        this.connectionLimit = new ConnectionLimit(() => this.options.maxConnectionsPerUserAddress, ctx.logger);
    }

    private createServer(listener: ListenerConfig): ImapCoreServer {
        const ctx = this.ctx;
        const secure = listener.security === 'tls';
        const server = new IMAPServer({
            // Embedded on its own: no WildDuck config files, GELF reporter or Prometheus collectors
            // (patch 110); failures are logged through engineLogger only.
            standalone: true,
            secure,
            key: this.options.tls.key,
            cert: this.options.tls.cert,
            // imap-core installs no SNI callback on implicit-TLS servers and then fails every client that sends SNI.
            SNICallback: (_servername: string, cb: (err: Error | null, ctx: unknown) => void) => cb(null, null),
            ignoreSTARTTLS: !secure && listener.allowPlaintextAuth,
            disableSTARTTLS: false,
            enableCompression: true,
            // on-fetch.ts decodes BINARY[...] and BINARY.SIZE[...] (RFC 3516)
            enableBinary: true,
            maxMessage: this.options.maxMessageSize,
            // Every input bounded: a command line (literals excluded) is cut off past 64 KiB, and
            // after COMPRESS a command may inflate to no more than one line plus one message.
            maxLineLength: MAX_LINE_LENGTH,
            maxCompressionInflateBytes: MAX_LINE_LENGTH + Math.max(this.options.maxMessageSize, 1024 * 1024),
            loginTimeout: this.options.loginTimeout * 1000,
            // imap-core's socket timeout: silence outside IDLE ends the session. Inside IDLE a
            // keep-alive goes out after idleKeepaliveInterval instead, and IDLE itself ends after
            // idleTimeout.
            socketTimeout: this.options.autologoutTimeout * 1000,
            idleKeepaliveInterval: this.options.idleKeepalive * 1000,
            idleTimeout: Math.max(this.options.autologoutTimeout, 30 * 60) * 1000,
            // a client that reads none of its output (an IDLE session's notifications held back, a
            // FETCH waiting) for this long is disconnected (patches/ 136)
            outputTimeout: this.options.outputTimeout * 1000,
            disableReverseLookup: true,
            greeting: 'mailmule ready',
            logoutMessages: ['Logged out'],
            logger: engineLogger(ctx.logger),
            skipFetchLog: true,
            // A STORE on a message another session has expunged, while this session still has it,
            // is not an error: RFC 2180 4.2.1 allows OK, and Dovecot answers OK and skips it (as
            // UID STORE already does). imap-core's default answers NO, which clients take as failure.
            allowStoreExpunged: true,
            id: { name: 'mailmule', version: this.options.version, vendor: 'mailmule' }
        });
        // imap-core writes a response in several small pieces (untagged lines, literal, tagged OK).
        // With Nagle's algorithm on, each command then waits for the client's delayed ACK: about
        // 40 ms per command on Linux, which made every SELECT and single-message FETCH slow.
        server.server.on('connection', (socket: import('node:net').Socket) => socket.setNoDelay(true));
        // A failed bind is reported once, by start(), as the reason the daemon cannot start.
        let bound = false;
        server.server.once('listening', () => (bound = true));
        server.on('error', (err: Error) => {
            if (!bound) return;
            ctx.logger[isClientGone(err) ? 'info' : 'warn']({ err: { message: err.message, code: (err as NodeJS.ErrnoException).code }, port: listener.port }, 'IMAP connection error');
        });
        server.notifier = ctx.notifier;
        server.loggelf = () => false;
        server.onAuth = this.connectionLimit.wrap(onAuth(ctx));
        server.onClose = (session: { id: string }, done: () => void) => {
            this.connectionLimit.release(session);
            done();
        };
        server.onCommandDone = logCommand(ctx.logger);
        server.onList = onList(ctx);
        server.onLsub = onLsub(ctx);
        server.onSubscribe = onSubscribe(ctx);
        server.onUnsubscribe = onUnsubscribe(ctx);
        server.onCreate = onCreate(ctx);
        server.onRename = onRename(ctx);
        server.onDelete = onDelete(ctx);
        server.onOpen = onOpen(ctx);
        server.onStatus = onStatus(ctx);
        server.onAppend = onAppend(ctx);
        server.onAppendMultiple = onAppendMultiple(ctx);
        server.onAppendCatenate = onAppendCatenate(ctx);
        server.onStore = onStore(ctx);
        server.onExpunge = onExpunge(ctx);
        server.onCopy = onCopy(ctx);
        server.onMove = onMove(ctx);
        server.onFetch = onFetch(ctx);
        server.onSearch = onSearch(ctx);
        server.onSort = onSort(ctx);
        server.onThread = onThread(ctx);
        server.onGetQuotaRoot = onGetQuotaRoot(ctx);
        server.onGetQuota = onGetQuota(ctx);
        return server;
    }

    async start(): Promise<RunningListener[]> {
        for (const listener of this.options.listeners) {
            const server = this.createServer(listener);
            const port = await bind(server.server, `the IMAP ${listener.security} listener`, listener.host, listener.port);
            this.servers.push(server);
            this.listening.push({ host: listener.host, port, security: listener.security });
        }
        return this.listening;
    }

    /** Serves `pair` to every connection from now on (a renewed certificate); open sessions keep theirs. */
    setTls(pair: { key: Buffer; cert: Buffer }): void {
        for (const server of this.servers) server.updateSecureContext({ key: pair.key, cert: pair.cert });
    }

    async stop(): Promise<void> {
        await Promise.all(this.servers.map(server => new Promise<void>(resolve => server.close(() => resolve()))));
        this.servers.length = 0;
    }
}
