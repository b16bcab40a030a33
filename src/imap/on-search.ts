/** SEARCH and UID SEARCH, evaluated in SQL by the store. */
import { TextDecoder } from 'node:util';
import type { SearchTerm } from '../store';
import { guarded, type Callback, type ImapContext, type ImapSession } from './context';

const TEXT_KEYS = new Set(['text', 'body', 'header']);

/**
 * imap-core hands search strings over as 'binary' strings (one character per byte, quoted or
 * literal alike); the store matches decoded Unicode text. Decode the bytes in the command's
 * CHARSET (UTF-8 when none is given), as WildDuck's own on-search does, so `BODY "Grüße"` finds
 * "grüße". Bytes that are not valid in that charset keep their one-byte-per-character reading.
 */
function decoderFor(terms: SearchTerm[]): TextDecoder {
    const charset = terms.find(term => term.key === 'charset')?.value;
    try {
        return new TextDecoder(charset ? String(charset) : 'utf-8', { fatal: true });
    } catch {
        return new TextDecoder('utf-8', { fatal: true });
    }
}

function decodeTerms<T extends SearchTerm | SearchTerm[]>(term: T, decoder: TextDecoder): T {
    if (Array.isArray(term)) {
        return term.map(item => decodeTerms(item, decoder)) as T;
    }
    const single = term as SearchTerm;
    // imap-core leaves an empty group as a missing term (`OR () ALL`); nothing to decode there.
    if (!single || typeof single !== 'object') return term;
    if (TEXT_KEYS.has(single.key) && typeof single.value === 'string') {
        let value = single.value;
        try {
            value = decoder.decode(Buffer.from(single.value, 'latin1'));
        } catch {
            // not valid in that charset: keep it as it came
        }
        return { ...single, value } as T;
    }
    if (single.key === 'not' && single.value) {
        return { ...single, value: decodeTerms(single.value, decoder) } as T;
    }
    if (single.key === 'or' && Array.isArray(single.value)) {
        return { ...single, value: single.value.map((item: SearchTerm | SearchTerm[]) => decodeTerms(item, decoder)) } as T;
    }
    return term;
}

export function onSearch(ctx: ImapContext) {
    return (mailboxId: number, options: { query: SearchTerm[]; isUid?: boolean }, session: ImapSession, callback: Callback): void =>
        guarded(ctx, 'search', callback, () => {
            const query = decodeTerms(options.query, decoderFor(options.query));
            const result = ctx.store.search(session.user.id, Number(mailboxId), query);
            // Only UIDs this session knows about: imap-core prints UID SEARCH results as they come.
            const known = session.selected ? new Set(session.selected.uidList) : new Set<number>();
            const uids = result.uids.filter(uid => known.has(uid));
            callback(null, { uidList: uids, highestModseq: result.highestModseq });
        });
}
