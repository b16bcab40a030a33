/** MOVE and UID MOVE (RFC 6851): copy, then expunge from the source, in one transaction. */
import { announceNewMessages } from './announce';
import { storeErrorCode, type CopyResult } from '../store';
import { guarded, type Callback, type ImapContext, type ImapSession } from './context';

/** A UID list as a sequence set ("1:3,7"), in the order given (COPYUID pairs source and destination by position). */
export function packUids(uids: number[]): string {
    const parts: string[] = [];
    for (let i = 0; i < uids.length;) {
        let j = i;
        while (j + 1 < uids.length && uids[j + 1] === uids[j] + 1) j++;
        parts.push(j > i ? `${uids[i]}:${uids[j]}` : String(uids[i]));
        i = j + 1;
    }
    return parts.join(',');
}

export function onMove(ctx: ImapContext) {
    return (mailboxId: number, options: { destination: string; messages: number[] }, session: ImapSession, callback: Callback): void =>
        guarded(ctx, 'move', callback, () => {
            if (session.selected && session.selected.readOnly) {
                // imap-core does not guard MOVE in EXAMINE mode.
                return callback(null, 'READ-ONLY');
            }
            let result: CopyResult;
            try {
                result = ctx.store.messages.move(session.user.id, Number(mailboxId), options.messages, options.destination, { ignoreSession: session.id });
            } catch (err) {
                const code = storeErrorCode(err);
                if (!code) throw err;
                return callback(null, code);
            }
            // RFC 6851 4.3: COPYUID goes in an untagged OK before the EXPUNGEs, which are written here.
            if (result.sourceUid.length) {
                session.writeStream.write({
                    tag: '*',
                    command: 'OK',
                    attributes: [
                        {
                            type: 'section',
                            section: [
                                { type: 'atom', value: 'COPYUID' },
                                { type: 'atom', value: String(result.uidValidity) },
                                { type: 'atom', value: packUids(result.sourceUid) },
                                { type: 'atom', value: packUids(result.destinationUid) }
                            ]
                        },
                        { type: 'text', value: 'Moved UIDs.' }
                    ]
                });
            }
            for (const entry of result.expunged) {
                session.writeStream.write(session.formatResponse('EXPUNGE', entry.uid));
            }
            // Into the same mailbox (new UIDs, RFC 6851 3.3 allows it): the copies are announced here.
            announceNewMessages(ctx, session, Number(mailboxId));
            callback(null, true, { uidValidity: result.uidValidity, sourceUid: result.sourceUid, destinationUid: result.destinationUid });
        });
}
