/** SELECT and EXAMINE: the mailbox state and UID list from one snapshot. */
import { guarded, type Callback, type ImapContext, type ImapSession } from './context';

export function onOpen(ctx: ImapContext) {
    // imap-core (patch 033) passes { readOnly } after the callback: EXAMINE does not take \Recent.
    return (path: string, session: ImapSession, callback: Callback, options?: { readOnly?: boolean }): void =>
        guarded(ctx, 'open', callback, () => {
            const mailbox = ctx.store.mailboxes.open(session.user.id, path, { readOnly: Boolean(options?.readOnly) });
            if (!mailbox) {
                return callback(null, 'NONEXISTENT');
            }
            callback(null, {
                _id: mailbox.id,
                uidValidity: mailbox.uidValidity,
                uidNext: mailbox.uidNext,
                modifyIndex: mailbox.modifyIndex,
                uidList: mailbox.uidList,
                recent: mailbox.recent,
                unseenUid: mailbox.unseenUid,
                flags: mailbox.keywords
            });
        });
}
