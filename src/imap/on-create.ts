/** CREATE. */
import { guarded, type Callback, type ImapContext, type ImapSession } from './context';

export function onCreate(ctx: ImapContext) {
    return (path: string, session: ImapSession, callback: Callback): void =>
        guarded(ctx, 'create', callback, () => {
            // As in Dovecot, CREATE does not subscribe: the client subscribes if it wants to (RFC 3501 6.3.6).
            const result = ctx.store.createMailbox(session.user.id, path, null, { subscribe: false });
            if (typeof result === 'number') {
                return callback(null, true, result);
            }
            if (result === 'ALREADYEXISTS') {
                return callback(null, result);
            }
            // imap-core (patch 090) answers an IMAP response code in err.code, with responseMessage as its text.
            callback(Object.assign(new Error('Invalid mailbox name'), { code: result, responseMessage: 'Invalid mailbox name' }));
        });
}
