/**
 * A deterministic, seeded corpus of realistic mail for the IMAP benchmark, written once as a
 * Maildir and cached under bench/.cache/ (git-ignored).
 *
 * Shape (for the default 10,000 messages, about 220 MB):
 * - about 45 % text/plain, 35 % multipart/alternative (text + HTML, quoted-printable), and 20 %
 *   multipart/mixed with one or two base64 attachments (PDF, JPEG, DOCX-like random bytes);
 * - sizes 2 KB to 200 KB: plain and alternative messages mostly 2–20 KB (a long tail to ~50 KB),
 *   messages with attachments log-uniform between 20 KB and 200 KB;
 * - Received/DKIM/List-Id/X-Mailer headers, Message-IDs, Dates in several time zones, replies
 *   with In-Reply-To/References, and about 15 % non-ASCII subjects or names as RFC 2047 encoded
 *   words (UTF-8 B/Q and ISO-8859-1 Q), some RFC 2231 attachment names;
 * - SEARCH_WORD occurs in the text of about 4 % of messages (body, sometimes the subject), and
 *   nowhere else, so a TEXT search has a known number of hits.
 *
 * Files are `cur/<unix time>.<n>.bench:2,<flags>` with mtime = the message's Date, in strictly
 * increasing time order, so Dovecot (which orders new files by name) and `mailmule import`
 * (which orders by mtime) give message n the same UID n.
 *
 * The words and names the messages are made of are bench/corpus-vocabulary.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { base64Lines, quotedPrintable, SeededChoices } from '../test/support/fixtures/mail-corpus';
import { WORDS, NON_ASCII_WORDS, FIRST_NAMES, LAST_NAMES, NON_ASCII_NAMES, DOMAINS, MAILERS, ZONES, DAYS, MONTHS, ATTACHMENTS } from './corpus-vocabulary';

export const CORPUS_VERSION = 2;
/** A word that occurs in some messages' text and never by accident (it is not in WORDS). */
export const SEARCH_WORD = 'marmalade';

const KB = 1024;
const MAX_SIZE = 200 * KB;
const MIN_SIZE = 2 * KB;

/** sfc32: small, fast, and good enough for test data (the corpus's own: changing it changes the corpus). */
export class Rng extends SeededChoices {
    private a: number;
    private b: number;
    private c: number;
    private d: number;

    constructor(seed: number) {
        super();
        this.a = 0x9e3779b9;
        this.b = 0x243f6a88;
        this.c = 0xb7e15162;
        this.d = seed >>> 0;
        for (let i = 0; i < 15; i++) this.u32();
    }

    u32(): number {
        const t = (((this.a + this.b) | 0) + this.d) | 0;
        this.d = (this.d + 1) | 0;
        this.a = this.b ^ (this.b >>> 9);
        this.b = (this.c + (this.c << 3)) | 0;
        this.c = (this.c << 21) | (this.c >>> 11);
        this.c = (this.c + t) | 0;
        return t >>> 0;
    }

    /** [0, 1) */
    next(): number {
        return this.u32() / 4294967296;
    }

    hex(length: number): string {
        let out = '';
        while (out.length < length) out += this.u32().toString(16).padStart(8, '0');
        return out.slice(0, length);
    }

    bytes(length: number): Buffer {
        const out = Buffer.allocUnsafe(length + 4);
        for (let i = 0; i < length; i += 4) out.writeUInt32LE(this.u32(), i);
        return out.subarray(0, length);
    }
}

export interface CorpusSummary {
    version: number;
    seed: number;
    count: number;
    dir: string;
    totalBytes: number;
    minBytes: number;
    medianBytes: number;
    maxBytes: number;
    plain: number;
    alternative: number;
    withAttachments: number;
    nonAscii: number;
    replies: number;
    seen: number;
    searchWord: string;
    searchHits: number;
}

function dateHeader(utcMs: number, zone: [string, number]): string {
    const local = new Date(utcMs + zone[1] * 60000);
    const pad = (n: number) => String(n).padStart(2, '0');
    return `${DAYS[local.getUTCDay()]}, ${local.getUTCDate()} ${MONTHS[local.getUTCMonth()]} ${local.getUTCFullYear()} ${pad(local.getUTCHours())}:${pad(local.getUTCMinutes())}:${pad(local.getUTCSeconds())} ${zone[0]}`;
}

const isAscii = (text: string) => /^[\x20-\x7e]*$/.test(text);

