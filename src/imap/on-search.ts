/** SEARCH and UID SEARCH, evaluated in SQL by the store. */
import { TextDecoder } from 'node:util';
import type { SearchTerm } from '../store';
import { guarded, type Callback, type ImapContext, type ImapSession } from './context';

const TEXT_KEYS = new Set(['text', 'body', 'header']);

/** The CHARSET a command names (imap-core gives it as a term of its own), or '' when none. */
function charsetOf(terms: SearchTerm[]): string {
    const charset = terms.find(term => term.key === 'charset')?.value;
    return typeof charset === 'string' ? charset : '';
}

/**
 * imap-core hands search strings over as 'binary' strings (one character per byte, quoted or
 * literal alike); the store matches decoded Unicode text. Decode the bytes in the command's
 * CHARSET (UTF-8 when none is given), as WildDuck's own on-search does, so `BODY "Grüße"` finds
 * "grüße". Bytes that are not valid in that charset keep their one-byte-per-character reading.
 */
function decoderFor(terms: SearchTerm[]): TextDecoder {
    const charset = charsetOf(terms);
    try {
        return new TextDecoder(charset || 'utf-8', { fatal: true });
    } catch {
        return new TextDecoder('utf-8', { fatal: true });
    }
}

/**
 * SORT and THREAD name a charset (RFC 5256 section 3: US-ASCII and UTF-8 MUST be supported); one
 * we cannot decode is answered with NO [BADCHARSET], not searched as UTF-8.
 */
export function isUnsupportedCharset(terms: SearchTerm[]): boolean {
    const charset = charsetOf(terms);
    if (!charset) return false;
    try {
        new TextDecoder(charset);
        return false;
    } catch {
        return true;
    }
}

function decodeTerms<T extends SearchTerm | SearchTerm[]>(term: T, decoder: TextDecoder): T {
    if (Array.isArray(term)) {
        return term.map(item => decodeTerms(item, decoder)) as T;
    }
    const single: SearchTerm = term;
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
        return { ...single, value: decodeTerms(single.value as SearchTerm | SearchTerm[], decoder) } as T;
    }
    if (single.key === 'or' && Array.isArray(single.value)) {
        return { ...single, value: single.value.map((item: SearchTerm | SearchTerm[]) => decodeTerms(item, decoder)) } as T;
    }
    return term;
}

/**
 * \Recent belongs to the session, not the store (RFC 3501 2.3.2): RECENT, NEW (RECENT UNSEEN) and
 * OLD (NOT RECENT) become a UID set of this session's recent messages.
 */
function resolveRecent<T extends SearchTerm | SearchTerm[]>(term: T, recent: number[]): T {
    if (Array.isArray(term)) {
        return term.map(item => resolveRecent(item, recent)) as T;
    }
    const single: SearchTerm = term;
    // An empty group (`OR () ALL`) is a missing term here too.
    if (!single || typeof single !== 'object') return term;
    if (single.key === 'flag' && typeof single.value === 'string' && single.value.toLowerCase() === '\\recent') {
        const uid: SearchTerm = { key: 'uid', value: recent };
        return (single.exists === false ? { key: 'not', value: uid } : uid) as T;
    }
    if (single.key === 'not' && single.value) {
        return { ...single, value: resolveRecent(single.value as SearchTerm | SearchTerm[], recent) } as T;
    }
    if (single.key === 'or' && Array.isArray(single.value)) {
        return { ...single, value: single.value.map((item: SearchTerm | SearchTerm[]) => resolveRecent(item, recent)) } as T;
    }
    return term;
}

/**
 * The messages of the selected mailbox matching imap-core's parsed search terms: only UIDs this
 * session knows (imap-core prints UID SEARCH results as they come). Shared by SEARCH, SORT and THREAD.
 */
export function searchSelected(ctx: ImapContext, mailboxId: number, terms: SearchTerm[], session: ImapSession) {
    const recent = session.selected && session.selected.recent ? [...session.selected.recent] : [];
    const query = resolveRecent(decodeTerms(terms, decoderFor(terms)), recent);
    const result = ctx.store.messages.search(session.user.id, Number(mailboxId), query);
    const known = session.selected ? new Set(session.selected.uidList) : new Set<number>();
    return { ...result, uids: result.uids.filter(uid => known.has(uid)) };
}

export function onSearch(ctx: ImapContext) {
    return (mailboxId: number, options: { query: SearchTerm[]; isUid?: boolean }, session: ImapSession, callback: Callback): void =>
        guarded(ctx, 'search', callback, () => {
            const result = searchSelected(ctx, mailboxId, options.query, session);
            // modseqByUid lets ESEARCH report the MODSEQ of just the MIN/MAX message (RFC 4731 3.2).
            callback(null, { uidList: result.uids, highestModseq: result.highestModseq, modseqByUid: result.modseqByUid });
        });
}
