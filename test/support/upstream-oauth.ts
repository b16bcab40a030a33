/**
 * The OAuth 2.0 side of test/support/upstream.ts (`oauth2: true`): a token endpoint and an
 * RFC 7662 introspection endpoint on loopback, which Dovecot's oauth2 passdb asks about every
 * XOAUTH2/OAUTHBEARER login.
 */
import crypto from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import type { UpstreamOAuth } from './upstream';

export interface OAuthServer {
    api: UpstreamOAuth;
    close(): Promise<void>;
}

/** Token endpoint + RFC 7662 introspection endpoint for Dovecot's oauth2 passdb. */
export async function startOAuthServer(knownAddresses: string[]): Promise<OAuthServer> {
    const clientId = 'mailmule-test-client';
    const refreshTokens = new Map<string, string>(); // refresh token -> address
    const refreshByAddress = new Map<string, string>();
    const accessTokens = new Map<string, { address: string; expiresAt: number }>();
    let tokenRequests = 0;
    let introspections = 0;
    for (const address of knownAddresses) {
        const token = 'rt-' + crypto.randomBytes(12).toString('hex');
        refreshTokens.set(token, address);
        refreshByAddress.set(address.toLowerCase(), token);
    }
    const issue = (address: string, ttlSeconds = 3600) => {
        const token = 'at-' + crypto.randomBytes(16).toString('hex');
        accessTokens.set(token, { address: address.toLowerCase(), expiresAt: Date.now() + ttlSeconds * 1000 });
        return token;
    };
    const server = http.createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', chunk => chunks.push(chunk));
        req.on('end', () => {
            const url = new URL(req.url ?? '/', 'http://127.0.0.1');
            const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
            const json = (status: number, body: unknown) => {
                res.writeHead(status, { 'content-type': 'application/json' });
                res.end(JSON.stringify(body));
            };
            if (url.pathname === '/token' && req.method === 'POST') {
                tokenRequests++;
                const address = refreshTokens.get(form.get('refresh_token') ?? '');
                if (form.get('grant_type') !== 'refresh_token' || form.get('client_id') !== clientId || !address) {
                    return json(400, { error: 'invalid_grant' });
                }
                return json(200, { access_token: issue(address), token_type: 'Bearer', expires_in: 3600 });
            }
            if (url.pathname === '/introspect') {
                introspections++;
                const token = form.get('token') ?? url.searchParams.get('token') ?? (req.headers.authorization ?? '').replace(/^Bearer\s+/i, '');
                const entry = accessTokens.get(token);
                if (!entry || entry.expiresAt < Date.now()) return json(200, { active: false });
                return json(200, { active: true, username: entry.address, exp: Math.floor(entry.expiresAt / 1000) });
            }
            json(404, { error: 'not_found' });
        });
    });
    await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', resolve);
    });
    const { port } = server.address() as net.AddressInfo;
    return {
        api: {
            tokenUrl: `http://127.0.0.1:${port}/token`,
            introspectionUrl: `http://127.0.0.1:${port}/introspect`,
            clientId,
            refreshTokenFor(address) {
                const token = refreshByAddress.get(address.toLowerCase());
                if (!token) throw new Error(`no such upstream user ${address}`);
                return token;
            },
            issueAccessToken: (address, ttl) => issue(address, ttl),
            revokeAccessTokens: () => accessTokens.clear(),
            stats: () => ({ tokenRequests, introspections })
        },
        close: () =>
            new Promise<void>(resolve => {
                server.closeAllConnections();
                server.close(() => resolve());
            })
    };
}