/** RFC 2047 encoded words (UTF-8 B, UTF-8 Q or ISO-8859-1 Q), folded so no line exceeds 76 characters. */
function encodeWords(text: string, rng: Rng): string {
    if (isAscii(text)) return text;
    const latin1 = /^[\x20-\xff]*$/.test(text);
    const style = latin1 && rng.chance(0.4) ? 'latin1' : rng.chance(0.5) ? 'b' : 'q';
    const chunks: string[] = [];
    let current = '';
    const limit = style === 'b' ? 36 : 20;
    for (const char of text) {
        if (Buffer.byteLength(current + char) > limit) {
            chunks.push(current);
            current = '';
        }
        current += char;
    }
    if (current) chunks.push(current);
    const qEncode = (bytes: Buffer) =>
        [...bytes]
            .map(b =>
                b === 0x20 ? '_' : (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) ? String.fromCharCode(b) : '=' + b.toString(16).toUpperCase().padStart(2, '0')
            )
            .join('');
    return chunks
        .map(chunk => {
            if (style === 'b') return `=?UTF-8?B?${Buffer.from(chunk, 'utf8').toString('base64')}?=`;
            if (style === 'q') return `=?UTF-8?Q?${qEncode(Buffer.from(chunk, 'utf8'))}?=`;
            return `=?ISO-8859-1?Q?${qEncode(Buffer.from(chunk, 'latin1'))}?=`;
        })
        .join('\r\n ');
}

function wrap(words: string[], width = 72): string[] {
    const lines: string[] = [];
    let line = '';
    for (const word of words) {
        if (line && line.length + 1 + word.length > width) {
            lines.push(line);
            line = word;
        } else {
            line = line ? `${line} ${word}` : word;
        }
    }
    if (line) lines.push(line);
    return lines;
}

function sentence(rng: Rng, nonAscii: boolean): string[] {
    const words: string[] = [];
    const length = rng.int(6, 18);
    for (let i = 0; i < length; i++) {
        words.push(nonAscii && rng.chance(0.08) ? rng.pick(NON_ASCII_WORDS) : rng.pick(WORDS));
    }
    words[0] = words[0][0].toUpperCase() + words[0].slice(1);
    words[words.length - 1] += rng.pick(['.', '.', '.', '?', '!']);
    return words;
}

/** Paragraphs (arrays of sentences' words) of about `bytes` bytes of text. */
function paragraphs(rng: Rng, bytes: number, nonAscii: boolean, withWord: boolean): string[][] {
    const out: string[][] = [];
    let size = 0;
    while (size < bytes || !out.length) {
        const paragraph: string[] = [];
        const sentences = rng.int(2, 6);
        for (let i = 0; i < sentences; i++) paragraph.push(...sentence(rng, nonAscii));
        size += paragraph.reduce((sum, word) => sum + word.length + 1, 0) + 2;
        out.push(paragraph);
    }
    if (withWord) {
        const paragraph = rng.pick(out);
        paragraph.splice(rng.int(1, paragraph.length - 1), 0, rng.chance(0.3) ? SEARCH_WORD[0].toUpperCase() + SEARCH_WORD.slice(1) : SEARCH_WORD);
    }
    return out;
}

function plainText(paras: string[][], greeting: string, signature: string): string {
    return [greeting, '', ...paras.flatMap(p => [...wrap(p), '']), '-- ', signature, ''].join('\r\n');
}

function htmlText(paras: string[][], greeting: string, signature: string): string {
    const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
    return [
        '<!DOCTYPE html>',
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=UTF-8"></head>',
        '<body style="font-family: Arial, sans-serif; font-size: 14px;">',
        `<div dir="ltr"><p>${esc(greeting)}</p>`,
        ...paras.flatMap(p => {
            const lines = wrap(p.map(esc));
            return [`<p style="margin: 0 0 12px 0;">${lines[0]}`, ...lines.slice(1), '</p>'];
        }),
        `<div class="signature">-- <br>${esc(signature)}</div>`,
        '</div></body></html>',
        ''
    ].join('\r\n');
}

interface Person {
    name: string;
    address: string;
}

function person(rng: Rng, nonAscii: boolean): Person {
    const name = nonAscii ? rng.pick(NON_ASCII_NAMES) : `${rng.pick(FIRST_NAMES)} ${rng.pick(LAST_NAMES)}`;
    const local = nonAscii ? `user${rng.int(1, 500)}` : name.toLowerCase().replace(/[^a-z]+/g, '.');
    return { name, address: `${local}@${rng.pick(DOMAINS)}` };
}

