/** LOGIN and AUTHENTICATE PLAIN against local users (passwords from `mailmule passwd`). */
import { attemptLogin, loginDeps } from '../auth';
import { guarded, type Callback, type ImapContext, type ImapSession } from './context';

interface Login {
    method: 'LOGIN' | 'PLAIN';
    username: string;
    password: string;
}

export function onAuth(ctx: ImapContext) {
    return (login: Login, session: ImapSession, callback: Callback): void =>
        guarded(ctx, 'auth', callback, async () => {
            const outcome = await attemptLogin(loginDeps(ctx), {
                address: session.remoteAddress || 'unknown',
                username: String(login.username ?? ''),
                password: String(login.password ?? ''),
                protocol: 'imap'
            });
            if (!outcome.ok) {
                // A failure is answered late (the auth penalty), but always answered.
                return void setTimeout(() => callback(null, false), outcome.delayMs).unref();
            }
            callback(null, { user: { id: outcome.user.id, username: outcome.user.name } });
        });
}
