/** DELETE: sessions that have the mailbox selected are disconnected (imap-core's DROP). */
import { storeErrorCode } from '../store';
import { guarded, type Callback, type ImapContext, type ImapSession } from './context';

export function onDelete(ctx: ImapContext) {
    return (path: string, session: ImapSession, callback: Callback): void =>
        guarded(ctx, 'delete', callback, () => {
            let id: number;
            try {
                id = ctx.store.mailboxes.delete(session.user.id, path);
            } catch (err) {
                const code = storeErrorCode(err);
                if (!code) throw err;
                return callback(null, code);
            }
            ctx.notifier.fire(session.user.id, { command: 'DROP', mailbox: id });
            callback(null, true, id);
        });
}
