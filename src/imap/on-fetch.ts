/**
 * FETCH and UID FETCH.
 *
 * Whole-message items (BODY[], BODY.PEEK[], RFC822, with or without a partial range) come
 * straight from the stored raw file (read whole up to INLINE_BODY_MAX, streamed beyond), so what
 * a client downloads is byte for byte what was delivered, and RFC822.SIZE is its exact length. Everything else (sections, headers,
 * ENVELOPE, BODYSTRUCTURE) comes from imap-core's getQueryResponse over the stored MIME tree,
 * whose large bodies are themselves byte ranges of the raw file.
 *
 * Only the columns a query needs are read: a FLAGS-only fetch of 10,000 messages never touches
 * a MIME tree, and a header-fields fetch uses the stored root header lines.
 *
 * Costs of a large FETCH kept out of the per-message loop (bench/imap.ts measured them; the
 * bytes on the wire are the same as imap-core's own formatResponse + compiler would write):
 * - the response itself: built and compiled by fetch-response.ts (sequence number by binary
 *   search, item names and flag lists compiled once, simple lines without the generic compiler);
 * - socket writes: one write per message meant one TCP segment per message; responses that
 *   need no stream are compiled and written in batches, and the socket is corked for the tick
 *   so the last batch and the tagged completion leave together (response-batch.ts);
 * - message fields and root header fields are read directly (fetch-plan.ts directReader) instead of through
 *   getQueryResponse.
 */
import { Readable } from 'node:stream';
import { splitSummaryLines, type FetchedMessage } from '../store';
import { imapHandler } from './engine';
import { guarded, type Callback, type ImapContext, type ImapSession } from './context';
import { binaryValue, UnknownEncodingError } from './fetch-binary';
import { endOnError } from './end-on-error';
import { compileFetchPieces, fetchResponse, sequenceOf, type QueryItem } from './fetch-response';
import { ascendingUnique, planFetch, type FetchOptions, type FetchPlan, type FetchRecord } from './fetch-plan';
import { corkForTick, ResponseBatch } from './response-batch';
import { bindTree, rawFileStorage } from './raw-file-storage';

/**
 * A whole message up to this size is read in one synchronous read and sent as a literal, like any
 * other value: a file stream costs several thread-pool round trips (open, read, close) per
 * message, which made 100 single BODY[] fetches several times slower than Dovecot. Larger
 * messages are streamed from disk.
 */
const INLINE_BODY_MAX = 128 * 1024;

/** How the command ended early: imap-core's response code for the tagged NO. */
type FetchOutcome = true | 'UNKNOWN-CTE';

/**
 * One FETCH command's run. Its work is in methods, not in a closure made per command: V8 keeps
 * optimised code per function, and a closure created for each command with the page loop in it
 * was compiled again and again (up to 65 ms of TurboFan per compile on a helper thread) and left
 * its on-stack-replaced code at every loop exit, a deoptimisation per command (bench:imap step 4,
 * `--trace-opt --trace-deopt`).
 */
class FetchRun {
    private readonly plan: FetchPlan;
    private readonly responseOptions: { acceptUTF8Enabled: boolean; attachmentStorage: unknown };
    private readonly recent: Set<number> | null;
    /** Flag lists already announced in this command: the store shares one array among messages with the same flags. */
    private readonly announced = new Set<string[]>();
    /** The flags of recent messages with \Recent added, one array per stored flags array: line writers look compiled flag lists up by array. */
    private readonly withRecent = new Map<string[], string[]>();
    private readonly names = new Map<QueryItem, string>();
    /** Compiled responses waiting to be written, in order; written before any stream and at each page end. */
    private readonly batch: ResponseBatch;

    constructor(
        private readonly fetcher: Fetcher,
        private readonly mailboxId: number,
        private readonly options: FetchOptions,
        private readonly session: ImapSession,
        private readonly selected: Exclude<ImapSession['selected'], false | null | undefined>
    ) {
        this.plan = planFetch(options);
        this.responseOptions = { acceptUTF8Enabled: session.isUTF8Enabled(), attachmentStorage: fetcher.attachmentStorage };
        this.recent = selected.recent && selected.recent.size ? selected.recent : null;
        this.batch = new ResponseBatch(session.writeStream);
    }

    private flush(): void {
        corkForTick(this.session.socket);
        this.batch.flush();
    }

