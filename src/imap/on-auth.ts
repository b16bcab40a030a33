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
            const wait = ctx.limiter.retryAfter(address);
            if (wait > 0) {
                ctx.logger.warn({ remoteAddress: address, username: login.username, protocol: 'imap' }, 'login refused: too many failures');
                if (login.method === 'LOGIN') {
                    const err = Object.assign(new Error('rate limited'), {
                        response: 'NO',
                        code: 'UNAVAILABLE',
                        message: `Too many failed logins from your address, try again in ${wait} seconds`
                    });
                    return callback(err);
                }
                return callback(null, false);
            }
            const configured = findLocalUser(ctx.users(), login.username || '', ctx.localDomain());
            const user = configured ? ctx.store.ensureUser(configured.name) : null;
            // Always hash, so that an unknown name takes as long as a wrong password.
            const ok = await verifyPassword(String(login.password ?? ''), user?.passwordHash ?? null);
            if (!ok || !user) {
                const failures = ctx.limiter.fail(address);
                ctx.logger.info({ remoteAddress: address, username: login.username, failures, protocol: 'imap' }, 'login failed');
                return callback(null, false);
            }
            ctx.limiter.succeed(address);
            callback(null, { user: { id: user.id, username: user.name } });
        });
}
