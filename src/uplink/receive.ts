/**
 * Bringing mail home from one upstream account with imapflow, spending as few bytes as we can:
 *
 * 1. Headers first: for each folder, only UIDs above the last one seen (bounded by `since` on
 *    the first run), and only UID, size, date, flags and Message-ID. A message whose Message-ID
 *    the local mailbox already holds is linked, not downloaded. What is new waits in
 *    sync_pending, committed together with the folder's last seen UID.
 * 2. Flags both ways: local changes since the last sync are pushed with batched UID STORE;
 *    upstream changes are pulled with CHANGEDSINCE (CONDSTORE), or by a full scan at most once
 *    per flagScanInterval. Local expunges are deleted upstream only with deleteUpstream.
 * 3. Bodies, smallest first, while the budget allows. Each message is committed with its
 *    (account, folder, UIDVALIDITY, UID) before the next one starts, so a cut link loses at most
 *    the one in flight and never duplicates one. Messages over maxMessageSize arrive as a stub.
 *
 * COMPRESS=DEFLATE is used whenever the server offers it (imapflow's default).
 */
import crypto from 'node:crypto';
import { ImapFlow } from 'imapflow';
import type { ResolvedAccount, ResolvedUser } from '../config';
import type { LinkedMessage, PendingDownload, SyncFolderState } from '../store';
import type { AccountProgress, UplinkContext } from './context';
import { imapTransport, type WireMeter } from './meter';
import { buildStub, type StubPart } from './stub';
import { localFolderFor, FETCH_FULL_FOLDER } from './folders';

const SYNCED_FLAGS = ['\\Seen', '\\Flagged', '\\Answered', '\\Deleted', '\\Draft'];
const HEADER_BATCH = 500;

function syncedFlags(flags: Iterable<string>): string[] {
    const set = new Set<string>();
    for (const flag of flags) {
        const match = SYNCED_FLAGS.find(f => f.toLowerCase() === flag.toLowerCase());
        if (match) set.add(match);
    }
    return [...set].sort();
}

function sameFlags(a: string[], b: string[]): boolean {
    return a.length === b.length && a.every((flag, i) => flag === b[i]);
}

export async function connectUpstream(ctx: UplinkContext, account: ResolvedAccount, meter: WireMeter, freshToken = false): Promise<ImapFlow> {
    const endpoint = account.imap;
    const user = endpoint.user ?? account.address;
    const credentials = account.credentials;
    const auth: { user: string; pass?: string; accessToken?: string } = { user };
    if (credentials?.oauth2) auth.accessToken = await ctx.tokens.accessToken(account.address, credentials.oauth2, freshToken);
    else auth.pass = credentials?.password ?? '';
    const client = new ImapFlow({
        host: endpoint.host,
        port: endpoint.port,
        secure: endpoint.tls === 'implicit',
        doSTARTTLS: endpoint.tls === 'starttls' ? true : endpoint.tls === 'none' ? false : undefined,
        auth,
        logger: false,
        qresync: true,
        connectionTimeout: ctx.timeouts.connectMs,
        greetingTimeout: ctx.timeouts.connectMs,
        socketTimeout: ctx.timeouts.socketMs,
        transport: imapTransport(meter, ctx.timeouts.connectMs),
        clientInfo: { name: 'mailmule' }
    } as unknown as ConstructorParameters<typeof ImapFlow>[0]);
    client.on('error', err => ctx.logger.debug({ account: account.address, err: { message: err.message } }, 'upstream IMAP error'));
    try {
        await client.connect();
    } catch (err) {
        // A cached access token the provider no longer accepts (revoked early): refresh it once.
        if (credentials?.oauth2 && !freshToken && (err as { authenticationFailed?: boolean }).authenticationFailed) {
            client.close();
            return connectUpstream(ctx, account, meter, true);
        }
        throw err;
    }
    return client;
}

interface FolderPlan {
    userName: string;
    folder: string;
    localPath: string;
    mailboxId: number;
}

