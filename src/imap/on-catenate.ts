/**
 * CATENATE (RFC 4469): APPEND of messages built from parts, text sent by the client and IMAP URLs
 * naming a message or a section of one in the same user's mailboxes (imap-url.ts). imap-core
 * parses the command (patch 131) and hands the parts over; each URL is resolved here to the bytes
 * a FETCH of it would return (BODY[] from the raw file, BODY[section] through getQueryResponse
 * with the same attachment storage as on-fetch.ts), and the built messages are then stored by
 * on-append.ts exactly as a plain APPEND's or MULTIAPPEND's are: one transaction, EXISTS to
 * this session, APPENDUID.
 *
 * Bounds: the whole command, text parts and resolved URLs of every message together, is held to
 * the size imap-core holds one APPEND's literals to (maxSize); a URL part is read no further than
 * what is left of it, so no more than that is ever built, and one over it answers NO [TOOBIG]
 * (RFC 4469 section 3).
 */
import type { Readable } from 'node:stream';
import Indexer from '@zone-eu/wildduck/imap-core/lib/indexer/indexer';
import { appendMessages, type AppendedMessage } from './on-append';
import { guarded, utf8MailboxPath, type Callback, type ImapContext, type ImapSession } from './context';
import { parseImapUrl } from './imap-url';
import { bindTree, rawFileStorage } from './raw-file-storage';
import type { QueryItem } from './fetch-response';
import type { FetchedMessage } from '../store';

type CatenatePart = { type: 'text'; value: Buffer; literal8?: boolean } | { type: 'url'; url: string };

/** A message of the command: a plain literal (raw), or CATENATE parts. */
interface CatenateMessage {
    flags: string[];
    internaldate: unknown;
    literal8?: boolean;
    raw?: Buffer;
    parts?: CatenatePart[];
}

type Resolved = Buffer | 'BADURL' | 'TOOBIG';

/** Finds a part by its number as FETCH BODY[1.2] does (RFC 3501 6.4.5). */
const partFinder = new Indexer();

/** The stream's bytes, or null once they pass `max` (the stream is then destroyed, not read on). */
async function readBounded(stream: Readable, max: number): Promise<Buffer | null> {
    const chunks: Buffer[] = [];
    let length = 0;
    for await (const chunk of stream) {
        const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string, 'binary');
        length += bytes.length;
        if (length > max) {
            stream.destroy();
            return null;
        }
        chunks.push(bytes);
    }
    return Buffer.concat(chunks, length);
}

/**
 * A body stream of getQueryResponse as FETCH writes it (imap-core's compile-stream): `length` bytes,
 * cut off there or padded with spaces. The Indexer's stream may run past the length it announced
 * (a multipart's closing line break), which FETCH never sends.
 */
async function readAsFetchWrites(stream: Readable, length: number): Promise<Buffer> {
    const out = Buffer.alloc(length, ' ');
    let filled = 0;
    for await (const chunk of stream) {
        const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string, 'binary');
        filled += bytes.copy(out, filled, 0, Math.min(bytes.length, length - filled));
        if (filled >= length) break;
    }
    stream.destroy();
    return out;
}

