/** SUBSCRIBE and UNSUBSCRIBE. */
import { guarded, utf8MailboxPath, type Callback, type ImapContext, type ImapSession } from './context';

function subscription(ctx: ImapContext, subscribed: boolean) {
    return (path: string, session: ImapSession, callback: Callback): void =>
        guarded(ctx, subscribed ? 'subscribe' : 'unsubscribe', callback, () => {
            // imap-core decodes SUBSCRIBE's argument but not UNSUBSCRIBE's.
            const decoded = subscribed ? path : utf8MailboxPath(path, session);
            callback(null, ctx.store.setSubscribed(session.user.id, decoded, subscribed) ? true : 'NONEXISTENT');
        });
}

export const onSubscribe = (ctx: ImapContext) => subscription(ctx, true);
export const onUnsubscribe = (ctx: ImapContext) => subscription(ctx, false);