export async function receiveAccount(
    ctx: UplinkContext,
    user: ResolvedUser,
    account: ResolvedAccount,
    accountIndex: number,
    meter: WireMeter,
    progress: AccountProgress
): Promise<void> {
    const storeUser = ctx.store.ensureUser(user.name);
    const client = await connectUpstream(ctx, account, meter);
    try {
        const listing = await client.list();
        const specialUse = new Map(listing.map(entry => [entry.path, entry.specialUse ?? null]));
        const plans: FolderPlan[] = [];
        for (const folder of account.folders) {
            const localPath = localFolderFor(user, account, accountIndex, folder, specialUse.get(folder) ?? null);
            let mailbox = ctx.store.getMailbox(storeUser.id, localPath);
            if (!mailbox) {
                ctx.store.createMailbox(storeUser.id, localPath);
                mailbox = ctx.store.getMailbox(storeUser.id, localPath);
            }
            if (!mailbox) {
                progress.errors.push(`cannot create local folder ${localPath}`);
                continue;
            }
            plans.push({ userName: user.name, folder, localPath, mailboxId: mailbox.id });
        }

        // 1 and 2: headers and flags, folder by folder.
        for (const plan of plans) {
            if (!specialUse.has(plan.folder)) {
                progress.errors.push(`upstream folder ${plan.folder} does not exist`);
                continue;
            }
            const lock = await client.getMailboxLock(plan.folder);
            try {
                await syncFolderHeaders(ctx, client, storeUser.id, account, plan, progress);
                await syncFlags(ctx, client, account, plan, progress);
            } finally {
                lock.release();
            }
        }

        // 3: bodies, smallest first across the account's folders.
        await downloadBodies(ctx, client, storeUser.id, account, plans, progress);
        await fetchFullRequests(ctx, client, storeUser.id, user, account, accountIndex, specialUse, progress);
        await client.logout().catch(() => undefined);
    } finally {
        client.close();
    }
}

async function syncFolderHeaders(ctx: UplinkContext, client: ImapFlow, userId: number, account: ResolvedAccount, plan: FolderPlan, progress: AccountProgress): Promise<void> {
    const mailbox = client.mailbox;
    if (!mailbox) return;
    const uidValidity = Number(mailbox.uidValidity);
    const highestModseq = Number(mailbox.highestModseq ?? 0);
    let state = ctx.store.getSyncFolder(account.address, plan.folder);

    if (state && state.uidValidity !== uidValidity) {
        state = await remapAfterReset(ctx, client, account, plan, state, uidValidity);
    }

    let range: string;
    if (!state) {
        state = { account: account.address, folder: plan.folder, uidValidity, lastUid: 0, highestModseq, lastFlagScan: Date.now() };
        const since = new Date(Date.now() - account.since * 1000);
        const uids = mailbox.exists ? ((await client.search({ since }, { uid: true })) || []) : [];
        if (!uids.length) {
            state.lastUid = Math.max(Number(mailbox.uidNext ?? 1) - 1, 0);
            ctx.store.saveSyncFolder(state);
            return;
        }
        range = uids.join(',');
    } else {
        if (Number(mailbox.uidNext ?? 0) && Number(mailbox.uidNext) <= state.lastUid + 1) return;
        if (!mailbox.exists) return;
        range = `${state.lastUid + 1}:*`;
    }

    const floor = state.lastUid;
    let batch: { uid: number; size: number; messageId: string | null; idate: number; flags: string[] }[] = [];
    const flush = () => {
        if (!batch.length) return;
        state!.lastUid = Math.max(state!.lastUid, ...batch.map(h => h.uid));
        const result = ctx.store.recordUpstreamHeaders(userId, plan.mailboxId, state!, batch);
        progress.messagesReceived += result.linked;
        batch = [];
    };
    for await (const message of client.fetch(range, { uid: true, flags: true, size: true, internalDate: true, headers: ['message-id'] }, { uid: true })) {
        // "N:*" also returns the highest message when it is below N.
        if (message.uid <= floor) continue;
        const headerText = message.headers ? message.headers.toString('utf8') : '';
        const messageId = /^message-id:\s*(.*(?:\r?\n[ \t].*)*)/im.exec(headerText)?.[1]?.replace(/\s+/g, ' ').trim() || null;
        batch.push({
            uid: message.uid,
            size: message.size ?? 0,
            messageId,
            idate: message.internalDate ? new Date(message.internalDate).getTime() : Date.now(),
            flags: [...(message.flags ?? [])]
        });
        if (batch.length >= HEADER_BATCH) flush();
    }
    flush();
    if (!state.lastUid && mailbox.uidNext) state.lastUid = Number(mailbox.uidNext) - 1;
    ctx.store.saveSyncFolder(state);
}

