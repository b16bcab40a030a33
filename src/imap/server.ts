/**
 * The LAN IMAP service: one imap-core server per configured listener, all sharing the same
 * handlers, store and notifier.
 */
import { engineLogger } from '../log';
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
import { onStore } from './on-store';
import { onExpunge } from './on-expunge';
import { onCopy } from './on-copy';
import { onMove } from './on-move';
import { onFetch } from './on-fetch';
import { onSearch } from './on-search';
import { onSort } from './on-sort';
import { onThread } from './on-thread';
import { onGetQuota, onGetQuotaRoot } from './on-quota';

export interface ImapServiceOptions {
    listeners: ListenerConfig[];
    tls: TlsPair;
    hostname: string;
    version: string;
    /** Largest APPEND accepted (imap-core enforces at least 1 MiB). */
    maxMessageSize: number;
}

export interface RunningListener {
    host: string;
    port: number;
    security: 'starttls' | 'tls';
}

export class ImapService {
    private readonly servers: any[] = [];
    readonly listening: RunningListener[] = [];

    constructor(private readonly ctx: ImapContext, private readonly options: ImapServiceOptions) {}

    private createServer(listener: ListenerConfig): any {
        const ctx = this.ctx;
        const secure = listener.security === 'tls';
        const server = new IMAPServer({
            secure,
            key: this.options.tls.key,
            cert: this.options.tls.cert,
            // imap-core installs no SNI callback on implicit-TLS servers and then fails every client that sends SNI.
            SNICallback: (_servername: string, cb: (err: Error | null, ctx: unknown) => void) => cb(null, null),
            ignoreSTARTTLS: !secure && listener.allowPlaintextAuth,
            disableSTARTTLS: false,
            enableCompression: true,
            maxMessage: this.options.maxMessageSize,
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
        server.on('error', (err: Error) => ctx.logger.warn({ err: { message: err.message, code: (err as NodeJS.ErrnoException).code }, port: listener.port }, 'IMAP connection error'));
        server.notifier = ctx.notifier;
        server.loggelf = () => false;
        server.onAuth = onAuth(ctx);
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
            await new Promise<void>((resolve, reject) => {
                const onError = (err: Error) => reject(err);
                server.server ? server.server.once('error', onError) : server.once('error', onError);
                server.listen(listener.port, listener.host, () => {
                    server.server?.off?.('error', onError);
                    resolve();
                });
            });
            const address = server.server?.address?.() ?? null;
            const port = address && typeof address === 'object' ? address.port : listener.port;
            this.servers.push(server);
            this.listening.push({ host: listener.host, port, security: listener.security });
        }
        return this.listening;
    }

    async stop(): Promise<void> {
        await Promise.all(this.servers.map(server => new Promise<void>(resolve => server.close(() => resolve()))));
        this.servers.length = 0;
    }
}
