/**
 * Random and mutated IMAP commands for test/imap-fuzz.test.ts, from a seeded PRNG so that a
 * failing run can be replayed. Never produces a wrong password (the login limiter would slow
 * the run down; it has its own tests), and never leaves a literal half sent.
 */
import { rng, SeededChoices } from './fixtures/mail-corpus';

/** Seeded choices for test input, on the shared mulberry32 generator (test/support/fixtures/mail-corpus). */
export class Rng extends SeededChoices {
    private readonly generator: () => number;
    constructor(seed: number) {
        super();
        this.generator = rng(seed >>> 0 || 1);
    }
    next(): number {
        return this.generator();
    }
}

export type SessionState = 'not-authenticated' | 'authenticated' | 'selected';

/** A literal inside a command: `{size}` is announced; `data` is what is sent after `+` (none: do not send). */
export interface Literal {
    size: number;
    data?: Buffer;
}

/** The text up to a literal's announcement, then the literal; the final part is plain text. */
export type CommandPart = string | { head: string; literal: Literal };

export interface FuzzCommand {
    name: string;
    parts: CommandPart[];
    /** The connection changes protocol after OK (COMPRESS, STARTTLS): the fuzzer hangs up then. */
    upgrades?: boolean;
    describe(): string;
}

type Segment = string | Literal;

const USER = 'alice';
const PASS = 'alice-secret-pw';

const SPECIALS = ['(', ')', '[', ']', '<', '>', '"', '\\', '*', '%', '{', '}', ' ', '.', ':', ',', '~', '\x00', '\x7f', '\xff', '\t'];
const NUMBERS = ['0', '1', '2', '3', '7', '*', '4294967295', '4294967296', '18446744073709551616', '-1', '99999999999999999999', '1e3', ''];

function seqSet(rng: Rng): string {
    if (rng.chance(0.1)) return rng.pick(['', ',', ':', '1:', ':1', '1,,2', '*:*', '1:*:2', '$', 'a', '1 2', '1:0', '0:*']);
    const count = rng.int(1, 4);
    const ranges: string[] = [];
    for (let n = 0; n < count; n++) {
        const a = rng.pick(NUMBERS.filter(Boolean));
        ranges.push(rng.chance(0.5) ? a : `${a}:${rng.pick(NUMBERS.filter(Boolean))}`);
    }
    return ranges.join(',');
}

function astring(rng: Rng, words: readonly string[]): Segment[] {
    const word = rng.pick(words);
    switch (rng.int(0, 5)) {
        case 0:
            return [`"${word.replace(/["\\]/g, '\\$&')}"`];
        case 1: {
            const data = Buffer.from(word, 'utf8');
            return [{ size: data.length, data }];
        }
        case 2:
            return ['NIL'];
        default:
            return [word];
    }
}

const MAILBOXES = ['INBOX', 'inbox', 'Archive', 'Sent', 'Trash', 'fuzz', 'fuzz/child', 'fuzz/%', '*', '%', '', 'a b', 'Entw&APw-rfe', 'Entwürfe', '&', '&-', '/', 'INBOX/x', '..', 'x'.repeat(300)];
const WORDS = ['hello', 'fuzz', 'NIL', 'ä', '日本', '', 'x'.repeat(200), 'a@b.c', '\\Seen', 'OR', '(', ')'];

function mailbox(rng: Rng): Segment[] {
    return astring(rng, MAILBOXES);
}

function flagList(rng: Rng): string {
    const flags = ['\\Seen', '\\Deleted', '\\Flagged', '\\Answered', '\\Draft', '\\Recent', '\\*', '$Forwarded', 'Junk', 'kw' + rng.int(0, 99), '\\Bogus', '(', 'a]b', 'NIL'];
    const list = Array.from({ length: rng.int(0, 4) }, () => rng.pick(flags)).join(' ');
    return rng.chance(0.8) ? `(${list})` : list;
}

function section(rng: Rng): string {
    const part = rng.chance(0.5) ? Array.from({ length: rng.int(1, 3) }, () => rng.pick(['1', '2', '0', '3', '99'])).join('.') : '';
    const tail = rng.pick(['', 'HEADER', 'TEXT', 'MIME', 'HEADER.FIELDS (Subject From)', 'HEADER.FIELDS.NOT (To)', 'HEADER.FIELDS ()', 'BOGUS']);
    return [part, tail].filter(Boolean).join('.');
}

