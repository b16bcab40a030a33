/** DELETE: sessions that have the mailbox selected are disconnected (imap-core's DROP). */
import { guarded, type Callback, type ImapContext, type ImapSession } from './context';

export function onDelete(ctx: ImapContext) {
    return (path: string, session: ImapSession, callback: Callback): void =>
        guarded(ctx, 'delete', callback, () => {
            const result = ctx.store.deleteMailbox(session.user.id, path);
            if (typeof result === 'number') {
                ctx.notifier.fire(session.user.id, { command: 'DROP', mailbox: result });
                return callback(null, true, result);
            }
            callback(null, result);
        });
}
