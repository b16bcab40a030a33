/**
 * The web listeners: node:http for plain listeners and node:https (the LAN TLS pair) for TLS
 * ones, each running the same hono app through @hono/node-server's adapter.
 *
 * The LAN may be hostile, so every request is bounded: headers 16 KB and 10 s to arrive, the
 * whole request 30 s, bodies 16 KB (app.ts), a TLS handshake 10 s, idle keep-alive 5 s, at most
 * 100 requests per connection and 256 connections per listener. A request that breaks any of
 * these is answered (node's own 400, 408 and 431; 413 from app.ts) and its connection closed,
 * and a TLS client that fails its handshake is dropped (no 'tlsClientError' listener): none of it
 * reaches the rest of the daemon.
 */
import http from 'node:http';
import https from 'node:https';
import { createAdaptorServer } from '@hono/node-server';
import type { WebListenerConfig } from '../config';
import { bind } from '../listen';
import type { WebContext } from './context';
import { createWebApp } from './app';

export interface WebServiceOptions {
    listeners: WebListenerConfig[];
    tls: { key: Buffer; cert: Buffer };
}

export interface RunningWebListener {
    host: string;
    port: number;
    security: 'plain' | 'tls';
}

const LIMITS = {
    maxHeaderSize: 16 * 1024,
    headersTimeout: 10_000,
    requestTimeout: 30_000,
    keepAliveTimeout: 5_000,
    connectionsCheckingInterval: 1_000
} satisfies http.ServerOptions;
const MAX_CONNECTIONS = 256;
const MAX_REQUESTS_PER_SOCKET = 100;
const HANDSHAKE_TIMEOUT_MS = 10_000;
/** As long as IMAP and SMTP clients get at shutdown. */
const CLOSE_GRACE_MS = 1000;

export class WebService {
    private readonly servers: http.Server[] = [];
    readonly listening: RunningWebListener[] = [];

    constructor(
        private readonly ctx: WebContext,
        private readonly options: WebServiceOptions
    ) {}

    async start(): Promise<RunningWebListener[]> {
        const app = createWebApp(this.ctx, { httpsPort: () => this.listening.find(l => l.security === 'tls')?.port ?? null });
        // HTTPS first: a plain listener redirects to it from its first request on.
        const listeners = [...this.options.listeners].sort((a, b) => Number(b.security === 'tls') - Number(a.security === 'tls'));
        for (const listener of listeners) {
            const server = (
                listener.security === 'tls'
                    ? createAdaptorServer({
                          fetch: app.fetch,
                          createServer: https.createServer,
                          serverOptions: { ...LIMITS, key: this.options.tls.key, cert: this.options.tls.cert, handshakeTimeout: HANDSHAKE_TIMEOUT_MS }
                      })
                    : createAdaptorServer({ fetch: app.fetch, createServer: http.createServer, serverOptions: LIMITS })
            ) as http.Server;
            server.maxConnections = MAX_CONNECTIONS;
            server.maxRequestsPerSocket = MAX_REQUESTS_PER_SOCKET;
            this.servers.push(server);
            const port = await bind(server, `the web ${listener.security} listener`, listener.host, listener.port);
            this.listening.push({ host: listener.host, port, security: listener.security });
        }
        if (this.listening.length && !this.listening.some(l => l.security === 'tls')) {
            this.ctx.logger.warn('no web tls listener: the login page and password change travel over plain HTTP; add a tls listener to web.listeners');
        }
        return this.listening;
    }

    /** Serves `pair` on the TLS listeners from now on (a renewed certificate); open connections keep theirs. */
    setTls(pair: { key: Buffer; cert: Buffer }): void {
        for (const server of this.servers) if (server instanceof https.Server) server.setSecureContext({ key: pair.key, cert: pair.cert });
    }

    /** Stops accepting; open requests get CLOSE_GRACE_MS, then their connections are closed. */
    async stop(): Promise<void> {
        await Promise.all(
            this.servers.map(
                server =>
                    new Promise<void>(resolve => {
                        if (!server.listening) return resolve();
                        const timer = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
                        timer.unref();
                        server.close(() => {
                            clearTimeout(timer);
                            resolve();
                        });
                        server.closeIdleConnections();
                    })
            )
        );
    }
}
