/** THREAD and UID THREAD (RFC 5256): ORDEREDSUBJECT and REFERENCES over the matching messages. */
import { threadByOrderedSubject, threadByReferences, threadMessageOf, type SearchTerm } from '../store';
import { guarded, type Callback, type ImapContext, type ImapSession } from './context';
import { isUnsupportedCharset, searchSelected } from './on-search';

export function onThread(ctx: ImapContext) {
    return (mailboxId: number, options: { algorithm: string; query: SearchTerm[]; isUid?: boolean }, session: ImapSession, callback: Callback): void =>
        guarded(ctx, 'thread', callback, () => {
            if (isUnsupportedCharset(options.query)) return callback(null, { threads: 'BADCHARSET' });
            const found = searchSelected(ctx, mailboxId, options.query, session);
            const references = options.algorithm === 'references';
            const messages = ctx.store.messages.sortRecords(session.user.id, Number(mailboxId), found.uids, { envelope: true, headerLines: references }).map(threadMessageOf);
            callback(null, { threads: references ? threadByReferences(messages) : threadByOrderedSubject(messages) });
        });
}