/**
 * UIDVALIDITY changed upstream (the folder was recreated or the server rebuilt its index).
 * Lists the folder's headers once (no bodies) and re-links local copies by Message-ID, with
 * size and date as tie-breaks; only what is really new is downloaded afterwards.
 */
async function remapAfterReset(
    ctx: UplinkContext,
    client: ImapFlow,
    account: ResolvedAccount,
    plan: FolderPlan,
    old: SyncFolderState,
    uidValidity: number
): Promise<SyncFolderState> {
    const linked = ctx.store.linkedMessages(account.address, plan.folder, old.uidValidity);
    const byId = new Map<string, typeof linked>();
    for (const message of linked) {
        if (!message.messageId) continue;
        const list = byId.get(message.messageId) ?? [];
        list.push(message);
        byId.set(message.messageId, list);
    }
    const matches: { oldUid: number; newUid: number }[] = [];
    // Flags changed upstream across the reset: the new generation's MODSEQs say nothing about them.
    const flagChanges: { local: LinkedMessage; upstream: string[] }[] = [];
    const unmatched: { uid: number; size: number; messageId: string | null; idate: number; flags: string[] }[] = [];
    const since = Date.now() - account.since * 1000;
    const state: SyncFolderState = { account: account.address, folder: plan.folder, uidValidity, lastUid: 0, highestModseq: 0, lastFlagScan: Date.now() };
    const mailbox = client.mailbox;
    if (mailbox && mailbox.exists) {
        for await (const message of client.fetch('1:*', { uid: true, size: true, flags: true, internalDate: true, headers: ['message-id'] }, { uid: true })) {
            state.lastUid = Math.max(state.lastUid, message.uid);
            const headerText = message.headers ? message.headers.toString('utf8') : '';
            const raw = /^message-id:\s*(.*)$/im.exec(headerText)?.[1]?.trim();
            const id = raw ? (/<[^>]*>/.exec(raw)?.[0] ?? `<${raw}>`).toLowerCase() : null;
            const idate = message.internalDate ? new Date(message.internalDate).getTime() : 0;
            const candidates = id ? byId.get(id) : undefined;
            if (candidates?.length) {
                candidates.sort((a, b) => Number(b.size === message.size) - Number(a.size === message.size) || Math.abs(a.idate - idate) - Math.abs(b.idate - idate));
                const chosen = candidates.shift()!;
                matches.push({ oldUid: chosen.upstreamUid, newUid: message.uid });
                const upstream = syncedFlags(message.flags ?? []);
                if (!chosen.upstreamFlags || !sameFlags(upstream, syncedFlags(chosen.upstreamFlags))) flagChanges.push({ local: chosen, upstream });
            } else if (idate >= since) {
                unmatched.push({ uid: message.uid, size: message.size ?? 0, messageId: raw ?? null, idate, flags: [...(message.flags ?? [])] });
            }
        }
    }
    const moved = ctx.store.remapUpstream(account.address, plan.folder, old.uidValidity, uidValidity, matches);
    for (const { local, upstream } of flagChanges) {
        // As in syncFlags' pull: upstream's synced flags win, local keywords stay.
        const keywords = local.flags.filter(f => !f.startsWith('\\'));
        ctx.store.updateFlags(local.userId, local.mailboxId, [local.uid], 'set', [...upstream, ...keywords]);
        ctx.store.setUpstreamFlags(local.mailboxId, local.uid, upstream);
    }
    // The listing above is the header pass for this generation: record what is new, once.
    ctx.store.recordUpstreamHeaders(ctx.store.getMailboxById(ctx.store.ensureUser(plan.userName).id, plan.mailboxId)!.userId, plan.mailboxId, state, unmatched);
    ctx.logger.info(
        { account: account.address, folder: plan.folder, oldUidValidity: old.uidValidity, uidValidity, relinked: moved, new: unmatched.length },
        'UIDVALIDITY changed upstream; local copies re-linked'
    );
    return state;
}

