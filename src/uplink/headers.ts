/**
 * The header pass, for one upstream folder (step 1 of a receive pass): only UIDs above the last
 * one seen (bounded by the account's `since` on the first run), and for each only UID, size,
 * date, flags and Message-ID (and the server's message id where it offers one). The store links
 * a message whose Message-ID the local mailbox already holds, files one already home from
 * another folder or label from that copy (identity.ts), and keeps the others in sync_pending for
 * the bodies step, committed together with the folder's last seen UID, so a cut link never
 * lists or downloads a message twice.
 *
 * When the folder's UIDVALIDITY changed upstream, the pass lists the whole folder once instead
 * and re-links the local copies to their new UIDs (remapAfterReset).
 */
import type { ImapFlow } from 'imapflow';
import type { ResolvedAccount } from '../config';
// UpstreamHeader: what the header pass learns of one upstream message, in the shape the store records.
import type { LinkedMessage, SyncFolderState, UpstreamHeader } from '../store';
import type { AccountProgress, FolderPlan, UplinkContext } from './context';
import { applyUpstreamFlags, changedUpstream } from './flags';
import { messageIdOf } from './message-id';
import { upstreamKey } from './identity';
import { uidSet } from './bodies';

/** Headers recorded per store commit. */
const HEADER_BATCH = 500;

/** The header pass's record of one FETCH response. */
function headerOf(client: ImapFlow, message: { uid: number; size?: number; headers?: Buffer; internalDate?: Date | string; flags?: Set<string>; emailId?: string }): UpstreamHeader {
    const size = message.size ?? 0;
    const messageId = messageIdOf(message.headers);
    const idate = message.internalDate ? new Date(message.internalDate).getTime() : Date.now();
    return { uid: message.uid, size, messageId, idate, flags: [...(message.flags ?? [])], key: upstreamKey(client.capabilities, { emailId: message.emailId, messageId, size, idate }) };
}

/** What the header pass asks for: no body, and of the header only the Message-ID field. */
const HEADER_QUERY = { uid: true, flags: true, size: true, internalDate: true, headers: ['message-id'] };

/**
 * Step 1 for the folder selected on `client`. `statusUidNext`: UIDNEXT from a STATUS just before
 * the SELECT, for servers whose SELECT does not say it (Courier).
 */
export async function syncFolderHeaders(
    ctx: UplinkContext,
    client: ImapFlow,
    userId: number,
    account: ResolvedAccount,
    plan: FolderPlan,
    progress: AccountProgress,
    statusUidNext?: number
): Promise<void> {
    const mailbox = client.mailbox;
    if (!mailbox) return;
    const uidNext = Number(mailbox.uidNext ?? 0) || statusUidNext || 0;
    const uidValidity = Number(mailbox.uidValidity);
    const highestModseq = Number(mailbox.highestModseq ?? 0);
    let state = ctx.store.sync.getFolder(account.address, plan.folder);

    if (state && state.uidValidity !== uidValidity) {
        state = await remapAfterReset(ctx, client, account, plan, state, uidValidity);
    }

    let range: string;
    if (!state) {
        state = { account: account.address, folder: plan.folder, uidValidity, lastUid: 0, highestModseq, lastFlagScan: Date.now() };
        const since = new Date(Date.now() - account.since * 1000);
        const uids = mailbox.exists ? (await client.search({ since }, { uid: true })) || [] : [];
        if (!uids.length) {
            state.lastUid = Math.max(uidNext - 1, 0);
            ctx.store.sync.saveFolder(state);
            return;
        }
        // "1:200" rather than 200 numbers: the command goes up the slow link too.
        range = uidSet(uids);
    } else {
        if (uidNext && uidNext <= state.lastUid + 1) return;
        if (!mailbox.exists) return;
        range = `${state.lastUid + 1}:*`;
    }

    const folderState = state;
    const floor = folderState.lastUid;
    let batch: UpstreamHeader[] = [];
    const flush = () => {
        if (!batch.length) return;
        folderState.lastUid = Math.max(folderState.lastUid, ...batch.map(h => h.uid));
        const result = ctx.store.sync.recordHeaders(userId, plan.mailboxId, folderState, batch);
        progress.messagesReceived += result.linked;
        batch = [];
    };
    for await (const message of client.fetch(range, HEADER_QUERY, { uid: true })) {
        // "N:*" also returns the highest message when it is below N.
        if (message.uid <= floor) continue;
        batch.push(headerOf(client, message));
        if (batch.length >= HEADER_BATCH) flush();
    }
    flush();
    if (!folderState.lastUid && uidNext) folderState.lastUid = uidNext - 1;
    ctx.store.sync.saveFolder(folderState);
}

