/**
 * What a Pi asks of its relay besides sending mail (docs/relay.md, "Bodies once per village" and
 * "Fetch full"), and how the down bundle names a body the Pi holds already:
 *
 * - `fetchFull`: a stub the user moved into "Fetch full" on the Pi. The relay makes the same move
 *   on the Pi's store here, and the receive pass that follows does what direct mode does
 *   (uplink/fetch-full.ts): it downloads the message whole and puts it back in its folder,
 *   replacing the stub; that new message goes down as any other, and on the Pi it replaces the
 *   stub (pi/apply.ts). Carried in every up bundle while the stub is in the folder: a request for
 *   a message already whole here, or already in "Fetch full" here, changes nothing.
 * - `needBody`: a `messageRef` the Pi could not resolve. The body is forgotten for this Pi and the
 *   message carried whole in the next down bundle (pi-state.ts `bodies`, `wanted`).
 *
 * A message goes down as a `messageRef` when its body was shipped whole in a down bundle the Pi
 * has acknowledged (exchange.ts, buildDown).
 */
import type { RecordMeta } from '../../bundle';
import type { OutboxMessage, Store, UpstreamRef } from '../../store';
import { ensureLocalMailbox, FETCH_FULL_FOLDER } from '../../uplink/folders';
import type { PiStateStore } from './pi-state';
import type { RemapRecord } from './synced-changes';

/**
 * Moves each requested stub into "Fetch full" on the store here, for the receive pass, and
 * records it as wanted whole (pi-state.ts): the down bundle after it is whole carries it,
 * whatever id its row has. Returns how many moved now.
 */
export function queueFetchFull(store: Store, state: PiStateStore, requests: readonly RecordMeta<'fetchFull'>[]): number {
    let moved = 0;
    for (const request of requests) {
        const stub = store.sync.stubLinkedTo(request);
        // Whole here already (fetched before; its message goes down, or went), or gone upstream.
        if (!stub || store.users.get(request.user)?.id !== stub.userId) continue;
        state.want(request, true);
        const folder = ensureLocalMailbox(store, stub.userId, FETCH_FULL_FOLDER);
        if (!folder || folder.id === stub.mailboxId) continue;
        // A move keeps the upstream link and the stub mark, and asks no deletion upstream (store/messages/copy.ts).
        store.messages.move(stub.userId, stub.mailboxId, [stub.uid], FETCH_FULL_FOLDER);
        moved++;
    }
    return moved;
}

/** The Pi no longer holds these bodies: each is forgotten, and its message wanted whole again. */
export function bodiesMissing(state: PiStateStore, requests: readonly RecordMeta<'needBody'>[]): void {
    for (const request of requests) state.bodyMissing(request.sha256, request);
}

/**
 * The messages the Pi wants carried whole that can go now, and the requests they (or their
 * absence: gone here) settle. A stub asked for in "Fetch full" waits until it is whole here. A
 * request made before a UIDVALIDITY reset that this down bundle re-links (`remaps`) finds its
 * message by its new UID.
 */
export function wantedMessages(store: Store, wanted: readonly (UpstreamRef & { whole: boolean })[], remaps: readonly RemapRecord[] = []): { messages: OutboxMessage[]; settled: UpstreamRef[] } {
    const relinked = new Map<string, UpstreamRef>();
    for (const { meta, pairs } of remaps) {
        for (const [oldUid, uid] of pairs) {
            relinked.set(refKey({ account: meta.account, folder: meta.folder, uidValidity: meta.oldUidValidity, uid: oldUid }), {
                account: meta.account,
                folder: meta.folder,
                uidValidity: meta.uidValidity,
                uid
            });
        }
    }
    const out: { messages: OutboxMessage[]; settled: UpstreamRef[] } = { messages: [], settled: [] };
    for (const { whole, ...ref } of wanted) {
        const message = store.relayOutbox.linkedTo(relinked.get(refKey(ref)) ?? ref);
        // Still a stub here (the download failed: the receive pass tries again); a note standing in for it settles it.
        if (message && whole && message.stub) continue;
        out.settled.push(ref);
        if (message) out.messages.push(message);
    }
    return out;
}

function refKey(ref: UpstreamRef): string {
    return JSON.stringify([ref.account, ref.folder, ref.uidValidity, ref.uid]);
}

/** A message's `message` meta (a `messageRef` adds the body's sha256). */
export function messageMeta(message: OutboxMessage): RecordMeta<'message'> {
    return {
        user: message.user,
        account: message.account,
        folder: message.folder,
        uidValidity: message.uidValidity,
        uid: message.uid,
        key: message.key,
        flags: message.flags,
        idate: message.idate,
        localPath: message.mailboxPath,
        stub: message.stub,
        ...(message.standsIn ? { standsIn: true } : {})
    };
}