/** Resolves one URL part to at most `max` bytes: the bytes, BADURL (RFC 4469 section 5) or TOOBIG. */
async function resolveUrl(
    ctx: ImapContext,
    session: ImapSession,
    url: string,
    max: number,
    storage: ReturnType<typeof rawFileStorage>,
    seen: Map<string, FetchedMessage | undefined>
): Promise<Resolved> {
    const parsed = parseImapUrl(url);
    if (!parsed) return 'BADURL';
    const userId = session.user.id;
    // Only this user's own mailboxes are looked up: the URL names no user (imap-url.ts).
    const mailbox = ctx.store.mailboxes.get(userId, parsed.mailbox);
    if (!mailbox || (parsed.uidValidity !== undefined && parsed.uidValidity !== mailbox.uidValidity)) return 'BADURL';
    // A command line may name the same message a thousand times: its row and MIME tree are read once.
    const key = `${mailbox.id}:${parsed.uid}`;
    if (!seen.has(key)) seen.set(key, ctx.store.messages.fetchPage(userId, mailbox.id, [parsed.uid], { mimeTree: true })[0]);
    const message = seen.get(key);
    if (!message || message.uid !== parsed.uid) return 'BADURL';
    const offset = parsed.partial?.offset ?? 0;
    // One byte past what is left tells "too big" from "fits exactly" without reading further.
    const wanted = Math.min(parsed.partial?.length ?? Infinity, max + 1);

    if (!parsed.section) {
        // BODY[] as FETCH answers it: the stored raw file (on-fetch.ts wholeMessageValue).
        if (offset >= message.size) return Buffer.alloc(0);
        const length = Math.min(wanted, message.size - offset);
        if (length > max) return 'TOOBIG';
        return (await readBounded(ctx.store.messages.createRangeStream(message.blobHash, offset, length), max)) ?? 'TOOBIG';
    }

    if (!message.mimeTree) throw new Error('message has no stored MIME tree');
    // FETCH answers a part that does not exist with an empty string; a URL naming one cannot be resolved.
    if (parsed.section.path && !partFinder.resolveContentNode(message.mimeTree, parsed.section.path)) return 'BADURL';
    const record = {
        uid: message.uid,
        flags: message.flags,
        idate: new Date(message.idate),
        size: message.size,
        mimeTree: bindTree(message.mimeTree, message.blobHash)
    };
    // BODY[section]<offset.wanted>, as imap-core's FETCH builds the item (commands/fetch.js): the range
    // keeps the Indexer from producing more than can be used.
    const item: QueryItem & { headers?: string[] } = {
        item: 'body',
        original: { partial: [offset, wanted] },
        path: parsed.section.path,
        type: parsed.section.type,
        partial: { startFrom: offset, maxLength: wanted },
        isLiteral: true
    };
    if (parsed.section.headers) item.headers = parsed.section.headers;
    const [value] = session.getQueryResponse([item], record, { acceptUTF8Enabled: session.isUTF8Enabled(), attachmentStorage: storage });
    if (value && typeof value === 'object' && (value as { type?: string }).type === 'stream') {
        const body = value as { value: Readable; expectedLength?: number; startFrom?: number; maxLength?: number };
        const length = Math.max(0, Math.min((body.expectedLength ?? 0) - (body.startFrom ?? 0), body.maxLength || Infinity));
        if (length > max) {
            body.value.destroy();
            return 'TOOBIG';
        }
        return readAsFetchWrites(body.value, length);
    }
    const bytes = Buffer.isBuffer(value) ? value : Buffer.from(typeof value === 'string' ? value : '', 'binary');
    return bytes.length > max ? 'TOOBIG' : bytes;
}

export function onAppendCatenate(ctx: ImapContext) {
    const storage = rawFileStorage(ctx);
    return (path: string, messages: CatenateMessage[], session: ImapSession, callback: Callback, options?: { maxSize?: number }): void =>
        guarded(ctx, 'append', callback, async () => {
            // RFC 4469 section 5 as Dovecot does it: a missing target is TRYCREATE, whatever the URLs say.
            if (!ctx.store.mailboxes.get(session.user.id, utf8MailboxPath(path, session))) {
                return callback(null, 'TRYCREATE');
            }
            // What the client sent is in memory already and counts first.
            let left = options?.maxSize ?? Infinity;
            for (const message of messages) {
                left -= message.raw ? message.raw.length : 0;
                for (const part of message.parts ?? []) left -= part.type === 'text' ? part.value.length : 0;
            }
            if (left < 0) return callback(null, 'TOOBIG');

            const built: AppendedMessage[] = [];
            const seen = new Map<string, FetchedMessage | undefined>();
            for (const message of messages) {
                if (!message.parts) {
                    built.push({ flags: message.flags, internaldate: message.internaldate, raw: message.raw ?? Buffer.alloc(0), literal8: message.literal8 });
                    continue;
                }
                const chunks: Buffer[] = [];
                for (const part of message.parts) {
                    if (part.type === 'text') {
                        chunks.push(part.value);
                        continue;
                    }
                    const resolved = await resolveUrl(ctx, session, part.url, left, storage, seen);
                    if (resolved === 'BADURL') return callback(null, 'BADURL', { url: part.url });
                    if (resolved === 'TOOBIG') return callback(null, 'TOOBIG');
                    left -= resolved.length;
                    chunks.push(resolved);
                }
                built.push({ flags: message.flags, internaldate: message.internaldate, raw: Buffer.concat(chunks), literal8: message.literal8 });
            }

            const result = await appendMessages(ctx, path, built, session);
            if (typeof result === 'string') {
                return callback(null, result);
            }
            callback(null, true, { uidValidity: result.uidValidity, uids: result.uids });
        });
}
