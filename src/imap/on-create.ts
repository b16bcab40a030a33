/** CREATE. */
import { guarded, type Callback, type ImapContext, type ImapSession } from './context';

export function onCreate(ctx: ImapContext) {
    return (path: string, session: ImapSession, callback: Callback): void =>
        guarded(ctx, 'create', callback, () => {
            // IMAP CREATE does not subscribe (as Dovecot): LSUB lists only what the client subscribed.
            const result = ctx.store.createMailbox(session.user.id, path, null, false);
            if (typeof result === 'number') {
                return callback(null, true, result);
            }
            if (result === 'ALREADYEXISTS') {
                return callback(null, result);
            }
            // CREATE reports err.code as the response code.
            callback(Object.assign(new Error('Invalid mailbox name'), { code: result }));
        });
}
