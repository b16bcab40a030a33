/** LIST and LSUB: the user's folders; imap-core filters by pattern and adds \Noselect parents. */
import { guarded, type Callback, type ImapContext, type ImapSession } from './context';

function list(ctx: ImapContext, subscribedOnly: boolean) {
    return (_query: string, session: ImapSession, callback: Callback): void =>
        guarded(ctx, subscribedOnly ? 'lsub' : 'list', callback, () => {
            const folders = ctx.store
                .listMailboxes(session.user.id)
                .filter(mailbox => !subscribedOnly || mailbox.subscribed)
                .map(mailbox => (mailbox.specialUse ? { path: mailbox.path, specialUse: mailbox.specialUse } : { path: mailbox.path }));
            callback(null, folders);
        });
}

export const onList = (ctx: ImapContext) => list(ctx, false);
export const onLsub = (ctx: ImapContext) => list(ctx, true);
