/**
 * OAuth2 access tokens for XOAUTH2 (SMTP and IMAP): exchanged from the refresh token in the
 * account map at the provider's token URL, cached until shortly before they expire, and
 * shared by both protocols. Tokens never reach the logs.
 */
import type { Credentials } from '../config';

interface CachedToken {
    accessToken: string;
    expiresAt: number;
}

export class TokenCache {
    private readonly tokens = new Map<string, CachedToken>();

    /** A valid access token for this account; refreshed when missing, expiring, or `force`. */
    async accessToken(account: string, oauth2: NonNullable<Credentials['oauth2']>, force = false): Promise<string> {
        const cached = this.tokens.get(account);
        if (!force && cached && cached.expiresAt - 60_000 > Date.now()) {
            return cached.accessToken;
        }
        const body = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: oauth2.refreshToken, client_id: oauth2.clientId });
        if (oauth2.clientSecret) body.set('client_secret', oauth2.clientSecret);
        const response = await fetch(oauth2.tokenUrl, {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
            body,
            signal: AbortSignal.timeout(30_000)
        });
        const text = await response.text();
        let data: { access_token?: string; expires_in?: number; error?: string };
        try {
            data = JSON.parse(text);
        } catch {
            data = {};
        }
        if (!response.ok || !data.access_token) {
            throw new Error(`token refresh failed at ${new URL(oauth2.tokenUrl).host}: HTTP ${response.status}${data.error ? ` ${data.error}` : ''}`);
        }
        const token = { accessToken: data.access_token, expiresAt: Date.now() + (Number(data.expires_in) || 3600) * 1000 };
        this.tokens.set(account, token);
        return token.accessToken;
    }
}
