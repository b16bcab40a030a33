/** EXPUNGE, UID EXPUNGE, and the silent expunge of CLOSE. */
import { guarded, type Callback, type ImapContext, type ImapSession } from './context';

export function onExpunge(ctx: ImapContext) {
    return (mailboxId: number, options: { isUid?: boolean; messages?: number[]; silent?: boolean }, session: ImapSession, callback: Callback): void =>
        guarded(ctx, 'expunge', callback, () => {
            if (session.selected && session.selected.readOnly) {
                return callback(null, true);
            }
            const removed = ctx.store.messages.expunge(session.user.id, Number(mailboxId), {
                uids: options.isUid ? (options.messages ?? []) : undefined,
                ignoreSession: session.id
            });
            if (!options.silent) {
                for (const entry of removed) {
                    session.writeStream.write(session.formatResponse('EXPUNGE', entry.uid));
                }
            }
            callback(null, true);
        });
}
