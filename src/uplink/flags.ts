/**
 * Flags both ways, for one upstream folder (step 2 of a receive pass, after its header pass):
 *
 * - push: local changes to the synced system flags since what we last knew upstream go out as
 *   batched UID STORE, one command per distinct change;
 * - local expunges are deleted upstream only when the account asks for it (deleteUpstream);
 * - pull: upstream changes come back with CHANGEDSINCE (CONDSTORE), or by a full scan at most
 *   once per flagScanInterval when the server has no CONDSTORE.
 *
 * Only the five system flags below travel; keywords stay local. The push runs before the pull
 * and only adds or removes what changed locally, so changes made on each side to different
 * flags of one message are both kept.
 */
import type { ImapFlow, MailboxLockObject } from 'imapflow';
import type { ResolvedAccount } from '../config';
import type { LinkedMessage, Store } from '../store';
import type { FolderPlan, UplinkContext } from './context';

export const SYNCED_FLAGS = ['\\Seen', '\\Flagged', '\\Answered', '\\Deleted', '\\Draft'];

/** The synced flags among `flags`, spelled canonically, sorted, once each. */
export function syncedFlags(flags: Iterable<string>): string[] {
    const set = new Set<string>();
    for (const flag of flags) {
        const match = SYNCED_FLAGS.find(f => f.toLowerCase() === flag.toLowerCase());
        if (match) set.add(match);
    }
    return [...set].sort();
}

/** Equality of two lists from syncedFlags(). */
export function sameFlags(a: string[], b: string[]): boolean {
    return a.length === b.length && a.every((flag, i) => flag === b[i]);
}

/**
 * The flag merge, for a message whose flags changed upstream: upstream's synced flags win,
 * the local keywords (which never travel) stay.
 */
export function mergeUpstreamFlags(localFlags: string[], upstream: string[]): string[] {
    return [...upstream, ...localFlags.filter(flag => !flag.startsWith('\\'))];
}

/**
 * The synced flags a message now has upstream, when they differ from what we last knew
 * (`known`, null when we never knew); null when nothing changed upstream.
 */
export function changedUpstream(known: string[] | null, upstream: Iterable<string>): string[] | null {
    const now = syncedFlags(upstream);
    return known && sameFlags(now, syncedFlags(known)) ? null : now;
}

/** Writes a pulled change locally (the merge above) and remembers it as what upstream has. */
export function applyUpstreamFlags(store: Store, local: LinkedMessage, upstream: string[]): void {
    store.messages.updateFlags(local.userId, local.mailboxId, [local.uid], 'set', mergeUpstreamFlags(local.flags, upstream));
    store.sync.setUpstreamFlags(local.mailboxId, local.uid, upstream);
}

/** One UID STORE pair: the same flags added and removed on every UID of the group. */
export interface FlagPush {
    add: string[];
    remove: string[];
    uids: number[];
}

/**
 * One message's local change to its synced flags against what upstream last had (what to add
 * and remove there); null when there is none, or nothing is known upstream.
 */
export function localFlagChange(message: Pick<LinkedMessage, 'flags' | 'upstreamFlags'>): Pick<FlagPush, 'add' | 'remove'> | null {
    if (!message.upstreamFlags) return null;
    const local = syncedFlags(message.flags);
    const known = syncedFlags(message.upstreamFlags);
    if (sameFlags(local, known)) return null;
    return { add: local.filter(f => !known.includes(f)), remove: known.filter(f => !local.includes(f)) };
}

/** Local changes to push, grouped by change so that a thousand messages marked read cost one command. */
export function pushGroups(linked: Pick<LinkedMessage, 'upstreamUid' | 'flags' | 'upstreamFlags'>[]): FlagPush[] {
    const groups = new Map<string, FlagPush>();
    for (const message of linked) {
        const change = localFlagChange(message);
        if (!change) continue;
        const { add, remove } = change;
        const key = `${add.join(' ')}|${remove.join(' ')}`;
        const group = groups.get(key) ?? { add, remove, uids: [] };
        group.uids.push(message.upstreamUid);
        groups.set(key, group);
    }
    return [...groups.values()];
}

/** What upstream has after a push was applied to flags it had before. */
export function afterPush(known: string[], push: Pick<FlagPush, 'add' | 'remove'>): string[] {
    return syncedFlags([...known.filter(f => !push.remove.includes(f)), ...push.add]);
}

/** Flag changes upstream that came with the SELECT (QRESYNC), for the pull: flags by UID. */
export interface FlagsAtSelect {
    uidValidity: number;
    changedSince: number;
    flags: Map<number, string[]>;
}

/**
 * Selects a folder for steps 1 and 2. Where the server has QRESYNC and the folder's HIGHESTMODSEQ
 * is known, the SELECT itself brings the flag changes since then (RFC 7162 3.2.5), which the
 * pull would otherwise ask for with a FETCH CHANGEDSINCE: a round trip less, the same bytes. Only
 * when no local change waits to be pushed: the push goes before the pull.
 */