/**
 * Of the local copies carrying an upstream message's Message-ID, the one it most likely is:
 * the same size first, then the closest date. It is taken out of `candidates`, so two upstream
 * messages with one Message-ID re-link to two local copies.
 */
export function takeClosest<T extends Pick<LinkedMessage, 'size' | 'idate'>>(candidates: T[], size: number, idate: number): T | undefined {
    candidates.sort((a, b) => Number(b.size === size) - Number(a.size === size) || Math.abs(a.idate - idate) - Math.abs(b.idate - idate));
    return candidates.shift();
}

/**
 * UIDVALIDITY changed upstream (the folder was recreated or the server rebuilt its index).
 * Lists the folder's headers once (no bodies) and re-links local copies by Message-ID, with
 * size and date as tie-breaks; only what is really new is downloaded afterwards.
 */
async function remapAfterReset(ctx: UplinkContext, client: ImapFlow, account: ResolvedAccount, plan: FolderPlan, old: SyncFolderState, uidValidity: number): Promise<SyncFolderState> {
    const byId = new Map<string, LinkedMessage[]>();
    for (const message of ctx.store.sync.linkedMessages(account.address, plan.folder, old.uidValidity)) {
        if (!message.messageId) continue;
        const list = byId.get(message.messageId) ?? [];
        list.push(message);
        byId.set(message.messageId, list);
    }
    const matches: { oldUid: number; newUid: number }[] = [];
    // Flags changed upstream across the reset: the new generation's MODSEQs say nothing about them.
    const flagChanges: { local: LinkedMessage; upstream: string[] }[] = [];
    const unmatched: UpstreamHeader[] = [];
    const since = Date.now() - account.since * 1000;
    const state: SyncFolderState = { account: account.address, folder: plan.folder, uidValidity, lastUid: 0, highestModseq: 0, lastFlagScan: Date.now() };
    const mailbox = client.mailbox;
    if (mailbox && mailbox.exists) {
        for await (const message of client.fetch('1:*', HEADER_QUERY, { uid: true })) {
            state.lastUid = Math.max(state.lastUid, message.uid);
            const messageId = messageIdOf(message.headers);
            const idate = message.internalDate ? new Date(message.internalDate).getTime() : 0;
            const chosen = messageId ? takeClosest(byId.get(messageId) ?? [], message.size ?? 0, idate) : undefined;
            if (chosen) {
                matches.push({ oldUid: chosen.upstreamUid, newUid: message.uid });
                const upstream = changedUpstream(chosen.upstreamFlags, message.flags ?? []);
                if (upstream) flagChanges.push({ local: chosen, upstream });
            } else if (idate >= since) {
                unmatched.push(headerOf(client, message));
            }
        }
    }
    const moved = ctx.store.sync.remap(account.address, plan.folder, old.uidValidity, uidValidity, matches);
    for (const { local, upstream } of flagChanges) applyUpstreamFlags(ctx.store, local, upstream);
    // The listing above is the header pass for this generation: record what is new, once.
    ctx.store.sync.recordHeaders(ctx.store.mailboxes.getById(ctx.store.users.ensure(plan.userName).id, plan.mailboxId)!.userId, plan.mailboxId, state, unmatched);
    ctx.logger.info(
        { account: account.address, folder: plan.folder, oldUidValidity: old.uidValidity, uidValidity, relinked: moved, new: unmatched.length },
        'UIDVALIDITY changed upstream; local copies re-linked'
    );
    return state;
}
