/** MOVE and UID MOVE (RFC 6851): copy, then expunge from the source, in one transaction. */
import { guarded, type Callback, type ImapContext, type ImapSession } from './context';

export function onMove(ctx: ImapContext) {
    return (mailboxId: number, options: { destination: string; messages: number[] }, session: ImapSession, callback: Callback): void =>
        guarded(ctx, 'move', callback, () => {
            if (session.selected && session.selected.readOnly) {
                // imap-core does not guard MOVE in EXAMINE mode.
                return callback(null, 'READ-ONLY');
            }
            const result = ctx.store.copyMessages(session.user.id, Number(mailboxId), options.messages, options.destination, {
                move: true,
                ignoreSession: session.id
            });
            if (typeof result === 'string') {
                return callback(null, result);
            }
            for (const entry of result.expunged) {
                session.writeStream.write(session.formatResponse('EXPUNGE', entry.uid));
            }
            callback(null, true, { uidValidity: result.uidValidity, sourceUid: result.sourceUid, destinationUid: result.destinationUid });
        });
}
