/** RENAME, children included. imap-core refuses renaming INBOX before we are called. */
import { storeErrorCode } from '../store';
import { guarded, type Callback, type ImapContext, type ImapSession } from './context';

export function onRename(ctx: ImapContext) {
    return (path: string, newPath: string, session: ImapSession, callback: Callback): void =>
        guarded(ctx, 'rename', callback, () => {
            let id: number;
            try {
                id = ctx.store.mailboxes.rename(session.user.id, path, newPath);
            } catch (err) {
                const code = storeErrorCode(err);
                if (!code) throw err;
                if (code === 'ALREADYEXISTS' || code === 'NONEXISTENT') {
                    return callback(null, code);
                }
                // imap-core (patch 090) answers an IMAP response code in err.code, with responseMessage as its text.
                return callback(Object.assign(new Error('Cannot rename this mailbox'), { code, responseMessage: 'Cannot rename this mailbox' }));
            }
            callback(null, true, id);
        });
}