function partial(rng: Rng): string {
    if (!rng.chance(0.4)) return '';
    return `<${rng.pick(NUMBERS)}${rng.chance(0.8) ? '.' + rng.pick(NUMBERS) : ''}>`;
}

function fetchItems(rng: Rng): string {
    const one = (): string =>
        rng.pick([
            'FLAGS',
            'UID',
            'INTERNALDATE',
            'RFC822.SIZE',
            'RFC822',
            'RFC822.HEADER',
            'RFC822.TEXT',
            'ENVELOPE',
            'BODY',
            'BODYSTRUCTURE',
            'MODSEQ',
            'ALL',
            'FAST',
            'FULL',
            'BINARY.SIZE[1]',
            'X-GM-MSGID',
            'BOGUS'
        ]) || '';
    const items: string[] = [];
    for (let n = rng.int(1, 4); n > 0; n--) {
        if (rng.chance(0.4)) items.push(`${rng.pick(['BODY', 'BODY.PEEK', 'BINARY', 'BINARY.PEEK'])}[${section(rng)}]${partial(rng)}`);
        else items.push(one());
    }
    const list = items.length === 1 && rng.chance(0.5) ? items[0] : `(${items.join(' ')})`;
    return list + (rng.chance(0.15) ? ` (CHANGEDSINCE ${rng.pick(NUMBERS)}${rng.chance(0.3) ? ' VANISHED' : ''})` : '');
}

function searchKey(rng: Rng, depth: number): Segment[] {
    const simple = ['ALL', 'ANSWERED', 'DELETED', 'DRAFT', 'FLAGGED', 'NEW', 'OLD', 'RECENT', 'SEEN', 'UNSEEN', 'UNDELETED', 'UNFLAGGED'];
    switch (rng.int(0, 9)) {
        case 0:
            return [rng.pick(simple)];
        case 1:
            return [`${rng.pick(['BCC', 'BODY', 'CC', 'FROM', 'SUBJECT', 'TEXT', 'TO'])} `, ...astring(rng, WORDS)];
        case 2:
            return [`${rng.pick(['BEFORE', 'ON', 'SINCE', 'SENTBEFORE', 'SENTON', 'SENTSINCE'])} ${rng.pick(['1-Jan-2020', '31-Feb-2020', '"1-Jan-2020"', 'yesterday', '0-Jan-0', '1-Jan-99999'])}`];
        case 3:
            return [`${rng.pick(['LARGER', 'SMALLER'])} ${rng.pick(NUMBERS)}`];
        case 4:
            return [`${rng.pick(['UID ', ''])}${seqSet(rng)}`];
        case 5:
            return [`HEADER ${rng.pick(['Subject', 'X-None', '""', 'NIL'])} `, ...astring(rng, WORDS)];
        case 6:
            return [`${rng.pick(['KEYWORD', 'UNKEYWORD'])} ${rng.pick(['$Forwarded', 'kw1', '\\Seen', 'NIL', '('])}`];
        case 7:
            return depth > 0 ? ['NOT ', ...searchKey(rng, depth - 1)] : ['NOT'];
        case 8:
            return depth > 0 ? ['OR ', ...searchKey(rng, depth - 1), ' ', ...searchKey(rng, depth - 1)] : ['OR ALL'];
        default: {
            if (depth <= 0) return ['()'];
            const inner: Segment[] = ['('];
            for (let n = rng.int(1, 3); n > 0; n--) inner.push(...searchKey(rng, depth - 1), ' ');
            inner.push(')');
            return inner;
        }
    }
}

function search(rng: Rng): Segment[] {
    const out: Segment[] = [];
    if (rng.chance(0.2)) out.push(`RETURN (${rng.pick(['', 'MIN', 'MAX COUNT', 'ALL', 'SAVE', 'BOGUS'])}) `);
    if (rng.chance(0.25)) out.push(`CHARSET ${rng.pick(['UTF-8', 'US-ASCII', 'ISO-8859-1', 'KOI8-R', 'BOGUS-9', '""', 'utf-8'])} `);
    const count = rng.int(1, 4);
    for (let n = 0; n < count; n++) out.push(...searchKey(rng, rng.int(0, 6)), ' ');
    if (rng.chance(0.05)) out.push('('.repeat(rng.int(10, 200)) + 'ALL' + ')'.repeat(rng.int(0, 200)));
    if (rng.chance(0.1)) out.push(`MODSEQ ${rng.pick(NUMBERS)}`);
    return out;
}