export async function selectForSync(ctx: UplinkContext, client: ImapFlow, account: ResolvedAccount, plan: FolderPlan): Promise<{ lock: MailboxLockObject; atSelect: FlagsAtSelect | null }> {
    const state = ctx.store.sync.getFolder(account.address, plan.folder);
    const qresync = client.enabled.has('QRESYNC') && state && state.highestModseq > 0 && !pushGroups(ctx.store.sync.linkedMessages(account.address, plan.folder, state.uidValidity)).length;
    if (!qresync) return { lock: await client.getMailboxLock(plan.folder), atSelect: null };
    const atSelect: FlagsAtSelect = { uidValidity: state.uidValidity, changedSince: state.highestModseq, flags: new Map() };
    // Only this SELECT is in flight: every FETCH now is one of its changes (imapflow's 'flags' event).
    const collect = (event: { uid?: number; flags?: Set<string> }) => {
        if (event.uid && event.flags) atSelect.flags.set(event.uid, [...event.flags]);
    };
    client.on('flags', collect);
    try {
        // getMailboxLock passes its options on to SELECT (imapflow's select command takes these two).
        const qresyncOptions = { uidValidity: BigInt(state.uidValidity), changedSince: BigInt(state.highestModseq) };
        return { lock: await client.getMailboxLock(plan.folder, qresyncOptions), atSelect };
    } finally {
        client.off('flags', collect);
    }
}

/** Step 2 for the folder selected on `client` (by selectForSync: `atSelect`, what its SELECT brought). */
export async function syncFlags(ctx: UplinkContext, client: ImapFlow, account: ResolvedAccount, plan: FolderPlan, atSelect: FlagsAtSelect | null = null): Promise<void> {
    const state = ctx.store.sync.getFolder(account.address, plan.folder);
    const mailbox = client.mailbox;
    if (!state || !mailbox) return;
    const linked = ctx.store.sync.linkedMessages(account.address, plan.folder, state.uidValidity);
    const byUpstreamUid = new Map(linked.map(message => [message.upstreamUid, message]));

    // Push: local changes since what we last knew upstream.
    for (const push of pushGroups(linked)) {
        const set = push.uids.join(',');
        if (push.add.length) await client.messageFlagsAdd(set, push.add, { uid: true });
        if (push.remove.length) await client.messageFlagsRemove(set, push.remove, { uid: true });
        for (const uid of push.uids) {
            const message = byUpstreamUid.get(uid)!;
            const next = afterPush(message.upstreamFlags!, push);
            ctx.store.sync.setUpstreamFlags(message.mailboxId, message.uid, next);
            message.upstreamFlags = next;
        }
    }

    // Local expunges: delete upstream only when the account asks for it.
    const deletions = ctx.store.sync.pendingDeletions(account.address, plan.folder, state.uidValidity);
    if (deletions.length) {
        if (account.deleteUpstream) {
            await client.messageDelete(deletions.join(','), { uid: true });
        }
        ctx.store.sync.clearDeletions(account.address, plan.folder, state.uidValidity, deletions);
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
        // The SELECT brought the changes since the HIGHESTMODSEQ we know (the server took the QRESYNC
        // parameters: imapflow checks its answer), and nothing was pushed since.
        if (atSelect && (mailbox as { qresync?: boolean }).qresync && atSelect.uidValidity === state.uidValidity && atSelect.changedSince === state.highestModseq) {
            for (const [uid, flags] of atSelect.flags) {
                const local = byUpstreamUid.get(uid);
                const upstream = local && changedUpstream(local.upstreamFlags, flags);
                if (local && upstream) applyUpstreamFlags(ctx.store, local, upstream);
            }
            ctx.store.sync.saveFolder({ ...state, highestModseq });
            return;
        }
        changedSince = BigInt(state.highestModseq);
    } else if (now - state.lastFlagScan < ctx.flagScanIntervalMs()) {
        if (condstore) ctx.store.sync.saveFolder({ ...state, highestModseq });
        return;
    }
    if (linked.length && mailbox.exists) {
        const options = changedSince !== undefined ? { uid: true, changedSince } : { uid: true };
        for await (const message of client.fetch('1:*', { uid: true, flags: true }, options)) {
            const local = byUpstreamUid.get(message.uid);
            if (!local) continue;
            const upstream = changedUpstream(local.upstreamFlags, message.flags ?? []);
            if (upstream) applyUpstreamFlags(ctx.store, local, upstream);
        }
    }
    ctx.store.sync.saveFolder({ ...state, highestModseq: condstore ? highestModseq : state.highestModseq, lastFlagScan: changedSince !== undefined ? state.lastFlagScan : now });
}
