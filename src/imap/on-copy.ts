/** COPY and UID COPY; answers COPYUID. The copies share the stored message. */
import { announceNewMessages } from './announce';
import { guarded, type Callback, type ImapContext, type ImapSession } from './context';

export function onCopy(ctx: ImapContext) {
    return (_connection: unknown, mailboxId: number, options: { destination: string; messages: number[] }, session: ImapSession, callback: Callback): void =>
        guarded(ctx, 'copy', callback, () => {
            const result = ctx.store.copyMessages(session.user.id, Number(mailboxId), options.messages, options.destination, { ignoreSession: session.id });
            if (typeof result === 'string') {
                return callback(null, result);
            }
            // Into the selected mailbox itself: the copies are announced before the tagged OK.
            announceNewMessages(ctx, session, Number(mailboxId));
            callback(null, true, { uidValidity: result.uidValidity, sourceUid: result.sourceUid, destinationUid: result.destinationUid });
        });
}
