/**
 * The untagged FETCH response of one message, built and compiled as imap-core's
 * IMAPConnection.formatResponse and its compiler would (the bytes on the wire are the same), at a
 * cost that does not grow with the mailbox (bench/imap.ts measured these):
 * - the sequence number: formatResponse finds it with uidList.indexOf, O(n) per message and so
 *   O(n²) for `1:*`; sequenceOf is a binary search;
 * - per-message work that does not depend on the message: item names and flag lists are
 *   compiled once (TEXT nodes), and simple lines skip the generic compiler (compileFetchLine).
 */
import { imapHandler } from './engine';

// Loaded after ./engine, which sets up imap-core's environment.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const imapTools = require('@zone-eu/wildduck/imap-core/lib/imap-tools') as { formatInternalDate(date: Date): string };

/** One item of a parsed FETCH query, as imap-core's FETCH handler hands it over. */
export interface QueryItem {
    item: string;
    original: { partial?: number[] } & Record<string, unknown>;
    path?: string;
    type?: string;
    partial?: { startFrom: number; maxLength: number };
    isLiteral?: boolean;
}

/**
 * The 1-based sequence number of `uid` in the session's UID list (ascending, as imap-core keeps
 * it), or 0 when the session does not know it. `expected` is the 0-based position to look at
 * first: a FETCH walks the list in order, so the next message is usually right after the last
 * one (one comparison instead of 14 for a 10,000-message mailbox).
 */
export function sequenceOf(uidList: readonly number[], uid: number, expected = -1): number {
    if (expected >= 0 && expected < uidList.length && uidList[expected] === uid) return expected + 1;
    let low = 0;
    let high = uidList.length - 1;
    while (low <= high) {
        const mid = (low + high) >>> 1;
        const value = uidList[mid];
        if (value === uid) return mid + 1;
        if (value < uid) low = mid + 1;
        else high = mid - 1;
    }
    // Not where an ascending list would have it: fall back to a scan rather than trust the order.
    return uidList.indexOf(uid) + 1;
}

/** Compiled text of one response node on its own: what imap-core's compiler writes for it inside a FETCH list. */
function compileNode(node: unknown): string {
    return imapHandler.compiler({ attributes: [node] });
}

const DIGITS = /^\d+$/;

/** Compiled flag lists by their flags (a mailbox has few distinct combinations). */
const flagListText = new Map<string, string>();

/** An entry of a FLAGS or MODSEQ list as imap-core's formatResponse makes it: an atom, empty for a falsy entry other than 0. */
function atomNode(entry: unknown): { type: 'ATOM'; value: string } {
    return { type: 'ATOM', value: entry || entry === 0 ? (entry as { toString(): string }).toString() : '' };
}

function flagList(values: unknown[]): { type: 'TEXT'; value: string } | unknown[] {
    const toAtoms = () => values.map(atomNode);
    // Flags are non-empty strings without NUL; anything else is compiled as it comes.
    let key = '';
    for (let index = 0; index < values.length; index++) {
        const flag = values[index];
        if (typeof flag !== 'string' || !flag || flag.includes('\0')) return toAtoms();
        key = index ? `${key}\0${flag}` : flag;
    }
    let text = flagListText.get(key);
    if (text === undefined) {
        // The list is compiled as one node, so separators inside it are the compiler's own; after it comes ")".
        text = compileNode(toAtoms());
        if (flagListText.size >= 1000) flagListText.clear();
        flagListText.set(key, text);
    }
    return { type: 'TEXT', value: text };
}

/**
 * The compiled line of a FETCH response built by fetchResponse, when every value in it is a TEXT
 * node or a LITERAL of a string or a Buffer: what imap-core's compiler writes for it, which is
 * "* <seq> FETCH (" and the parts separated by single spaces (the compiler writes no space after a
 * part that ends in "(", "<" or "[", so such a response is left to it). Null when the compiler is
 * needed.
 *
 * The line comes in pieces whose concatenation is the line: binary strings (one character per
 * byte), and each Buffer literal's value as it is. A message body read whole (on-fetch.ts) thus
 * reaches the socket without being copied into heap strings: the compiler's `toString('binary')`,
 * joining and re-encoding made two to three strings the size of the body per message, the
 * garbage that bench:imap step 4 (100 × UID FETCH <uid> BODY.PEEK[]) spent its time collecting.
 */
