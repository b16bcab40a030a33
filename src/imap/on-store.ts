/** STORE and UID STORE, with .SILENT and UNCHANGEDSINCE (CONDSTORE). */
import { storeErrorCode, type FlagChange } from '../store';
import { guarded, type Callback, type ImapContext, type ImapSession } from './context';

interface StoreUpdate {
    action: 'set' | 'add' | 'remove';
    value: string[];
    silent?: boolean;
    messages: number[];
    unchangedSince?: number;
    isUid?: boolean;
}

export function onStore(ctx: ImapContext) {
    return (mailboxId: number, update: StoreUpdate, session: ImapSession, callback: Callback): void =>
        guarded(ctx, 'store', callback, () => {
            const selected = session.selected;
            if (!selected || selected.readOnly) {
                // imap-core guards STORE but not UID STORE in EXAMINE mode.
                return callback(null, 'READ-ONLY');
            }
            let result: { changes: FlagChange[]; modified: number[] };
            try {
                result = ctx.store.messages.updateFlags(session.user.id, Number(mailboxId), update.messages, update.action, update.value ?? [], {
                    unchangedSince: update.unchangedSince,
                    ignoreSession: session.id
                });
            } catch (err) {
                const code = storeErrorCode(err);
                if (!code) throw err;
                return callback(null, code);
            }
            const condstore = selected.condstoreEnabled;
            for (const change of result.changes) {
                // RFC 7162 3.1.3: a conditional STORE reports changed messages with MODSEQ even when silent.
                const report = !update.silent || (condstore && update.unchangedSince && change.changed);
                if (!report) continue;
                session.writeStream.write(
                    session.formatResponse('FETCH', change.uid, {
                        uid: update.isUid ? change.uid : false,
                        flags: change.flags,
                        modseq: condstore ? change.modseq : false
                    })
                );
            }
            callback(null, true, result.modified);
        });
}
