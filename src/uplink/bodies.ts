/**
 * Bodies (step 3 of a receive pass): what the header passes left in sync_pending, smallest
 * first across the account's folders, while the budget allows. Each message is committed with
 * its (account, folder, UIDVALIDITY, UID), in groups (download-group.ts: one commit per group,
 * the files written while the next messages arrive), and what arrived is committed before a cut
 * link's error is passed on, so a cut loses at most the one in flight and never duplicates one. A message over the account's
 * maxMessageSize arrives as a stub: its headers and text parts, and a note on what stayed
 * upstream (stub.ts); "Fetch full" (fetch-full.ts) brings the rest on request. A message the
 * store refuses for good (too complex) stays upstream and a note stands in for it (too-complex.ts).
 *
 * Bodies travel in batches: one UID FETCH BODY.PEEK[] for up to BODY_BATCH_MESSAGES messages of
 * one folder (BODY_BATCH_BYTES planned), so a slow link pays one round trip per batch instead
 * of one per message and per 64 KB chunk. imapflow hands the messages over one at a time as
 * they arrive (with backpressure); the batch's last group is committed before the next batch
 * is planned.
 *
 * What a cut costs: under COMPRESS=DEFLATE the server flushes its compressor only when a
 * command completes (Dovecot sends ~30 KB deflate blocks in between), so the messages of an
 * unfinished batch may never reach us even when they were sent before the cut. Batches
 * therefore grow with what this run has already banked: the first is the smallest pending
 * message alone, so every run that gets that far brings something home, and a later batch never
 * plans more bytes than were committed before it, or SLOW_START_FLOOR (about one deflate block)
 * when that is more (the same slow start as TCP): a link that dies after N bytes still brings
 * home about half of what one-message-per-command did, in a handful of round trips instead of
 * one per message. A later batch takes the smallest pending messages of the head's folder
 * whatever their UIDs (the server answers in UID order, so its smallest may not come first: what
 * arrived before a cut is kept all the same).
 *
 * The budget is never overspent: a batch is planned at its worst wire cost (budget.ts
 * worstWireCost: its raw size and a little, as if nothing compressed). Where that stops a run
 * (the smallest message left costs more than what is left at its worst) but the cost measured in
 * this run says it fits (WireCost: compression included), that message is fetched in pieces,
 * each planned at its worst (budget.ts nextPiece), so a compressed run still fills its budget
 * instead of stopping short of it by up to a message.
 *
 * Never the same bytes twice: a pending message whose identity (identity.ts) is home already,
 * downloaded from another folder or Gmail label of the account, is filed from that copy
 * instead, before each batch; a batch never holds two messages of one identity.
 */
import crypto from 'node:crypto';
import type { FetchMessageObject, ImapFlow, MessageStructureObject } from 'imapflow';
import type { ResolvedAccount } from '../config';
import type { PendingDownload } from '../store';
import type { AccountProgress, FolderPlan, UplinkContext } from './context';
import { nextPiece, WireCost, worstWireCost, type RunBudget } from './budget';
import { buildStub, type StubPart } from './stub';
import { DownloadGroup } from './download-group';

const BODY_BATCH_MESSAGES = 500;
const BODY_BATCH_BYTES = 16 * 1024 * 1024;
/**
 * What a batch may plan, at least, once the run has banked something: about one block of
 * Dovecot's deflate output, which a cut loses whole anyway. On a slow link it saves the
 * first few round trips of the slow start (mail of a few KB a message).
 */
const SLOW_START_FLOOR = 32 * 1024;
/** Planned per message beyond its size: the FETCH response's own lines. */
const PER_MESSAGE_OVERHEAD = 256;
/** Kept back from every batch for what the run still says after the bodies. */
const TAIL_RESERVE = 256;

/** "3,5:9,12" for a list of UIDs. */
export function uidSet(uids: number[]): string {
    const sorted = [...new Set(uids)].sort((a, b) => a - b);
    const parts: string[] = [];
    for (let i = 0; i < sorted.length; i++) {
        let j = i;
        while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
        parts.push(j > i ? `${sorted[i]}:${sorted[j]}` : String(sorted[i]));
        i = j;
    }
    return parts.join(',');
}

/**
 * The next batch: the smallest pending message (`pending` is ordered by size), then the next
 * smallest of its folder, while the batch stays under what this run has banked (or
 * SLOW_START_FLOOR, once something is: nothing banked, the head goes alone) and the budget allows (`allows(bytes)`: may the run spend that much more), each message
 * planned at its worst wire cost (as if it did not compress), so no batch can overspend. A stub
 * goes alone; a second message with the identity (`key`) of one already in the batch waits, to
 * be linked to it afterwards. Empty when not even the first message fits at its worst.
 */