export function compileFetchPieces(response: { command: string; attributes: unknown[] }): (string | Buffer)[] | null {
    const items = response.attributes[1] as { type?: string; value?: unknown }[];
    const pieces: (string | Buffer)[] = [];
    let text = `* ${response.command} FETCH (`;
    for (let index = 0; index < items.length; index++) {
        const node = items[index];
        if (!node || typeof node !== 'object' || Array.isArray(node)) return null;
        if (index) text += ' ';
        if (node.type === 'TEXT' && typeof node.value === 'string') {
            const last = node.value.charAt(node.value.length - 1);
            if (!node.value || last === '(' || last === '<' || last === '[') return null;
            text += node.value;
        } else if (node.type === 'LITERAL' && !(node as { literal8?: boolean }).literal8 && (typeof node.value === 'string' || Buffer.isBuffer(node.value))) {
            // The compiler writes "{length}" CRLF and the value as a binary string (length as it counts it: bytes of a Buffer), and always a space after a literal.
            text += `{${node.value.length}}\r\n`;
            if (typeof node.value === 'string') {
                text += node.value;
            } else if (node.value.length) {
                pieces.push(text, node.value);
                text = '';
            }
        } else {
            return null;
        }
    }
    pieces.push(text + ')');
    return pieces;
}

/** compileFetchPieces's line as one binary string (the form imap-core's compiler gives). */
export function compileFetchLine(response: { command: string; attributes: unknown[] }): string | null {
    const pieces = compileFetchPieces(response);
    return pieces && pieces.map(piece => (typeof piece === 'string' ? piece : piece.toString('binary'))).join('');
}

/** A literal's value as getQueryResponse gives it when streamed, or fetch-binary.ts for decoded BINARY data holding NUL. */
type LiteralWrapper = { type: 'stream' | 'literal8'; value: unknown; expectedLength?: number; startFrom?: number; maxLength?: number; literal8?: boolean };

/**
 * The untagged FETCH response for message `seq`, built as imap-core's
 * IMAPConnection.formatResponse('FETCH', uid, { query, values }) builds it (imap-connection.js),
 * minus its indexOf lookup of the sequence number.
 *
 * Nodes whose compiled text does not depend on the message (the item names) or is cheap to know
 * (numbers, flag lists) are handed to the compiler as TEXT nodes holding that text, which it
 * copies as is: same bytes, without re-checking every atom character by character for each of
 * 10,000 messages. `names` caches the item names for one command.
 */
export function fetchResponse(seq: number, query: QueryItem[], values: unknown[], names?: Map<QueryItem, string>): Record<string, unknown> {
    const items: unknown[] = [];
    query.forEach((item, index) => {
        const value = values[index];
        if (names && !item.original.partial) {
            // A partial (<0.100>) can be shortened in place while answering, so only names without one are cached.
            let text = names.get(item);
            if (text === undefined) {
                text = compileNode(item.original);
                names.set(item, text);
            }
            items.push({ type: 'TEXT', value: text });
        } else {
            items.push(item.original);
        }
        if (item.item === 'flags') {
            items.push(flagList(([] as unknown[]).concat(value || [])));
        } else if (item.item === 'modseq') {
            const list = ([] as unknown[]).concat(value || []);
            if (list.length === 1 && typeof list[0] === 'number' && DIGITS.test(list[0].toString())) {
                items.push({ type: 'TEXT', value: `(${list[0]})` });
            } else {
                items.push(list.map(atomNode));
            }
        } else if (value instanceof Date) {
            items.push({ type: 'ATOM', value: imapTools.formatInternalDate(value) });
        } else if (Array.isArray(value)) {
            items.push(value);
        } else if (item.isLiteral) {
            const literal = value as LiteralWrapper | null | undefined;
            if (literal && literal.type === 'stream') {
                items.push({ type: 'LITERAL', value: literal.value, expectedLength: literal.expectedLength, startFrom: literal.startFrom, maxLength: literal.maxLength, literal8: literal.literal8 });
            } else if (literal && literal.type === 'literal8') {
                // Decoded BINARY data holding NUL (fetch-binary.ts)
                items.push({ type: 'LITERAL', value: literal.value, literal8: true });
            } else {
                items.push({ type: 'LITERAL', value });
            }
        } else if (value === '') {
            items.push(value);
        } else if (typeof value === 'number' && DIGITS.test(value.toString())) {
            // An atom of digits (UID, RFC822.SIZE) compiles to itself.
            items.push({ type: 'TEXT', value: value.toString() });
        } else {
            items.push({ type: 'ATOM', value: (value as { toString(): string }).toString() });
        }
    });
    return { tag: '*', command: String(seq), attributes: [{ type: 'atom', value: 'FETCH' }, items] };
}