function message(rng: Rng): Buffer {
    const body = rng.pick(['hello\r\n', 'x'.repeat(rng.int(0, 4000)), '', '\r\n\r\n', 'no header at all', 'Subject: a\r\n\r\nb\r\n']);
    return Buffer.from(`${rng.chance(0.8) ? `Subject: fuzz ${rng.int(0, 999)}\r\nFrom: a@b.c\r\n\r\n` : ''}${body}`, 'latin1');
}

/** URL parts of CATENATE (RFC 4469): resolvable ones, and ones to be refused as BADURL or BAD. */
const CATENATE_URLS = [
    '"/INBOX/;uid=1"',
    '"/INBOX/;UID=1/;SECTION=1.2.MIME"',
    '"/INBOX;UIDVALIDITY=1/;UID=1/;SECTION=HEADER.FIELDS%20(FROM)"',
    '"/INBOX/;uid=1/;partial=0.10"',
    '"/INBOX/;uid=1/;section=TEXT/;partial=4294967295"',
    '"/INBOX/;uid=4294967295/;section=1.2.3.4.5.6.7.8.9"',
    '"/%FF/;uid=1"',
    '"/IN]BOX/;uid=1"',
    '"imap://x@y/INBOX/;uid=1"',
    'NIL',
    '""',
    '()'
];

/** `CATENATE (TEXT literal / URL astring …)`, sometimes malformed. */
function catenate(rng: Rng): Segment[] {
    const out: Segment[] = ['CATENATE ('];
    const count = rng.int(0, 4);
    for (let i = 0; i < count; i++) {
        if (i) out.push(' ');
        if (rng.chance(0.5)) {
            const data = message(rng);
            out.push(rng.pick(['TEXT ', 'TEXT ~', 'URL ', 'BOGUS ']), { size: data.length, data });
        } else {
            out.push(`${rng.pick(['URL', 'url', 'TEXT'])} ${rng.pick(CATENATE_URLS)}`);
        }
    }
    out.push(rng.pick([')', '', '))']));
    return out;
}

