/** CREATE. */
import { storeErrorCode } from '../store';
import { guarded, type Callback, type ImapContext, type ImapSession } from './context';

export function onCreate(ctx: ImapContext) {
    return (path: string, session: ImapSession, callback: Callback): void =>
        guarded(ctx, 'create', callback, () => {
            // As in Dovecot, CREATE does not subscribe: the client subscribes if it wants to (RFC 3501 6.3.6).
            let id: number;
            try {
                id = ctx.store.mailboxes.create(session.user.id, path, null, { subscribe: false });
            } catch (err) {
                const code = storeErrorCode(err);
                if (!code) throw err;
                if (code === 'ALREADYEXISTS') {
                    return callback(null, code);
                }
                // imap-core (patch 090) answers an IMAP response code in err.code, with responseMessage as its text.
                return callback(Object.assign(new Error('Invalid mailbox name'), { code, responseMessage: 'Invalid mailbox name' }));
            }
            callback(null, true, id);
        });
}