    async run(): Promise<FetchOutcome> {
        const store = this.fetcher.ctx.store;
        const userId = this.session.user.id;
        const pageSize = this.plan.pageSize;
        const uids = ascendingUnique(this.options.messages);
        for (let start = 0; start < uids.length; start += pageSize) {
            const messages = store.messages.fetchPage(userId, this.mailboxId, uids.slice(start, start + pageSize), this.plan.columns, this.options.changedSince || 0);
            if (this.plan.markAsSeen) this.markSeen(userId, messages);
            const outcome = await this.respondPage(messages);
            if (outcome !== true) return outcome;
            this.flush();
            if (messages.length === pageSize) {
                // The next page once the client has taken this one (imap-core patch 134): a
                // client that does not read would otherwise have the whole FETCH held in memory,
                // up to PAGE_SIZE × INLINE_BODY_MAX a page (issue 8). Then let other sessions' commands in.
                const outputTaken = this.session.whenOutputTaken;
                if (outputTaken) await new Promise<void>(resolve => outputTaken(resolve));
                await new Promise(resolve => setImmediate(resolve));
            }
        }
        // The tagged completion is written as this returns: corked with the last responses (response-batch.ts).
        this.flush();
        return true;
    }

    /** Adds \Seen to the page's unseen messages (BODY[] without .PEEK), replacing their objects in `messages`. */
    private markSeen(userId: number, messages: FetchedMessage[]): void {
        const unseen = messages.filter(message => !message.flags.includes('\\Seen')).map(message => message.uid);
        if (!unseen.length) return;
        // The new flags are in this response (imap-core adds FLAGS when marking seen), so this session skips the journal entry.
        const result = this.fetcher.ctx.store.messages.updateFlags(userId, this.mailboxId, unseen, 'add', ['\\Seen'], { ignoreSession: this.session.id });
        const changed = new Map(result.changes.map(change => [change.uid, change]));
        messages.forEach((message, index) => {
            const change = changed.get(message.uid);
            // A new object: the store's are shared and read-only.
            if (change) messages[index] = { ...message, flags: change.flags, modseq: change.modseq };
        });
    }

    private async respondPage(messages: FetchedMessage[]): Promise<FetchOutcome> {
        // The session's UID list, read per page: it only changes between commands, never during this one.
        const uidList = this.selected.uidList;
        const writeLine = this.plan.writeLine;
        let seq = 0;
        // Indexed: a for-of here made an iterator result object per message.
        for (let position = 0; position < messages.length; position++) {
            const message = messages[position];
            // The messages come in UID order: this one is most likely right after the last one found.
            seq = sequenceOf(uidList, message.uid, seq);
            if (!seq) {
                // formatResponse would have returned false for a UID the session does not know.
                continue;
            }
            const flags = this.shownFlags(message);
            const line = writeLine ? writeLine(seq, message, flags) : null;
            if (line !== null) {
                this.batch.addLine(line);
                continue;
            }
            const outcome = await this.respondMessage(seq, message, flags);
            if (outcome !== true) return outcome;
        }
        return true;
    }

    /** The message's flags as this session shows them, announcing keywords new to it first. */
    private shownFlags(message: FetchedMessage): string[] {
        // RFC 3501 2.3.2: \Recent in the one session the message is recent in.
        let flags = message.flags;
        if (this.recent && this.recent.has(message.uid)) {
            let shown = this.withRecent.get(message.flags);
            if (!shown) {
                shown = [...message.flags, '\\Recent'];
                this.withRecent.set(message.flags, shown);
            }
            flags = shown;
        }
        if (this.plan.wantsFlags && !this.announced.has(message.flags)) {
            // RFC 3501 7.2.6: a keyword new to this session is announced in FLAGS before the FETCH shows it.
            this.session.announceFlags(message.flags);
            this.announced.add(message.flags);
        }
        return flags;
    }

    private record(message: FetchedMessage, flags: string[]): Record<string, unknown> {
        const plan = this.plan;
        const record: Record<string, unknown> = {
            uid: message.uid,
            modseq: message.modseq,
            flags,
            idate: plan.needsDate ? new Date(message.idate) : undefined,
            size: message.size,
            envelope: message.envelope,
            bodystructure: message.bodystructure
        };
        if (message.mimeTree) {
            record.mimeTree = bindTree(message.mimeTree, message.blobHash);
        } else if (message.headerLines) {
            record.mimeTree = { rootNode: true, header: message.headerLines, parsedHeader: {} };
        } else if (message.headerSummary !== undefined) {
            const summary = message.headerSummary;
            record.headerSummary = summary;
            // Lines for getQueryResponse (a partial), or the whole header of a message without a summary.
            if (!summary || !plan.direct || (!message.size && plan.needsSize)) {
                const header = summary ? splitSummaryLines(summary.lines) : this.fetcher.ctx.store.messages.rootHeaderLines(message.blobHash);
                record.mimeTree = { rootNode: true, header, parsedHeader: {} };
            }
        }
        return record;
    }