export function planBodyBatch<T extends Pick<PendingDownload, 'folder' | 'uid' | 'size'> & { key?: string | null }>(
    pending: T[],
    banked: number,
    maxMessageSize: number,
    allows: (bytes: number) => boolean
): T[] {
    const head = pending[0];
    if (!head) return [];
    const headStub = head.size > maxMessageSize;
    const batch: T[] = [];
    const keys = new Set<string>();
    let planned = 0;
    let plannedRaw = 0;
    const limit = Math.min(BODY_BATCH_BYTES, banked > 0 ? Math.max(banked, SLOW_START_FLOOR) : 0);
    for (const item of pending) {
        if (batch.length >= BODY_BATCH_MESSAGES || (batch.length && plannedRaw + item.size > limit)) break;
        const stub = item.size > maxMessageSize;
        if (item.folder !== head.folder || stub !== headStub) continue;
        if (item.key && keys.has(item.key)) continue;
        // What a stub costs is its text parts; a conservative bound is the limit itself.
        const raw = stub ? Math.min(item.size, maxMessageSize) : item.size;
        const cost = worstWireCost(raw) + PER_MESSAGE_OVERHEAD;
        if (!allows(planned + cost)) break;
        planned += cost;
        plannedRaw += raw + PER_MESSAGE_OVERHEAD;
        batch.push(item);
        if (item.key) keys.add(item.key);
        if (stub) break; // stubs go one at a time
    }
    return batch;
}

/**
 * One message in pieces (`BODY.PEEK[]<offset.length>`, each sized by budget.ts nextPiece), for
 * the end of a run: planned at its worst it would not fit, at the cost this run measured it may.
 * The whole message, or 'gone' (expunged upstream since it was listed), or 'budget' (the rest
 * would not fit: it waits for the next run, when it comes first and whole). Records what it cost
 * in `wireCost`.
 */
async function downloadInPieces(client: ImapFlow, item: PendingDownload, budget: RunBudget, wireCost: WireCost): Promise<Buffer | 'gone' | 'budget'> {
    const pieces: Buffer[] = [];
    let got = 0;
    const spentBefore = budget.spent();
    for (;;) {
        const want = nextPiece(item.size, got, budget.spent() - spentBefore, budget.remaining() - TAIL_RESERVE - PER_MESSAGE_OVERHEAD);
        if (!want) return 'budget';
        const message = await client.fetchOne(String(item.uid), { uid: true, source: { start: got, maxLength: want } }, { uid: true });
        if (!message || !message.source) return 'gone';
        pieces.push(message.source);
        got += message.source.length;
        if (message.source.length < want) break;
    }
    wireCost.record(got, budget.spent() - spentBefore);
    return Buffer.concat(pieces);
}

