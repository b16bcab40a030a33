/**
 * One login attempt, the same for IMAP, SMTP and the web pages: find the local user however the name was
 * spelled, apply the auth penalty (src/auth/limiter.ts), check the password, and count the
 * outcome. The caller answers: at once on success, after `delayMs` on failure (a delayed reply
 * is still a reply).
 */
import type { ResolvedUser } from '../config';
import type { Logger } from '../log';
import type { AuthPenalty } from './limiter';
import { verifyPassword } from './passwords';
import { findLocalUser } from './users';

export interface LoginDeps {
    users(): readonly ResolvedUser[];
    localDomain(): string;
    limiter: AuthPenalty;
    logger: Logger;
    /** The store's row for a configured user (created on first use). */
    ensureUser(name: string): { id: number; name: string; passwordHash: string | null };
    verifyPassword(password: string, stored: string | null): Promise<boolean>;
}

/** What the IMAP, SMTP and web contexts each offer that a login needs. */
export interface LoginSource {
    users(): readonly ResolvedUser[];
    localDomain(): string;
    limiter: AuthPenalty;
    logger: Logger;
    store: { users: { ensure(name: string): { id: number; name: string; passwordHash: string | null } } };
    /** The password check (default: src/auth/passwords.ts); tests and the daemon may give their own. */
    verifyPassword?(password: string, stored: string | null): Promise<boolean>;
}

/** The dependencies of attemptLogin, from a protocol's context. */
export function loginDeps(source: LoginSource): LoginDeps {
    return {
        users: () => source.users(),
        localDomain: () => source.localDomain(),
        limiter: source.limiter,
        logger: source.logger,
        ensureUser: name => source.store.users.ensure(name),
        verifyPassword: (password, stored) => (source.verifyPassword ? source.verifyPassword(password, stored) : verifyPassword(password, stored))
    };
}

export interface LoginAttempt {
    address: string;
    username: string;
    password: string;
    protocol: 'imap' | 'smtp' | 'web';
}

export type LoginOutcome = { ok: true; user: { id: number; name: string } } | { ok: false; delayMs: number };

export async function attemptLogin(deps: LoginDeps, attempt: LoginAttempt): Promise<LoginOutcome> {
    const { address, username, password, protocol } = attempt;
    const configured = findLocalUser(deps.users(), username, deps.localDomain());
    // Count against the account, however its name was spelled (the penalty is shared by IMAP and SMTP).
    const userKey = configured?.name ?? username.toLowerCase();

    const verdict = deps.limiter.check(address, userKey);
    if (verdict.refuse) {
        deps.logger.warn({ remoteAddress: address, username, protocol }, 'login refused: too many failures for this user from this address');
        return { ok: false, delayMs: verdict.delayMs };
    }
    const user = configured ? deps.ensureUser(configured.name) : null;
    // Always hash, so that an unknown name takes as long as a wrong password.
    const ok = await deps.verifyPassword(password, user?.passwordHash ?? null);
    if (!ok || !user) {
        const failure = deps.limiter.fail(address, userKey, password);
        deps.logger.info({ remoteAddress: address, username, failures: failure.failures, repeated: !failure.counted, delayMs: failure.delayMs, protocol }, 'login failed');
        return { ok: false, delayMs: failure.delayMs };
    }
    deps.limiter.succeed(address, userKey);
    return { ok: true, user: { id: user.id, name: user.name } };
}
