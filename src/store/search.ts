/**
 * Compiles imap-core's parsed SEARCH terms into one SQL WHERE clause over `messages m` (and
 * `blobs b` when text is searched), so a search of a large mailbox streams through SQLite
 * instead of loading every message into JavaScript.
 *
 * Text matching is a case-insensitive substring match against lower-cased text stored at
 * delivery: decoded header lines ("from: carol <carol@x>") and the decoded text parts, packed
 * together in one column (search-text.ts) that the mm_* SQL functions unpack.
 */
import type Database from 'better-sqlite3';
import { SEARCH_TEXT_SQL, bodyContainsSql, headerText, packSearchText, signatureSql, textContainsSql } from './search-text';

export interface SearchTerm {
    key: string;
    /** What imap-core's parser gives for `key`: a string, a number, a Date, a UID list, or nested terms for NOT and OR. */
    value?: unknown;
    header?: string;
    operator?: string;
    exists?: boolean;
}

export interface CompiledSearch {
    where: string;
    params: unknown[];
    needsBlob: boolean;
}

const DAY_MS = 86400 * 1000;
const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

/** "1-Feb-2024" (IMAP date) to the UTC midnight in ms. */
export function imapDateToUtcDay(value: string): number {
    const match = /^(\d{1,2})-([a-z]{3})-(\d{4})$/i.exec(String(value).trim());
    if (!match) {
        return NaN;
    }
    const month = MONTHS.indexOf(match[2].toLowerCase());
    if (month < 0) {
        // Date.UTC would read month -1 as December of the year before.
        return NaN;
    }
    return Date.UTC(Number(match[3]), month, Number(match[1]));
}

/** A search value or an SQL function's argument as text: numbers by their digits, Buffers as UTF-8, a missing value or NULL as ''. */
function textOf(value: unknown): string {
    if (typeof value === 'string') return value;
    if (typeof value === 'number' || typeof value === 'bigint') return String(value);
    return Buffer.isBuffer(value) ? value.toString('utf8') : '';
}

function escapeNeedle(value: unknown): string {
    return textOf(value).toLowerCase();
}

function dateCondition(column: string, operator: string | undefined, value: string | Date, params: unknown[]): string {
    if (value instanceof Date) {
        // OLDER and YOUNGER (RFC 5032 WITHIN, which imapflow uses for SINCE/BEFORE when offered)
        // arrive as an exact moment with `<=` or `>=`.
        const moment = value.getTime();
        if (!Number.isFinite(moment) || (operator !== '<=' && operator !== '>=')) {
            return '0';
        }
        params.push(moment);
        return `${column} ${operator} ?`;
    }
    const day = imapDateToUtcDay(value);
    if (!Number.isFinite(day)) {
        return '0';
    }
    switch (operator) {
        case '<':
            params.push(day);
            return `${column} < ?`;
        case '=':
            params.push(day, day + DAY_MS);
            return `(${column} >= ? AND ${column} < ?)`;
        case '>=':
            params.push(day);
            return `${column} >= ?`;
        default:
            return '0';
    }
}

/** `call` (an mm_* function over the packed search text) behind the signature test in SQL for `needle` (search-text.ts signatureSql). */
function withSignature(needle: string, call: string): string {
    const signature = signatureSql(needle);
    return signature ? `(${signature} AND ${call})` : call;
}