/** Step 3 for the account's folders in `plans`. */
export async function downloadBodies(ctx: UplinkContext, client: ImapFlow, userId: number, account: ResolvedAccount, plans: FolderPlan[], progress: AccountProgress): Promise<void> {
    const byFolder = new Map(plans.map(plan => [plan.folder, plan]));
    let pending = ctx.store.sync.pendingDownloads(account.address).filter(p => byFolder.has(p.folder));
    let current: { folder: string; release(): void } | null = null;
    let banked = 0;
    const wireCost = new WireCost();
    /** Identities brought home in this run: their twins still pending are linked, not downloaded. */
    const homeKeys = new Set<string>();
    const linkHome = (candidates: PendingDownload[]) => {
        if (!candidates.length) return;
        const linked = new Set(ctx.store.sync.linkPendingToHome(userId, candidates, item => byFolder.get(item.folder)?.mailboxId));
        if (!linked.size) return;
        progress.messagesReceived += linked.size;
        progress.report();
        pending = pending.filter(item => !linked.has(item));
    };
    // Twins of messages that came home since they were listed (an earlier run, another folder).
    linkHome(pending.filter(item => item.key));
    const committed = (item: PendingDownload, uid: number | null) => {
        banked += item.size;
        if (item.key) homeKeys.add(item.key);
        if (uid !== null) {
            progress.messagesReceived++;
            progress.report();
        }
    };
    /** One message on its own (a stub, or one fetched in pieces). */
    const commit = async (plan: FolderPlan, item: PendingDownload, raw: Buffer, stub: boolean) => {
        const group = new DownloadGroup(ctx, userId, plan, progress, committed);
        await group.add(item, raw, stub);
        await group.commit();
    };
    /**
     * Body batches whose UID FETCH is on the wire, oldest first (pipelining). The oldest is the
     * one being read; the next goes out once the newest starts to arrive, so the link never waits
     * a round trip between batches. Each is planned as if those before it were banked already:
     * what a cut can lose stays what the slow start allows (the batch arriving, at most what came
     * before it), within the budget left after those before it at their worst, and without an
     * identity of theirs (a twin is linked once its first copy is home).
     */
    const queued: StartedBatch[] = [];
    /** Messages of queued batches that arrived (a later batch's may come with an earlier one's rows). */
    const arrived = new Set<PendingDownload>();
    /** Raw bytes that arrived, and the budget spent before, since the queue was last empty. */
    let stretch = { raw: 0, spentBefore: 0 };
    const queueNext = (folder: string): void => {
        const inFlight = new Set(queued.flatMap(started => started.batch));
        const inFlightKeys = new Set([...inFlight].flatMap(item => (item.key ? [item.key] : [])));
        const inFlightRaw = [...inFlight].reduce((sum, item) => sum + item.size, 0);
        const inFlightWorst = [...inFlight].reduce((sum, item) => sum + worstWireCost(item.size) + PER_MESSAGE_OVERHEAD, 0);
        const rest = pending.filter(item => !inFlight.has(item) && !(item.key && inFlightKeys.has(item.key)));
        const next = planBodyBatch(rest, banked + inFlightRaw, account.maxMessageSize, bytes => ctx.budget.allows(bytes + inFlightWorst + TAIL_RESERVE));
        if (next.length && next[0].folder === folder && next[0].size <= account.maxMessageSize) queued.push(startBatch(client, next));
    };
    try {
        while (pending.length) {
            const head = queued.length ? queued[0].batch[0] : pending[0];
            const batch = queued.length ? queued[0].batch : planBodyBatch(pending, banked, account.maxMessageSize, bytes => ctx.budget.allows(bytes + TAIL_RESERVE)); // At its worst the smallest message no longer fits; at the cost measured in this run
            // (never before something was measured: a message that does not compress would be
            // started and given up run after run) it may: in pieces.
            const inPieces = !batch.length && head.size <= account.maxMessageSize && wireCost.measured && ctx.budget.allows(wireCost.estimate(head.size) + PER_MESSAGE_OVERHEAD + TAIL_RESERVE);
            if (!batch.length && !inPieces) {
                progress.waiting.push(`${pending.length} message(s) (${head.size} bytes and more) wait for the next run: budget`);
                progress.budgetStopped = true;
                break;
            }
            if (!current || current.folder !== head.folder) {
                current?.release();
                const lock = await client.getMailboxLock(head.folder);
                current = { folder: head.folder, release: () => lock.release() };
                if (Number(client.mailbox && client.mailbox.uidValidity) !== head.uidValidity) {
                    // The folder was reset since its headers were listed; the next run re-links it.
                    break;
                }
            }
            const plan = byFolder.get(head.folder)!;
            if (inPieces) {
                const raw = await downloadInPieces(client, head, ctx.budget, wireCost);
                if (raw === 'budget') {
                    progress.waiting.push(`${pending.length} message(s) (${head.size} bytes and more) wait for the next run: budget`);
                    progress.budgetStopped = true;
                    break;
                }
                if (raw === 'gone') ctx.store.sync.dropPending(head);
                else await commit(plan, head, raw, false);
                pending = pending.filter(item => item !== head);
                linkHome(pending.filter(item => item.key && homeKeys.has(item.key)));
                continue;
            }
            if (head.size > account.maxMessageSize) {
                const raw = await downloadStub(client, head);
                if (raw) await commit(plan, head, raw, true);
                else ctx.store.sync.dropPending(head); // gone upstream since we listed it
            } else {
                if (!queued.length) {
                    queued.push(startBatch(client, batch));
                    stretch = { raw: 0, spentBefore: ctx.budget.spent() };
                }
                const started = queued[0];
                // The server answers in order: the FETCH behind is queued after this one's (imapflow
                // reaches it in microtasks), so that rows of the one behind never come first.
                await new Promise(resolve => setImmediate(resolve));
                if (queued.length === 1) queueNext(head.folder);
                // Rows are matched by UID, not by command: a server may answer a FETCH behind before
                // it completes this one (Dovecot runs them side by side), and imapflow hands rows to
                // the oldest command in flight. A row of a batch behind is stored with this one's.
                const wanted = new Map(queued.flatMap(queuedBatch => queuedBatch.batch.map(item => [item.uid, item] as const)));
                const group = new DownloadGroup(ctx, userId, plan, progress, committed);
                try {
                    for (let row = await started.first; !row.done; row = await started.rows.next()) {
                        const message = row.value;
                        const item = wanted.get(message.uid);
                        if (!item || !message.source || arrived.has(item)) continue;
                        arrived.add(item);
                        stretch.raw += item.size;
                        // The newest batch started to arrive: the next one goes out now.
                        const newest = queued[queued.length - 1];
                        if (newest !== started && !newest.streaming && newest.batch.includes(item)) {
                            newest.streaming = true;
                            queueNext(head.folder);
                            for (const added of queued[queued.length - 1].batch) wanted.set(added.uid, added);
                        }
                        await group.add(item, message.source, false);
                    }
                } finally {
                    // What arrived is kept, also when the link was cut before the command completed.
                    await started.rows.return?.(undefined);
                    await group.commit();
                }
                queued.shift();
                if (queued.length) queued[0].streaming = true;
                // The command completed: what it did not return is gone upstream since we listed it.
                for (const item of batch) if (!arrived.has(item)) ctx.store.sync.dropPending(item);
                // What the batches on the wire since the queue was last empty cost, once it is empty
                // again: bytes read for a batch behind are counted before its rows are. Only what
                // arrived counts as raw bytes: what was gone upstream cost next to nothing.
                if (!queued.length) wireCost.record(stretch.raw, ctx.budget.spent() - stretch.spentBefore);
            }
            const taken = new Set(batch);
            pending = pending.filter(item => !taken.has(item));
            linkHome(pending.filter(item => item.key && homeKeys.has(item.key)));
        }
    } finally {
        // Batches written ahead of a failure are not read: closing the connection ends them.
        current?.release();
    }
}

