/**
 * Changes to synced messages between a Pi and its store on the relay, both ways, with the
 * direct mode's semantics (uplink/flags.ts, uplink/headers.ts):
 *
 * - up: the Pi's local flag changes and expunges are made on the store here, as an IMAP client
 *   of a direct-mode gateway would make them; the receive pass that follows pushes them upstream
 *   (flags as the change only; a deletion only with deleteUpstream).
 * - down: what changed here since the Pi was told (the `shipped` table of pi-state.ts): flags
 *   upstream changed (the pass's pull), and re-links after a UIDVALIDITY reset upstream (the
 *   pass's remap), as `flags` and `remap` records.
 */
import type { RecordMeta } from '../../bundle';
import type { OutboxLink, Store } from '../../store';
import { afterPush, mergeUpstreamFlags, sameFlags, syncedFlags } from '../../uplink/flags';
import type { PiStateStore, ShippedLink } from './pi-state';

/** The Pi's flag change for one message, as the relay applies it: add and remove (from an older Pi, only its flags: the change against what is known upstream). */
function changeOf(meta: RecordMeta<'flags'>, known: string[]): { add: string[]; remove: string[] } {
    if (meta.add || meta.remove) return { add: syncedFlags(meta.add ?? []), remove: syncedFlags(meta.remove ?? []) };
    const wanted = syncedFlags(meta.flags);
    const had = syncedFlags(known);
    return { add: wanted.filter(flag => !had.includes(flag)), remove: had.filter(flag => !wanted.includes(flag)) };
}

/**
 * Makes the Pi's changes on its store here. Applying them twice changes nothing (a flag change
 * is a set of adds and removes; an expunged message is not found again). What the Pi was told
 * of a changed message moves with it, so its own change does not come back down.
 */
export function applyPiChanges(store: Store, state: PiStateStore, flags: readonly RecordMeta<'flags'>[], deletions: readonly RecordMeta<'delete'>[]): { flags: number; deletions: number } {
    let flagged = 0;
    for (const meta of flags) {
        const local = store.sync.linkedMessage(meta);
        if (!local) continue;
        const change = changeOf(meta, local.upstreamFlags ?? local.flags);
        store.messages.updateFlags(local.userId, local.mailboxId, [local.uid], 'set', mergeUpstreamFlags(local.flags, afterPush(syncedFlags(local.flags), change)));
        const told = state.shippedAt(meta);
        if (told) state.setShipped(told.id, { ...told.link, flags: afterPush(told.link.flags, change) });
        flagged++;
    }
    let deleted = 0;
    for (const meta of deletions) {
        const local = store.sync.linkedMessage(meta);
        if (!local) continue;
        // An expunge as the Pi's IMAP client made it: remembered for deletion upstream (store/messages/expunge.ts).
        store.messages.updateFlags(local.userId, local.mailboxId, [local.uid], 'add', ['\\Deleted']);
        store.messages.expunge(local.userId, local.mailboxId, { uids: [local.uid] });
        deleted++;
    }
    return { flags: flagged, deletions: deleted };
}

/** A remap record and its body. */
export interface RemapRecord {
    meta: RecordMeta<'remap'>;
    pairs: [number, number][];
}

export interface DownChanges {
    remaps: RemapRecord[];
    flags: RecordMeta<'flags'>[];
    /** What the Pi is told of each message by these records (to record once the bundle is built). */
    told: Map<number, ShippedLink>;
    /** Messages to stop following: gone here (the Pi's own expunge), or unlinked by a reset. */
    forget: number[];
    /**
     * Messages up to the cursor the Pi was never told of: SQLite gives the id of a deleted last
     * row to the next one (messages has no AUTOINCREMENT), so a message stored here after the
     * newest one was expunged (the Pi's expunge, a stub replaced) can have an id the cursor has
     * passed. They go down as new messages.
     */
    unshipped: number[];
}

/**
 * What changed in the store here since the Pi was told, message by message: `links` is where
 * each shipped message is now (RelayOutbox.links), `told` what the Pi was told, and
 * `uidValidityNow` the UIDVALIDITY the store here syncs a folder at (null: none).
 */
export function downChanges(told: Map<number, ShippedLink>, links: Map<number, OutboxLink | null>, uidValidityNow: (account: string, folder: string) => number | null, reuseFloor = 0): DownChanges {
    const out: DownChanges = { remaps: [], flags: [], told: new Map(), forget: [], unshipped: [] };
    const remaps = new Map<string, RemapRecord>();
    const reused = new Set<number>();
    for (const [id, was] of told) {
        const link = links.get(id);
        // The id names another message now (the one the Pi was told of is gone): a UID never changes within a UIDVALIDITY, and a re-link never changes the folder.
        if (link && (link.account !== was.account || link.folder !== was.folder || (link.uidValidity === was.uidValidity && link.uid !== was.uid))) {
            out.forget.push(id);
            reused.add(id);
            continue;
        }
        let now = was;
        if (!link || link.account !== was.account || link.folder !== was.folder || link.uidValidity !== was.uidValidity) {
            if (link === undefined) {
                out.forget.push(id);
                continue;
            }
            // The folder's UIDVALIDITY changed upstream: one remap of the old generation.
            const key = JSON.stringify([was.user, was.account, was.folder, was.uidValidity]);
            let remap = remaps.get(key);
            if (!remap) {
                const current = uidValidityNow(was.account, was.folder);
                if (current === null || current === was.uidValidity) {
                    out.forget.push(id);
                    continue;
                }
                remap = { meta: { user: was.user, account: was.account, folder: was.folder, oldUidValidity: was.uidValidity, uidValidity: current }, pairs: [] };
                remaps.set(key, remap);
            }
            if (!link || link.account !== was.account || link.folder !== was.folder || link.uidValidity !== remap.meta.uidValidity) {
                out.forget.push(id);
                continue;
            }
            remap.pairs.push([was.uid, link.uid]);
            now = { ...was, uidValidity: link.uidValidity, uid: link.uid };
            out.told.set(id, now);
        }
        const upstream = syncedFlags(link.upstreamFlags);
        if (!sameFlags(upstream, syncedFlags(now.flags))) {
            out.flags.push({ user: now.user, account: now.account, folder: now.folder, uidValidity: now.uidValidity, uid: now.uid, flags: upstream });
            out.told.set(id, { ...now, flags: upstream });
        }
    }
    out.remaps = [...remaps.values()];
    for (const [id, link] of links) {
        if (link && id > reuseFloor && (reused.has(id) || !told.has(id))) out.unshipped.push(id);
    }
    return out;
}

/** A remap's (old UID, new UID) pairs as its record's body. */
export function remapBody(pairs: readonly [number, number][]): Buffer {
    const body = Buffer.alloc(pairs.length * 8);
    pairs.forEach(([oldUid, newUid], i) => {
        body.writeUInt32BE(oldUid, i * 8);
        body.writeUInt32BE(newUid, i * 8 + 4);
    });
    return body;
}
