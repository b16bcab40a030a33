/** LOGIN and AUTHENTICATE PLAIN against local users (passwords from `mailmule passwd`). */
import { findLocalUser, verifyPassword } from '../auth';
import { guarded, type Callback, type ImapContext, type ImapSession } from './context';

interface Login {
    method: 'LOGIN' | 'PLAIN';
    username: string;
    password: string;
}

export function onAuth(ctx: ImapContext) {
    return (login: Login, session: ImapSession, callback: Callback): void =>
        guarded(ctx, 'auth', callback, async () => {
            const address = session.remoteAddress || 'unknown';
            const username = String(login.username ?? '');
            const configured = findLocalUser(ctx.users(), username, ctx.localDomain());
            // Count against the account, however its name was spelled.
            const userKey = configured?.name ?? username.toLowerCase();
            // A failure is answered late (the auth penalty), but always answered.
            const failLater = (delayMs: number): void => void setTimeout(() => callback(null, false), delayMs).unref();

            const verdict = ctx.limiter.check(address, userKey);
            if (verdict.refuse) {
                ctx.logger.warn({ remoteAddress: address, username, protocol: 'imap' }, 'login refused: too many failures for this user from this address');
                return failLater(verdict.delayMs);
            }
            const user = configured ? ctx.store.ensureUser(configured.name) : null;
            // Always hash, so that an unknown name takes as long as a wrong password.
            const ok = await verifyPassword(String(login.password ?? ''), user?.passwordHash ?? null);
            if (!ok || !user) {
                const failure = ctx.limiter.fail(address, userKey, String(login.password ?? ''));
                ctx.logger.info(
                    { remoteAddress: address, username, failures: failure.failures, repeated: !failure.counted, delayMs: failure.delayMs, protocol: 'imap' },
                    'login failed'
                );
                return failLater(failure.delayMs);
            }
            ctx.limiter.succeed(address, userKey);
            callback(null, { user: { id: user.id, username: user.name } });
        });
}
