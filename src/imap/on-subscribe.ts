/** SUBSCRIBE and UNSUBSCRIBE. */
import { storeErrorCode } from '../store';
import { guarded, utf8MailboxPath, type Callback, type ImapContext, type ImapSession } from './context';

function subscription(ctx: ImapContext, subscribed: boolean) {
    return (path: string, session: ImapSession, callback: Callback): void =>
        guarded(ctx, subscribed ? 'subscribe' : 'unsubscribe', callback, () => {
            // imap-core decodes SUBSCRIBE's argument but not UNSUBSCRIBE's.
            const decoded = subscribed ? path : utf8MailboxPath(path, session);
            try {
                ctx.store.mailboxes.setSubscribed(session.user.id, decoded, subscribed);
            } catch (err) {
                const code = storeErrorCode(err);
                if (!code) throw err;
                return callback(null, code);
            }
            callback(null, true);
        });
}

export const onSubscribe = (ctx: ImapContext) => subscription(ctx, true);
export const onUnsubscribe = (ctx: ImapContext) => subscription(ctx, false);