/** Builders by command name; each returns the segments after `TAG `. */
const BUILDERS: Record<string, (rng: Rng) => Segment[]> = {
    CAPABILITY: () => ['CAPABILITY'],
    NOOP: () => ['NOOP'],
    LOGOUT: () => ['LOGOUT'],
    ID: rng => [`ID ${rng.pick(['NIL', '("name" "fuzz")', '("a")', '(', '("k" NIL "k2" "v")', '()'])}`],
    ENABLE: rng => [`ENABLE ${rng.pick(['CONDSTORE', 'UTF8=ACCEPT', 'QRESYNC', 'BOGUS', '', 'CONDSTORE UTF8=ACCEPT'])}`],
    STARTTLS: () => ['STARTTLS'],
    LOGIN: rng => ['LOGIN ', ...astring(rng, [USER]), ' ', ...astring(rng, [PASS])],
    'AUTHENTICATE PLAIN': rng =>
        rng.chance(0.5) ? [`AUTHENTICATE PLAIN ${Buffer.from(`\0${USER}\0${PASS}`).toString('base64')}`] : [`AUTHENTICATE ${rng.pick(['PLAIN', 'BOGUS', 'LOGIN', 'PLAIN ='])}`],
    NAMESPACE: () => ['NAMESPACE'],
    LIST: rng => [
        `LIST ${rng.pick(['', '(SUBSCRIBED) ', '(BOGUS) '])}`,
        ...astring(rng, ['', 'fuzz/', 'INBOX']),
        ' ',
        ...mailbox(rng),
        rng.pick(['', ' RETURN (CHILDREN)', ' RETURN (STATUS (MESSAGES))', ' RETURN ('])
    ],
    LSUB: rng => ['LSUB ', ...astring(rng, ['', 'fuzz/']), ' ', ...mailbox(rng)],
    XLIST: rng => ['XLIST "" ', ...mailbox(rng)],
    STATUS: rng => ['STATUS ', ...mailbox(rng), ` ${rng.pick(['(MESSAGES)', '(MESSAGES UIDNEXT UIDVALIDITY UNSEEN RECENT HIGHESTMODSEQ)', '()', '(BOGUS)', 'MESSAGES', '(SIZE)'])}`],
    SELECT: rng => ['SELECT ', ...mailbox(rng), rng.pick(['', ' (CONDSTORE)', ' (QRESYNC (1 1))', ' ('])],
    EXAMINE: rng => ['EXAMINE ', ...mailbox(rng)],
    CREATE: rng => ['CREATE ', ...mailbox(rng)],
    DELETE: rng => ['DELETE ', ...mailbox(rng)],
    RENAME: rng => ['RENAME ', ...mailbox(rng), ' ', ...mailbox(rng)],
    SUBSCRIBE: rng => ['SUBSCRIBE ', ...mailbox(rng)],
    UNSUBSCRIBE: rng => ['UNSUBSCRIBE ', ...mailbox(rng)],
    APPEND: rng => {
        const head: Segment[] = ['APPEND ', ...mailbox(rng), ' '];
        if (rng.chance(0.5)) head.push(flagList(rng), ' ');
        if (rng.chance(0.3)) head.push(`${rng.pick(['"01-Jan-2020 10:00:00 +0000"', '"bogus"', '"31-Feb-2020 25:61:61 +9999"', 'NIL'])} `);
        if (rng.chance(0.05)) return [...head, { size: rng.pick([26 * 1024 * 1024, 2 ** 31, 2 ** 53]) }];
        if (rng.chance(0.3)) return [...head, ...catenate(rng), ...(rng.chance(0.3) ? [' ', ...catenate(rng)] : [])];
        const data = message(rng);
        return [...head, { size: data.length, data }];
    },
    CHECK: () => ['CHECK'],
    CLOSE: () => ['CLOSE'],
    UNSELECT: () => ['UNSELECT'],
    EXPUNGE: () => ['EXPUNGE'],
    'UID EXPUNGE': rng => [`UID EXPUNGE ${seqSet(rng)}`],
    SEARCH: rng => ['SEARCH ', ...search(rng)],
    'UID SEARCH': rng => ['UID SEARCH ', ...search(rng)],
    FETCH: rng => [`FETCH ${seqSet(rng)} ${fetchItems(rng)}`],
    'UID FETCH': rng => [`UID FETCH ${seqSet(rng)} ${fetchItems(rng)}`],
    STORE: rng => [
        `STORE ${seqSet(rng)} ${rng.chance(0.2) ? `(UNCHANGEDSINCE ${rng.pick(NUMBERS)}) ` : ''}${rng.pick(['', '+', '-', '*'])}FLAGS${rng.pick(['', '.SILENT', '.BOGUS'])} ${flagList(rng)}`
    ],
    'UID STORE': rng => [`UID STORE ${seqSet(rng)} ${rng.pick(['+', '-', ''])}FLAGS ${flagList(rng)}`],
    COPY: rng => [`COPY ${seqSet(rng)} `, ...mailbox(rng)],
    'UID COPY': rng => [`UID COPY ${seqSet(rng)} `, ...mailbox(rng)],
    MOVE: rng => [`MOVE ${seqSet(rng)} `, ...mailbox(rng)],
    'UID MOVE': rng => [`UID MOVE ${seqSet(rng)} `, ...mailbox(rng)],
    IDLE: () => ['IDLE'],
    GETQUOTAROOT: rng => ['GETQUOTAROOT ', ...mailbox(rng)],
    GETQUOTA: rng => [`GETQUOTA ${rng.pick(['""', 'ROOT', 'NIL'])}`],
    SETQUOTA: () => ['SETQUOTA "" (STORAGE 1)'],
    COMPRESS: rng => [`COMPRESS ${rng.pick(['DEFLATE', 'BOGUS', ''])}`],
    SORT: rng => [`SORT (${rng.pick(['DATE', 'SUBJECT REVERSE ARRIVAL', 'BOGUS', ''])}) ${rng.pick(['UTF-8', 'BOGUS'])} `, ...searchKey(rng, 2)],
    THREAD: rng => [`THREAD ${rng.pick(['REFERENCES', 'ORDEREDSUBJECT', 'BOGUS'])} UTF-8 ALL`],
    BOGUS: rng => [rng.pick(['BOGUS', 'UID BOGUS', 'UID', 'X', 'FETCH', 'SELECT', 'STORE 1', 'AUTHENTICATE'])]
};