/** The fields of a message that metadataLineWriter reads. */
export interface MessageFields {
    uid: number;
    modseq: number;
    idate: number;
    size: number;
}

/**
 * For a query of message fields only (UID, FLAGS, MODSEQ, RFC822.SIZE, INTERNALDATE: what a
 * client asks of every message of a mailbox to synchronise it), a function that writes the
 * compiled response line of one message directly: the same bytes as fetchResponse and
 * compileFetchLine give, without building the response's nodes. Null for any other query. The
 * function returns null for a message it cannot answer alone (RFC822.SIZE of an empty size, which
 * getQueryResponse measures from the tree).
 *
 * `literalOf` may answer further items whose value is a string literal (on-fetch.ts: root header
 * fields from the header summary, for a folder listing's `1:*` fetch): a reader of the value,
 * which returns null for a message it cannot answer; null for an item it does not read.
 */
export function metadataLineWriter<M extends MessageFields>(
    query: QueryItem[],
    literalOf?: (item: QueryItem) => ((message: M) => string | null) | null
): ((seq: number, message: M, flags: string[]) => string | null) | null {
    const parts: ((message: M, flags: string[]) => string | null)[] = [];
    for (const item of query) {
        if (item.original.partial) return null;
        const name = compileNode(item.original);
        switch (item.item) {
            case 'uid':
                parts.push(message => `${name} ${message.uid}`);
                break;
            case 'modseq':
                parts.push(message => `${name} (${message.modseq})`);
                break;
            case 'rfc822.size':
                parts.push(message => (message.size > 0 ? `${name} ${message.size}` : null));
                break;
            case 'internaldate':
                parts.push(message => `${name} ${compileNode({ type: 'ATOM', value: imapTools.formatInternalDate(new Date(message.idate)) })}`);
                break;
            case 'flags': {
                // Messages with the same flags share one array (the store's mailbox index): one lookup each.
                const compiled = new Map<string[], string | null>();
                parts.push((_message, flags) => {
                    let text = compiled.get(flags);
                    if (text === undefined) {
                        const list = flagList(flags);
                        text = Array.isArray(list) ? null : `${name} ${list.value}`;
                        compiled.set(flags, text);
                    }
                    return text;
                });
                break;
            }
            default: {
                const literal = item.isLiteral ? literalOf?.(item) : null;
                if (!literal) return null;
                // As compileFetchLine writes a string literal: "{length}" CRLF and the binary string.
                parts.push(message => {
                    const value = literal(message);
                    return value === null ? null : `${name} {${value.length}}\r\n${value}`;
                });
                break;
            }
        }
    }
    return (seq, message, flags) => {
        let line = `* ${seq} FETCH (`;
        for (let index = 0; index < parts.length; index++) {
            const part = parts[index](message, flags);
            if (part === null) return null;
            line += index ? ' ' + part : part;
        }
        return line + ')';
    };
}