export function compileSearch(terms: SearchTerm[]): CompiledSearch {
    const params: unknown[] = [];
    let needsBlob = false;

    const compileOne = (term: SearchTerm | SearchTerm[]): string => {
        if (Array.isArray(term)) {
            return term.length ? `(${term.map(compileOne).join(' AND ')})` : '1';
        }
        // An empty group `()` reaches us as a missing term: it matches everything, as `()` at the top does.
        if (!term) return '1';
        switch (term.key) {
            case 'all':
                return '1';
            case 'not':
                return `NOT (${compileOne(term.value as SearchTerm | SearchTerm[])})`;
            case 'or': {
                const parts = ([] as (SearchTerm | SearchTerm[])[]).concat((term.value ?? []) as (SearchTerm | SearchTerm[])[]);
                return parts.length ? `(${parts.map(compileOne).join(' OR ')})` : '0';
            }
            case 'flag': {
                const flag = textOf(term.value);
                const lower = flag.toLowerCase();
                let condition: string;
                if (lower === '\\seen') {
                    condition = 'm.seen = 1';
                } else if (lower === '\\deleted') {
                    condition = 'm.deleted = 1';
                } else if (lower === '\\recent') {
                    condition = '0';
                } else {
                    params.push(lower);
                    condition = 'EXISTS (SELECT 1 FROM json_each(m.flags) WHERE lower(json_each.value) = ?)';
                }
                return term.exists === false ? `NOT (${condition})` : condition;
            }
            case 'header': {
                needsBlob = true;
                const name = String(term.header ?? '').toLowerCase();
                const value = escapeNeedle(term.value);
                params.push(name, value);
                return withSignature(value, `mm_header_match(${SEARCH_TEXT_SQL}, ?, ?)`);
            }
            case 'text': {
                needsBlob = true;
                const value = escapeNeedle(term.value);
                params.push(value);
                return withSignature(value, `mm_text_contains(${SEARCH_TEXT_SQL}, ?)`);
            }
            case 'body': {
                needsBlob = true;
                const value = escapeNeedle(term.value);
                params.push(value);
                return withSignature(value, `mm_body_contains(${SEARCH_TEXT_SQL}, ?)`);
            }
            case 'internaldate':
                return dateCondition('m.idate', term.operator, term.value as string | Date, params);
            case 'date':
                needsBlob = true;
                return dateCondition('COALESCE(b.sent_day, m.idate - (m.idate % 86400000))', term.operator, term.value as string | Date, params);
            case 'size': {
                params.push(Number(term.value) || 0);
                return term.operator === '<' ? 'm.size < ?' : 'm.size > ?';
            }
            case 'modseq':
                params.push(Number(term.value) || 0);
                return 'm.modseq >= ?';
            case 'uid': {
                const uids = ([] as number[])
                    .concat((term.value ?? []) as number | number[])
                    .map(Number)
                    .filter(Number.isFinite);
                if (!uids.length) {
                    return '0';
                }
                params.push(JSON.stringify(uids));
                return 'm.uid IN (SELECT value FROM json_each(?))';
            }
            case 'charset':
                return '1';
            default:
                // An unknown key matches nothing rather than everything.
                return '0';
        }
    };

    const where = terms.length ? terms.map(compileOne).join(' AND ') : '1';
    return { where, params, needsBlob };
}

/**
 * SQL function: does the stored header text have a `name:` line whose value contains `needle`?
 * An empty needle only asks that the header exists.
 */
export function headerMatch(headers: string, name: string, needle: string): number {
    const prefix = `${name}: `;
    let start = 0;
    while (start <= headers.length) {
        let end = headers.indexOf('\n', start);
        if (end < 0) end = headers.length;
        if (headers.startsWith(prefix, start) || (headers.startsWith(`${name}:`, start) && end - start === name.length + 1)) {
            if (!needle || headers.slice(start + name.length + 1, end).includes(needle)) {
                return 1;
            }
        }
        start = end + 1;
    }
    return 0;
}

/** headerMatch as the SQL function `mm_header_match`, over a packed search text (search-text.ts): NULL reads as ''. */
export function headerMatchSql(packed: unknown, name: unknown, needle: unknown): number {
    return headerMatch(headerText(packed, needle), textOf(name), textOf(needle));
}

/** The SQL functions compiled searches call (the store's connection registers them; so do the unit tests). */
export function registerSearchFunctions(db: Database.Database): void {
    db.function('mm_header_match', { deterministic: true }, headerMatchSql);
    db.function('mm_text_contains', { deterministic: true }, textContainsSql);
    db.function('mm_body_contains', { deterministic: true }, bodyContainsSql);
    // For rows not packed yet (search-text.ts SEARCH_TEXT_SQL).
    db.function('mm_pack_search', { deterministic: true }, (headers: unknown, body: unknown) => packSearchText(textOf(headers), textOf(body)));
}
