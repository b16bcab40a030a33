/** SELECT and EXAMINE: the mailbox state and UID list from one snapshot. */
import { guarded, type Callback, type ImapContext, type ImapSession } from './context';

export function onOpen(ctx: ImapContext) {
    return (path: string, session: ImapSession, callback: Callback): void =>
        guarded(ctx, 'open', callback, () => {
            const mailbox = ctx.store.openMailbox(session.user.id, path);
            if (!mailbox) {
                return callback(null, 'NONEXISTENT');
            }
            callback(null, {
                _id: mailbox.id,
                uidValidity: mailbox.uidValidity,
                uidNext: mailbox.uidNext,
                modifyIndex: mailbox.modifyIndex,
                uidList: mailbox.uidList,
                flags: mailbox.keywords
            });
        });
}