async function syncFlags(ctx: UplinkContext, client: ImapFlow, account: ResolvedAccount, plan: FolderPlan, progress: AccountProgress): Promise<void> {
    const state = ctx.store.getSyncFolder(account.address, plan.folder);
    const mailbox = client.mailbox;
    if (!state || !mailbox) return;
    const linked = ctx.store.linkedMessages(account.address, plan.folder, state.uidValidity);
    const byUpstreamUid = new Map(linked.map(message => [message.upstreamUid, message]));

    // Push: local changes since what we last knew upstream.
    const groups = new Map<string, { add: string[]; remove: string[]; uids: number[] }>();
    for (const message of linked) {
        if (!message.upstreamFlags) continue;
        const local = syncedFlags(message.flags);
        const known = syncedFlags(message.upstreamFlags);
        if (sameFlags(local, known)) continue;
        const add = local.filter(f => !known.includes(f));
        const remove = known.filter(f => !local.includes(f));
        const key = `${add.join(' ')}|${remove.join(' ')}`;
        const group = groups.get(key) ?? { add, remove, uids: [] };
        group.uids.push(message.upstreamUid);
        groups.set(key, group);
    }
    for (const group of groups.values()) {
        const set = group.uids.join(',');
        if (group.add.length) await client.messageFlagsAdd(set, group.add, { uid: true });
        if (group.remove.length) await client.messageFlagsRemove(set, group.remove, { uid: true });
        for (const uid of group.uids) {
            const message = byUpstreamUid.get(uid)!;
            const next = syncedFlags([...message.upstreamFlags!.filter(f => !group.remove.includes(f)), ...group.add]);
            ctx.store.setUpstreamFlags(message.mailboxId, message.uid, next);
            message.upstreamFlags = next;
        }
    }

    // Local expunges: delete upstream only when the account asks for it.
    const deletions = ctx.store.pendingDeletions(account.address, plan.folder, state.uidValidity);
    if (deletions.length) {
        if (account.deleteUpstream) {
            await client.messageDelete(deletions.join(','), { uid: true });
        }
        ctx.store.clearDeletions(account.address, plan.folder, state.uidValidity, deletions);
    }

    // Pull: what changed upstream.
    const highestModseq = Number(mailbox.highestModseq ?? 0);
    const condstore = highestModseq > 0 && client.enabled.has('CONDSTORE');
    const now = Date.now();
    let changedSince: bigint | undefined;
    if (condstore && state.highestModseq > 0) {
        if (highestModseq === state.highestModseq) {
            return;
        }
        changedSince = BigInt(state.highestModseq);
    } else if (now - state.lastFlagScan < ctx.flagScanIntervalMs()) {
        if (condstore) ctx.store.saveSyncFolder({ ...state, highestModseq });
        return;
    }
    if (linked.length && mailbox.exists) {
        const options = changedSince !== undefined ? { uid: true, changedSince } : { uid: true };
        for await (const message of client.fetch('1:*', { uid: true, flags: true }, options)) {
            const local = byUpstreamUid.get(message.uid);
            if (!local) continue;
            const upstream = syncedFlags(message.flags ?? []);
            const known = local.upstreamFlags ? syncedFlags(local.upstreamFlags) : null;
            if (known && sameFlags(upstream, known)) continue;
            // Upstream changed: apply its synced flags, keep local keywords.
            const keywords = local.flags.filter(f => !f.startsWith('\\'));
            ctx.store.updateFlags(local.userId, local.mailboxId, [local.uid], 'set', [...upstream, ...keywords]);
            ctx.store.setUpstreamFlags(local.mailboxId, local.uid, upstream);
        }
    }
    ctx.store.saveSyncFolder({ ...state, highestModseq: condstore ? highestModseq : state.highestModseq, lastFlagScan: changedSince !== undefined ? state.lastFlagScan : now });
    void progress;
}

