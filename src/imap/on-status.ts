/** STATUS. */
import { guarded, type Callback, type ImapContext, type ImapSession } from './context';

export function onStatus(ctx: ImapContext) {
    return (path: string, session: ImapSession, callback: Callback): void =>
        guarded(ctx, 'status', callback, () => {
            const status = ctx.store.mailboxes.status(session.user.id, path);
            if (!status) {
                return callback(null, 'NONEXISTENT');
            }
            callback(null, {
                messages: status.messages,
                recent: status.recent,
                uidNext: status.uidNext,
                uidValidity: status.uidValidity,
                unseen: status.unseen,
                highestModseq: status.highestModseq
            });
        });
}
