/** COPY and UID COPY; answers COPYUID. The copies share the stored message. */
import { announceNewMessages } from './announce';
import { storeErrorCode, type CopyResult } from '../store';
import { guarded, type Callback, type ImapContext, type ImapSession } from './context';

export function onCopy(ctx: ImapContext) {
    return (_connection: unknown, mailboxId: number, options: { destination: string; messages: number[] }, session: ImapSession, callback: Callback): void =>
        guarded(ctx, 'copy', callback, () => {
            let result: CopyResult;
            try {
                result = ctx.store.messages.copy(session.user.id, Number(mailboxId), options.messages, options.destination, { ignoreSession: session.id });
            } catch (err) {
                const code = storeErrorCode(err);
                if (!code) throw err;
                return callback(null, code);
            }
            // Into the selected mailbox itself: the copies are announced before the tagged OK.
            announceNewMessages(ctx, session, Number(mailboxId));
            callback(null, true, { uidValidity: result.uidValidity, sourceUid: result.sourceUid, destinationUid: result.destinationUid });
        });
}
