/** SORT and UID SORT (RFC 5256, SORT=DISPLAY RFC 5957): search in SQL, then order by keys from stored headers. */
import { sortUids, type SearchTerm, type SortCriterion } from '../store';
import { guarded, type Callback, type ImapContext, type ImapSession } from './context';
import { isUnsupportedCharset, searchSelected } from './on-search';

export function onSort(ctx: ImapContext) {
    return (mailboxId: number, options: { sortBy: SortCriterion[]; query: SearchTerm[]; isUid?: boolean }, session: ImapSession, callback: Callback): void =>
        guarded(ctx, 'sort', callback, () => {
            if (isUnsupportedCharset(options.query)) return callback(null, { uidList: 'BADCHARSET' });
            const found = searchSelected(ctx, mailboxId, options.query, session);
            // ARRIVAL, DATE and SIZE need no envelope.
            const envelope = options.sortBy.some(criterion => !['arrival', 'date', 'size'].includes(criterion.key));
            const records = ctx.store.messages.sortRecords(session.user.id, Number(mailboxId), found.uids, { envelope, headerLines: false });
            callback(null, { uidList: sortUids(records, options.sortBy), highestModseq: found.highestModseq, modseqByUid: found.modseqByUid });
        });
}
