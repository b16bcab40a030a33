/**
 * LIST and LSUB: the user's folders and subscriptions; imap-core filters by pattern and adds
 * \Noselect parents. LSUB also answers subscribed names whose mailbox is gone (RFC 3501 6.3.6);
 * LIST-EXTENDED (RFC 5258) reads both to mark \Subscribed and \NonExistent.
 */
import { guarded, type Callback, type ImapContext, type ImapSession } from './context';

export function onList(ctx: ImapContext) {
    return (_query: string, session: ImapSession, callback: Callback): void =>
        guarded(ctx, 'list', callback, () => {
            const folders = ctx.store.mailboxes.list(session.user.id).map(mailbox => (mailbox.specialUse ? { path: mailbox.path, specialUse: mailbox.specialUse } : { path: mailbox.path }));
            callback(null, folders);
        });
}

export function onLsub(ctx: ImapContext) {
    return (_query: string, session: ImapSession, callback: Callback): void =>
        guarded(ctx, 'lsub', callback, () => {
            const specialUse = new Map(ctx.store.mailboxes.list(session.user.id).map(mailbox => [mailbox.path, mailbox.specialUse]));
            const folders = ctx.store.mailboxes.subscriptions(session.user.id).map(path => {
                const use = specialUse.get(path);
                return use ? { path, specialUse: use } : { path };
            });
            callback(null, folders);
        });
}
