/** SUBSCRIBE and UNSUBSCRIBE. */
import { guarded, type Callback, type ImapContext, type ImapSession } from './context';

function subscription(ctx: ImapContext, subscribed: boolean) {
    return (path: string, session: ImapSession, callback: Callback): void =>
        guarded(ctx, subscribed ? 'subscribe' : 'unsubscribe', callback, () => {
            callback(null, ctx.store.setSubscribed(session.user.id, path, subscribed) ? true : 'NONEXISTENT');
        });
}

export const onSubscribe = (ctx: ImapContext) => subscription(ctx, true);
export const onUnsubscribe = (ctx: ImapContext) => subscription(ctx, false);