function addressHeader(people: Person[], rng: Rng): string {
    return people
        .map(p => {
            const display = isAscii(p.name) ? (rng.chance(0.5) ? `"${p.name}"` : p.name) : encodeWords(p.name, rng);
            return `${display} <${p.address}>`;
        })
        .join(',\r\n ');
}

interface ThreadRef {
    messageId: string;
    subject: string;
    references: string[];
}

interface Built {
    raw: Buffer;
    kind: 'plain' | 'alternative' | 'mixed';
    nonAscii: boolean;
    reply: boolean;
    hit: boolean;
    ref: ThreadRef;
}

function buildMessage(rng: Rng, n: number, utcMs: number, recent: ThreadRef[], maxSize = MAX_SIZE): Built {
    const roll = rng.next();
    const kind: Built['kind'] = roll < 0.2 ? 'mixed' : roll < 0.55 ? 'alternative' : 'plain';
    const nonAscii = rng.chance(0.15);
    const hit = rng.chance(0.04);
    const hitInSubject = hit && rng.chance(0.15);
    const domain = rng.pick(DOMAINS);
    const from = person(rng, nonAscii && rng.chance(0.6));
    const to: Person[] = [{ name: 'Bench User', address: 'bench@mailmule.lan' }];
    while (rng.chance(0.3) && to.length < 6) to.push(person(rng, false));
    const cc: Person[] = [];
    if (rng.chance(0.25)) {
        do cc.push(person(rng, rng.chance(0.1)));
        while (rng.chance(0.4) && cc.length < 5);
    }
    const parent = recent.length && rng.chance(0.3) ? rng.pick(recent) : null;
    let subjectText: string;
    if (parent) {
        subjectText = parent.subject.startsWith('Re: ') ? parent.subject : `Re: ${parent.subject}`;
    } else {
        const words = sentence(rng, nonAscii).slice(0, rng.int(3, 9));
        words[words.length - 1] = words[words.length - 1].replace(/[.?!]$/, '');
        if (hitInSubject) words.splice(1, 0, SEARCH_WORD);
        subjectText = words.join(' ');
    }
    const messageId = `<${rng.hex(16)}.${n}@${domain}>`;
    const references = parent ? [...parent.references.slice(-6), parent.messageId] : [];
    const zone = rng.pick(ZONES);
    const date = dateHeader(utcMs, zone);

    const headers: string[] = [];
    headers.push(`Return-Path: <${from.address}>`);
    const hops = rng.int(1, 3);
    for (let i = 0; i < hops; i++) {
        headers.push(
            `Received: from mx${i + 1}.${domain} (mx${i + 1}.${domain} [192.0.2.${rng.int(1, 254)}])\r\n\tby mail.village.example (Postfix) with ESMTPS id ${rng.hex(10).toUpperCase()}\r\n\tfor <bench@mailmule.lan>; ${date}`
        );
    }
    if (rng.chance(0.4)) {
        const b = rng.bytes(256).toString('base64');
        headers.push(
            `DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=${domain}; s=s${rng.int(1, 9)};\r\n\th=from:to:subject:date:message-id:mime-version;\r\n\tbh=${rng.bytes(32).toString('base64')};\r\n\tb=${b.slice(0, 70)}\r\n\t ${b.slice(70, 140)}\r\n\t ${b.slice(140, 210)}\r\n\t ${b.slice(210)}`
        );
    }
    headers.push(`Message-ID: ${messageId}`);
    headers.push(`Date: ${date}`);
    headers.push(`From: ${addressHeader([from], rng)}`);
    headers.push(`To: ${addressHeader(to, rng)}`);
    if (cc.length) headers.push(`Cc: ${addressHeader(cc, rng)}`);
    headers.push(`Subject: ${encodeWords(subjectText, rng)}`);
    if (parent) {
        headers.push(`In-Reply-To: ${parent.messageId}`);
        headers.push(`References: ${references.join('\r\n ')}`);
    }
    if (rng.chance(0.15)) headers.push(`List-Id: Village ${rng.pick(['Council', 'Cooperative', 'School', 'Choir'])} <${rng.pick(['council', 'coop', 'school', 'choir'])}.lists.example.org>`);
    if (rng.chance(0.6)) headers.push(`X-Mailer: ${rng.pick(MAILERS)}`);
    headers.push('MIME-Version: 1.0');

    const headerBytes = headers.reduce((sum, h) => sum + h.length + 2, 0) + 120;
    let target: number;
    if (kind === 'mixed') {
        // 20 KB to maxSize, log-uniform (with the default 200 KB: 20 KB × 10^r, as always).
        target = Math.round(20 * KB * Math.pow(maxSize / (20 * KB), rng.next()));
    } else {
        target = Math.round(MIN_SIZE * Math.pow(25, Math.pow(rng.next(), 1.7)));
    }
    target = Math.max(MIN_SIZE, Math.min(maxSize, target));

    const greeting = rng.pick(['Hello,', 'Hi all,', `Dear ${to[0].name},`, 'Good morning,', 'Jambo,']);
    const signature = `${from.name}\r\n${from.address}`;
    const charsetParam = 'charset="UTF-8"';
    const textPart = (paras: string[][]): string[] => {
        const text = plainText(paras, greeting, signature);
        if (isAscii(text.replace(/\r\n/g, ''))) {
            return [`Content-Type: text/plain; ${charsetParam}; format=flowed`, 'Content-Transfer-Encoding: 7bit', '', text];
        }
        return [`Content-Type: text/plain; ${charsetParam}`, 'Content-Transfer-Encoding: quoted-printable', '', quotedPrintable(text)];
    };
    const htmlPart = (paras: string[][]): string[] => [
        'Content-Type: text/html; charset="UTF-8"',
        'Content-Transfer-Encoding: quoted-printable',
        '',
        quotedPrintable(htmlText(paras, greeting, signature))
    ];
    const boundary = (tag: string) => `----=_Part_${tag}_${rng.hex(12)}`;
    const multipart = (subtype: string, b: string, parts: string[][]): string[] => [
        `Content-Type: multipart/${subtype};\r\n\tboundary="${b}"`,
        '',
        'This is a multi-part message in MIME format.',
        ...parts.flatMap(part => [`--${b}`, ...part]),
        `--${b}--`,
        ''
    ];

    let body: string[];
    const budget = Math.max(600, target - headerBytes);
    if (kind === 'plain' || kind === 'alternative') {
        // Text is generated in whole sentences; grow it until the message reaches MIN_SIZE.
        let textBudget = kind === 'plain' ? budget - 200 : Math.max(300, (budget - 900) * 0.42);
        for (;;) {
            const paras = paragraphs(rng, textBudget, nonAscii, hit);
            body = kind === 'plain' ? textPart(paras) : multipart('alternative', boundary('alt'), [textPart(paras), htmlPart(paras)]);
            const size = headers.reduce((sum, h) => sum + h.length + 2, 0) + body.reduce((sum, line) => sum + Buffer.byteLength(line) + 2, 0);
            if (size >= MIN_SIZE + 16) break;
            textBudget += MIN_SIZE - size + 64;
        }
    } else {
        const textBytes = rng.int(800, 4000);
        const paras = paragraphs(rng, textBytes, nonAscii, hit);
        const inner = rng.chance(0.5) ? multipart('alternative', boundary('alt'), [textPart(paras), htmlPart(paras)]) : textPart(paras);
        const used = inner.reduce((sum, line) => sum + line.length + 2, 0) + 400;
        const files = rng.chance(0.25) ? 2 : 1;
        const parts: string[][] = [inner];
        let remaining = Math.max(2 * KB, target - headerBytes - used);
        for (let f = 0; f < files; f++) {
            const encoded = files === 2 && f === 0 ? Math.floor(remaining * rng.next() * 0.8) + 512 : remaining;
            remaining -= encoded;
            const kindOf = rng.pick(ATTACHMENTS);
            const rawLength = Math.max(256, Math.floor((encoded - 300) * (76 / 78) * 0.75));
            const data = rng.bytes(rawLength);
            Buffer.from(kindOf.magic, 'latin1').copy(data, 0);
            const nonAsciiName = rng.chance(0.2);
            const base = nonAsciiName
                ? rng.pick(['Résumé', 'Protokoll_Sitzung_Übersicht', 'Facture_Décembre', 'Jahresbericht_für_Genossenschaft'])
                : rng.pick(['report', 'minutes', 'photo', 'invoice', 'budget', 'scan']) + '-' + rng.int(1, 999);
            const filename = `${base}.${kindOf.ext}`;
            const nameParams = nonAsciiName ? `;\r\n\tfilename*=utf-8''${encodeURIComponent(filename)}` : `;\r\n\tfilename="${filename}"`;
            parts.push([
                `Content-Type: ${kindOf.type};\r\n\tname="${nonAsciiName ? encodeWords(filename, rng) : filename}"`,
                `Content-Disposition: attachment${nameParams}`,
                'Content-Transfer-Encoding: base64',
                '',
                base64Lines(data)
            ]);
        }
        body = multipart('mixed', boundary('mix'), parts);
    }
    // A single-part message's Content-* lines simply continue the message header.
    const raw = Buffer.from([...headers, ...body].join('\r\n'), 'utf8');
    return {
        raw,
        kind,
        nonAscii,
        reply: Boolean(parent),
        // A reply inherits its parent's subject, and with it the word.
        hit: hit || subjectText.toLowerCase().includes(SEARCH_WORD),
        ref: { messageId, subject: subjectText, references }
    };
}