/** A body batch whose UID FETCH is on its way (imapflow writes it behind the command in flight). */
interface StartedBatch {
    batch: PendingDownload[];
    /** Its rows started to arrive (through its own command or the one before). */
    streaming: boolean;
    rows: AsyncGenerator<FetchMessageObject>;
    /** The first row: asking for it is what sends the command. */
    first: Promise<IteratorResult<FetchMessageObject>>;
}

function startBatch(client: ImapFlow, batch: PendingDownload[]): StartedBatch {
    const rows = client.fetch(uidSet(batch.map(item => item.uid)), { uid: true, source: true }, { uid: true });
    const first = rows.next();
    // Read when the batch's turn comes; until then a failure (the link cut) must not go unobserved.
    first.catch(() => undefined);
    return { batch, rows, first, streaming: false };
}

/** Headers and text parts of a large message, plus a note on what stayed upstream. */
async function downloadStub(client: ImapFlow, item: PendingDownload): Promise<Buffer | null> {
    const message = await client.fetchOne(String(item.uid), { uid: true, bodyStructure: true, headers: true }, { uid: true });
    if (!message || !message.headers) return null;
    const parts: StubPart[] = [];
    const walk = (node: MessageStructureObject): void => {
        if (node.childNodes?.length) {
            node.childNodes.forEach(walk);
            return;
        }
        const type = String(node.type || 'text/plain').toLowerCase();
        const disposition = String(node.disposition || '').toLowerCase();
        const isText = (type === 'text/plain' || type === 'text/html') && disposition !== 'attachment';
        parts.push({
            part: node.part || '1',
            type,
            size: node.size || 0,
            filename: node.dispositionParameters?.filename || node.parameters?.name || null,
            charset: node.parameters?.charset || null,
            encoding: node.encoding || null,
            isText
        });
    };
    // Asked for above (bodyStructure: true), yet it may be missing: imapflow turns a BODYSTRUCTURE
    // nested past its parser's limit (100 levels, a message's sender decides that) into NIL. Then
    // the stub is the headers and the note alone; were this an error, every run would stop here.
    if (message.bodyStructure) walk(message.bodyStructure);
    const texts: { part: StubPart; content: Buffer }[] = [];
    for (const part of parts.filter(p => p.isText)) {
        const downloaded = await client.download(String(item.uid), part.part, { uid: true });
        if (!downloaded?.content) continue;
        const chunks: Buffer[] = [];
        for await (const chunk of downloaded.content) chunks.push(chunk as Buffer);
        // imapflow decodes the transfer encoding and charset: the content is UTF-8 text.
        texts.push({ part, content: Buffer.concat(chunks) });
    }
    return buildStub({ headers: message.headers, size: item.size, parts, texts, boundarySeed: crypto.createHash('sha1').update(String(item.uid)).digest('hex') });
}