    /** One message's response, through the batch or, when a value streams, written on its own. */
    private async respondMessage(seq: number, message: FetchedMessage, flags: string[]): Promise<FetchOutcome> {
        const plan = this.plan;
        const query = plan.query;
        const record = this.record(message, flags);
        const readDirectly = plan.direct && (message.size > 0 || !plan.needsSize);
        const treeValues = !readDirectly && plan.treeQuery.length ? this.session.getQueryResponse(plan.treeQuery, record, this.responseOptions) : [];
        const binaryValues = plan.binaryIndexes.size ? new Map<number, unknown>() : null;
        for (const index of plan.binaryIndexes) {
            try {
                binaryValues!.set(index, await binaryValue(query[index], record, this.session, this.responseOptions, INLINE_BODY_MAX));
            } catch (err) {
                if (!(err instanceof UnknownEncodingError)) throw err;
                // RFC 3516 4.1: a content-transfer-encoding the server cannot decode fails the command.
                this.flush();
                return 'UNKNOWN-CTE';
            }
        }
        let next = 0;
        let streaming = false;
        const values = new Array<unknown>(query.length);
        for (let index = 0; index < query.length; index++) {
            let value: unknown;
            if (binaryValues && plan.binaryIndexes.has(index)) {
                value = binaryValues.get(index);
                if (value && (value as { type?: string }).type === 'stream') streaming = true;
            } else if (plan.wholeIndexes.has(index)) {
                value = this.fetcher.wholeMessageValue(query[index], message);
                if (!(Buffer.isBuffer(value) && this.fetcher.inlined.has(value))) streaming = true;
            } else if (readDirectly) {
                value = plan.readers[index]!(record as unknown as FetchRecord);
            } else {
                value = treeValues[next++];
                if (value && (value as { type?: string }).type === 'stream') streaming = true;
            }
            values[index] = value;
        }
        const response = fetchResponse(seq, query, values, this.names);
        if (!streaming) {
            this.batch.add(compileFetchPieces(response as { command: string; attributes: unknown[] }) ?? imapHandler.compiler(response));
            return true;
        }
        this.flush();
        // Each body stream ends rather than fails (endOnError); a failure ends the command NO after this response.
        const failures: Error[] = [];
        for (const node of (response.attributes as unknown[][])[1] as { type?: string; value?: unknown }[]) {
            if (node && node.type === 'LITERAL' && node.value instanceof Readable) node.value = endOnError(node.value, failures);
        }
        const stream = imapHandler.compileStream(response);
        await new Promise<void>((resolve, reject) => {
            stream.once('error', reject);
            this.session.writeStream.write(stream, () => resolve());
        });
        if (failures.length) throw failures[0];
        return true;
    }
}

/** What every FETCH of a server shares: the store, and the bodies it read whole. */
class Fetcher {
    readonly attachmentStorage: ReturnType<typeof rawFileStorage>;
    /** Message bodies read whole (INLINE_BODY_MAX); they are plain literals, not streams. */
    readonly inlined = new WeakSet<Buffer>();

    constructor(readonly ctx: ImapContext) {
        this.attachmentStorage = rawFileStorage(ctx);
    }

    wholeMessageValue(item: QueryItem, message: FetchedMessage): unknown {
        const messages = this.ctx.store.messages;
        const size = message.size;
        if (!item.partial) {
            if (!size) return Buffer.alloc(0);
            if (size <= INLINE_BODY_MAX) {
                const raw = messages.readRaw(message.blobHash);
                if (raw.length === size) {
                    this.inlined.add(raw);
                    return raw;
                }
            }
            return { type: 'stream', value: messages.createRangeStream(message.blobHash, 0, 0), expectedLength: size };
        }
        const startFrom = item.partial.startFrom;
        const maxLength = item.partial.maxLength;
        // As imap-core does for tree-built bodies: past the end, answer <origin> only (RFC 3501 6.4.5).
        if (item.original.partial && item.original.partial.length === 2 && maxLength - startFrom > size) {
            item.original.partial.pop();
        }
        if (startFrom >= size) {
            return Buffer.alloc(0);
        }
        const length = maxLength ? Math.min(maxLength, size - startFrom) : size - startFrom;
        const stream = messages.createRangeStream(message.blobHash, startFrom, length) as NodeJS.ReadableStream & { isLimited?: boolean };
        stream.isLimited = true;
        return { type: 'stream', value: stream, expectedLength: size, startFrom, maxLength: length };
    }

    async fetch(mailboxId: number, options: FetchOptions, session: ImapSession, callback: Callback): Promise<void> {
        const selected = session.selected;
        if (!selected) {
            return callback(null, 'NONEXISTENT');
        }
        const outcome = await new FetchRun(this, mailboxId, options, session, selected).run();
        callback(null, outcome);
    }
}

export function onFetch(ctx: ImapContext) {
    const fetcher = new Fetcher(ctx);
    return (mailboxId: number, options: FetchOptions, session: ImapSession, callback: Callback): void =>
        guarded(ctx, 'fetch', callback, () => fetcher.fetch(Number(mailboxId), options, session, callback));
}