/** Makes (or reuses) the corpus under `cacheRoot`; returns its summary. */
export function ensureCorpus(options: { count: number; seed: number; cacheRoot: string; log?: (line: string) => void; maxSize?: number }): CorpusSummary {
    // maxSize (optional, for bench/sync.ts): the largest message with attachments; the default
    // (200 KB) gives exactly the corpus it always gave, under the same cache name.
    const maxSize = options.maxSize ?? MAX_SIZE;
    const name = `corpus-v${CORPUS_VERSION}-n${options.count}-s${options.seed}${maxSize === MAX_SIZE ? '' : `-max${maxSize}`}`;
    const dir = path.join(options.cacheRoot, name);
    const summaryFile = path.join(dir, 'summary.json');
    if (fs.existsSync(summaryFile)) {
        const summary = JSON.parse(fs.readFileSync(summaryFile, 'utf8')) as CorpusSummary;
        return { ...summary, dir: path.join(dir, 'Maildir') };
    }
    fs.mkdirSync(options.cacheRoot, { recursive: true });
    const building = path.join(options.cacheRoot, `${name}.building-${process.pid}`);
    fs.rmSync(building, { recursive: true, force: true });
    const maildir = path.join(building, 'Maildir');
    for (const sub of ['cur', 'new', 'tmp']) fs.mkdirSync(path.join(maildir, sub), { recursive: true });

    const rng = new Rng(options.seed);
    const start = Date.UTC(2023, 0, 2, 6, 0, 0);
    const span = 2 * 365 * 86400 * 1000;
    const meanGap = span / options.count;
    let at = start;
    const recent: ThreadRef[] = [];
    const sizes: number[] = [];
    const summary: CorpusSummary = {
        version: CORPUS_VERSION,
        seed: options.seed,
        count: options.count,
        dir: '',
        totalBytes: 0,
        minBytes: 0,
        medianBytes: 0,
        maxBytes: 0,
        plain: 0,
        alternative: 0,
        withAttachments: 0,
        nonAscii: 0,
        replies: 0,
        seen: 0,
        searchWord: SEARCH_WORD,
        searchHits: 0
    };
    for (let n = 1; n <= options.count; n++) {
        // Exponential gaps, at least one second apart so file names sort like the dates.
        at += Math.max(1000, Math.round((-Math.log(1 - rng.next()) * meanGap) / 1000) * 1000);
        const built = buildMessage(rng, n, at, recent, maxSize);
        recent.push(built.ref);
        if (recent.length > 50) recent.shift();
        const recentMessage = n > options.count * 0.95;
        const seen = !recentMessage && rng.chance(0.8);
        let flags = '';
        if (seen && rng.chance(0.05)) flags += 'F';
        if (seen && rng.chance(0.1)) flags += 'R';
        if (seen) flags += 'S';
        const file = path.join(maildir, 'cur', `${Math.floor(at / 1000)}.${n}.bench:2,${flags}`);
        fs.writeFileSync(file, built.raw);
        fs.utimesSync(file, at / 1000, at / 1000);
        sizes.push(built.raw.length);
        summary.totalBytes += built.raw.length;
        summary[built.kind === 'mixed' ? 'withAttachments' : built.kind]++;
        if (built.nonAscii) summary.nonAscii++;
        if (built.reply) summary.replies++;
        if (seen) summary.seen++;
        if (built.hit) summary.searchHits++;
        if (options.log && n % 2000 === 0) options.log(`corpus: ${n}/${options.count} messages written`);
    }
    sizes.sort((a, b) => a - b);
    summary.minBytes = sizes[0];
    summary.maxBytes = sizes[sizes.length - 1];
    summary.medianBytes = sizes[Math.floor(sizes.length / 2)];
    fs.writeFileSync(path.join(building, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(building, dir);
    return { ...summary, dir: path.join(dir, 'Maildir') };
}