/**
 * Bodies travel in batches: one UID FETCH BODY.PEEK[] for up to BODY_BATCH_MESSAGES messages of
 * one folder (BODY_BATCH_BYTES planned), so a slow link pays one round trip per batch instead
 * of one per message and per 64 KB chunk. imapflow hands the messages over one at a time as
 * they arrive (with backpressure), and each is committed before the next is read.
 *
 * What a cut costs: under COMPRESS=DEFLATE the server flushes its compressor only when a
 * command completes (Dovecot sends ~30 KB deflate blocks in between), so the messages of an
 * unfinished batch may never reach us even when they were sent before the cut. Batches
 * therefore grow with what this run has already banked: the first is the smallest pending
 * message alone, and a batch never plans more bytes than were committed before it (the same
 * slow start as TCP), so a link that dies after N bytes still brings home at least about half
 * of what one-message-per-command did, in a handful of round trips instead of one per message.
 * The server answers in UID order, so a batch holds only UIDs above its smallest message's,
 * which then comes first.
 */
const BODY_BATCH_MESSAGES = 500;
const BODY_BATCH_BYTES = 16 * 1024 * 1024;

/** "3,5:9,12" for a list of UIDs. */
function uidSet(uids: number[]): string {
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

async function downloadBodies(
    ctx: UplinkContext,
    client: ImapFlow,
    userId: number,
    account: ResolvedAccount,
    plans: FolderPlan[],
    progress: AccountProgress
): Promise<void> {
    const byFolder = new Map(plans.map(plan => [plan.folder, plan]));
    let pending = ctx.store.pendingDownloads(account.address).filter(p => byFolder.has(p.folder));
    let current: { folder: string; release(): void } | null = null;
    let banked = 0;
    const commit = (plan: FolderPlan, item: PendingDownload, raw: Buffer, stub: boolean) => {
        const result = ctx.store.importUpstream(userId, plan.mailboxId, raw, ctx.store.analyse(raw), item, { flags: item.flags, idate: item.idate, stub });
        banked += item.size;
        if (typeof result === 'number') {
            progress.messagesReceived++;
            progress.report();
        }
    };
    try {
        while (pending.length) {
            // The smallest pending message, then the next smallest of its folder while the budget allows.
            const head = pending[0];
            const headStub = head.size > account.maxMessageSize;
            const batch: PendingDownload[] = [];
            let planned = 0;
            const limit = Math.min(BODY_BATCH_BYTES, banked);
            for (const item of pending) {
                if (batch.length >= BODY_BATCH_MESSAGES || (batch.length && planned + item.size > limit)) break;
                const stub = item.size > account.maxMessageSize;
                // Only UIDs above the head's: the server answers in UID order, so the smallest
                // pending message still arrives first and a link that keeps dying after a few
                // kilobytes still brings something home on every run.
                if (item.folder !== head.folder || stub !== headStub || item.uid < head.uid) continue;
                // What a stub costs is its text parts; a conservative bound is the limit itself.
                const cost = (stub ? Math.min(item.size, account.maxMessageSize) : item.size) + 256;
                if (!ctx.budget.allows(planned + cost)) break;
                planned += cost;
                batch.push(item);
                if (stub) break; // stubs go one at a time
            }
            if (!batch.length) {
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
            if (headStub) {
                const raw = await downloadStub(client, head);
                if (raw) commit(plan, head, raw, true);
                else ctx.store.dropPending(head); // gone upstream since we listed it
            } else {
                const wanted = new Map(batch.map(item => [item.uid, item]));
                const done = new Set<number>();
                for await (const message of client.fetch(uidSet(batch.map(item => item.uid)), { uid: true, source: true }, { uid: true })) {
                    const item = wanted.get(message.uid);
                    if (!item || !message.source || done.has(item.uid)) continue;
                    done.add(item.uid);
                    commit(plan, item, message.source, false);
                }
                // The command completed: what it did not return is gone upstream since we listed it.
                for (const item of batch) if (!done.has(item.uid)) ctx.store.dropPending(item);
            }
            const taken = new Set(batch);
            pending = pending.filter(item => !taken.has(item));
        }
    } finally {
        current?.release();
    }
}

async function downloadWhole(client: ImapFlow, uid: number): Promise<Buffer | null> {
    const download = await client.download(String(uid), undefined, { uid: true });
    if (!download || !download.content) return null;
    const chunks: Buffer[] = [];
    for await (const chunk of download.content) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
}

/** Headers and text parts of a large message, plus a note on what stayed upstream. */
async function downloadStub(client: ImapFlow, item: PendingDownload): Promise<Buffer | null> {
    const message = await client.fetchOne(String(item.uid), { uid: true, bodyStructure: true, headers: true }, { uid: true });
    if (!message || !message.headers) return null;
    const parts: StubPart[] = [];
    const walk = (node: any): void => {
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
    walk(message.bodyStructure);
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

/** Stubs moved into "Fetch full": download them whole and put them back where they came from. */
async function fetchFullRequests(
    ctx: UplinkContext,
    client: ImapFlow,
    userId: number,
    user: ResolvedUser,
    account: ResolvedAccount,
    accountIndex: number,
    specialUse: Map<string, string | null>,
    progress: AccountProgress
): Promise<void> {
    let fetchFull = ctx.store.getMailbox(userId, FETCH_FULL_FOLDER);
    if (!fetchFull) {
        ctx.store.createMailbox(userId, FETCH_FULL_FOLDER);
        fetchFull = ctx.store.getMailbox(userId, FETCH_FULL_FOLDER);
        if (!fetchFull) return;
    }
    const stubs = ctx.store.stubsIn(userId, fetchFull.id).filter(stub => stub.ref.account === account.address);
    for (const stub of stubs) {
        const state = ctx.store.getSyncFolder(account.address, stub.ref.folder);
        if (!state || state.uidValidity !== stub.ref.uidValidity) continue;
        const lock = await client.getMailboxLock(stub.ref.folder);
        try {
            const fetched = await client.fetchOne(String(stub.ref.uid), { uid: true, size: true }, { uid: true });
            const size = (fetched && fetched.size) || 0;
            if (!ctx.budget.allows(size + 256)) {
                progress.waiting.push(`a "Fetch full" request (${size} bytes) waits for the next run: budget`);
                progress.budgetStopped = true;
                return;
            }
            const raw = await downloadWhole(client, stub.ref.uid);
            if (!raw) continue;
            const target = localFolderFor(user, account, accountIndex, stub.ref.folder, specialUse.get(stub.ref.folder) ?? null);
            const targetMailbox = ctx.store.getMailbox(userId, target);
            if (!targetMailbox) continue;
            ctx.store.replaceStub(userId, fetchFull.id, stub.uid, targetMailbox.id, raw, ctx.store.analyse(raw), stub.ref, stub.flags, stub.idate);
            progress.messagesReceived++;
            progress.report();
        } finally {
            lock.release();
        }
    }
}
