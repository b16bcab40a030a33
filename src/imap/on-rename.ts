/** RENAME, children included. imap-core refuses renaming INBOX before we are called. */
import { guarded, type Callback, type ImapContext, type ImapSession } from './context';

export function onRename(ctx: ImapContext) {
    return (path: string, newPath: string, session: ImapSession, callback: Callback): void =>
        guarded(ctx, 'rename', callback, () => {
            const result = ctx.store.renameMailbox(session.user.id, path, newPath);
            if (typeof result === 'number') {
                return callback(null, true, result);
            }
            if (result === 'ALREADYEXISTS' || result === 'NONEXISTENT') {
                return callback(null, result);
            }
            // imap-core (patch 090) answers an IMAP response code in err.code, with responseMessage as its text.
            callback(Object.assign(new Error('Cannot rename this mailbox'), { code: result, responseMessage: 'Cannot rename this mailbox' }));
        });
}