const AUTH_COMMANDS = new Set(['LOGIN', 'AUTHENTICATE PLAIN']);
const NAMES = Object.keys(BUILDERS);
const SELECTED_ONLY = ['SEARCH', 'UID SEARCH', 'FETCH', 'UID FETCH', 'STORE', 'UID STORE', 'COPY', 'UID COPY', 'MOVE', 'UID MOVE', 'EXPUNGE', 'UID EXPUNGE', 'CLOSE', 'UNSELECT', 'SORT', 'THREAD'];

function mutate(rng: Rng, text: string): string {
    let out = text;
    for (let n = rng.int(1, 3); n > 0; n--) {
        const at = rng.int(0, out.length);
        switch (rng.int(0, 6)) {
            case 0:
                out = out.slice(0, at) + out.slice(at + rng.int(1, 5));
                break;
            case 1:
                out = out.slice(0, at) + rng.pick(SPECIALS) + out.slice(at);
                break;
            case 2:
                out = out.slice(0, at);
                break;
            case 3:
                out = out.slice(0, at) + out.slice(at, at + rng.int(1, 20)).repeat(rng.int(2, 50)) + out.slice(at);
                break;
            case 4:
                out = out.replace(/\d+/, rng.pick(NUMBERS));
                break;
            case 5:
                out = out.slice(0, at) + String.fromCharCode(rng.int(0, 255)) + out.slice(at);
                break;
            default:
                out = out.slice(0, at) + ' ' + out.slice(at);
        }
    }
    return out.replace(/[\r\n]/g, ' ');
}

/** A line's text must not end in what reads as a literal announcement unless it is one. */
function defuse(text: string): string {
    return /\{\d*\+?\}?$/.test(text) ? text + 'x' : text;
}

function toParts(segments: Segment[]): CommandPart[] {
    const parts: CommandPart[] = [];
    let text = '';
    for (const segment of segments) {
        if (typeof segment === 'string') {
            text += segment;
        } else {
            parts.push({ head: `${text}{${segment.size}}`, literal: segment });
            text = '';
        }
    }
    parts.push(defuse(text));
    return parts;
}

function command(name: string, parts: CommandPart[], upgrades = false): FuzzCommand {
    return {
        name,
        parts,
        upgrades,
        describe: () => JSON.stringify(parts.map(part => (typeof part === 'string' ? part.slice(0, 300) : `${part.head.slice(0, 300)} +${part.literal.data ? part.literal.data.length : 'none'}`)))
    };
}

/** Random bytes without CR or LF, then CRLF. */
export function generateGarbage(rng: Rng, maxLength: number): Buffer {
    const bytes = Buffer.alloc(rng.int(0, maxLength));
    for (let n = 0; n < bytes.length; n++) {
        let byte = rng.int(0, 255);
        if (byte === 10 || byte === 13) byte = 32;
        bytes[n] = byte;
    }
    return Buffer.concat([Buffer.from(defuse(bytes.toString('latin1')), 'latin1'), Buffer.from('\r\n')]);
}

export function generateCommand(rng: Rng, state: SessionState): FuzzCommand {
    const roll = rng.next();
    if (roll < 0.05) {
        // Garbage after the tag, or a long line.
        const garbage = generateGarbage(rng, rng.chance(0.05) ? 100_000 : 300)
            .toString('latin1')
            .slice(0, -2);
        return command('GARBAGE', [garbage]);
    }
    let names = NAMES;
    if (state === 'not-authenticated' && rng.chance(0.5)) names = ['LOGIN', 'AUTHENTICATE PLAIN', 'CAPABILITY', 'NOOP', 'ID', 'STARTTLS', 'BOGUS'];
    if (state === 'selected' && rng.chance(0.5)) names = SELECTED_ONLY;
    const name = rng.pick(names);
    const segments = BUILDERS[name](rng);
    const upgrades = name === 'COMPRESS' || name === 'STARTTLS';
    // Auth commands are never mutated: a mutated password would be a real failed login.
    if (!AUTH_COMMANDS.has(name) && roll < 0.35) {
        const mutated = segments.map(segment => (typeof segment === 'string' ? mutate(rng, segment) : segment));
        return command(name, toParts(mutated), upgrades || (typeof mutated[0] === 'string' && /COMPRESS|STARTTLS/i.test(mutated[0])));
    }
    return command(name, toParts(segments), upgrades);
}
