/** SEARCH and UID SEARCH, evaluated in SQL by the store. */
import type { SearchTerm } from '../store';
import { guarded, type Callback, type ImapContext, type ImapSession } from './context';

export function onSearch(ctx: ImapContext) {
    return (mailboxId: number, options: { query: SearchTerm[]; isUid?: boolean }, session: ImapSession, callback: Callback): void =>
        guarded(ctx, 'search', callback, () => {
            const result = ctx.store.search(session.user.id, Number(mailboxId), options.query);
            // Only UIDs this session knows about: imap-core prints UID SEARCH results as they come.
            const known = session.selected ? new Set(session.selected.uidList) : new Set<number>();
            const uids = result.uids.filter(uid => known.has(uid));
            callback(null, { uidList: uids, highestModseq: result.highestModseq });
        });
}
