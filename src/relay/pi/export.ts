/**
 * The Pi's up bundle: every queued message that is due, with its envelope, for the relay to
 * send. Writing one changes nothing in the queue: an entry stays queued (or deferred) until the
 * relay's answer to this very attempt comes back in a down bundle (apply.ts), so a bundle that
 * is lost on the way costs nothing but the next export. The attempt number makes the record's
 * identity, (queue id, attempt): the relay sends each identity at most once, however many
 * bundles carry it.
 *
 * It also carries the local changes to synced messages, as direct mode's flag pass pushes them
 * (uplink/flags.ts): each message whose synced flags differ from what upstream last had, as
 * the change to make there (`flags`: add, remove), and each synced message expunged here
 * (`delete`; the relay deletes it upstream only when the account says deleteUpstream). Once the
 * bundle is written they count as pushed, as after direct mode's UID STORE: what upstream has
 * is recorded as changed, the deletion forgotten. Until the relay has processed that bundle
 * (state.inFlight) every later up bundle carries them again, with the seq that first carried
 * them (`upSeq`): a bundle lost on the way (a USB stick) loses nothing, and the relay makes each
 * change once.
 *
 * And what the Pi asks of the relay: each stub in a user's "Fetch full" folder (`fetchFull`,
 * carried while it is there: the relay fetches it once and the whole message replaces the stub
 * when it comes down), and each body a `messageRef` named that the Pi no longer held
 * (`needBody`, carried as the changes are, until the relay has processed it).
 */
import type { StubRequest, Store } from '../../store';
import { pendingRecipients } from '../../queue';
import { BundleWriter, type RecordMeta, type WrittenBundle } from '../../bundle';
import type { ResolvedUser } from '../../config';
import { afterPush, localFlagChange, syncedFlags } from '../../uplink/flags';
import { FETCH_FULL_FOLDER } from '../../uplink/folders';
import { seal, sealingKeyFromText } from '../seal';
import type { PiRelayFiles, PiRelayState } from './state';

export interface UpExport extends WrittenBundle {
    seq: number;
    ack: number;
    messages: number;
    /** Flag changes and deletions of synced messages in it. */
    flagChanges: number;
    deletions: number;
    /** Stubs asked for whole ("Fetch full"), and bodies asked for again (needBody). */
    fetchFull: number;
    needBodies: number;
    /** "queueId:attempt" of the outbound records in it. */
    keys: string[];
}

/** Writes the up bundle to `target` and records its seq; `piId` is this Pi's id at the relay. */
/** The Pi's upstream accounts, sealed to the relay (`sealKey`, uplink.relay.sealKey) for it alone. */
export interface CredentialsForRelay {
    sealKey: string;
    users: readonly ResolvedUser[];
    /** uplink.relay.slimHeaders: the relay slims the mail it brings down (null: it does not). */
    slimHeaders?: { keepReceived: number } | null;
}

export async function exportUpBundle(store: Store, files: PiRelayFiles, piId: string, target: string, credentials: CredentialsForRelay | null, now: number = Date.now()): Promise<UpExport> {
    const state = files.read();
    const seq = state.upSeq + 1;
    const key = files.signingKey();
    let messages = 0;
    const keys: string[] = [];
    const due = store.queue.due(now);
    // What the relay has taken already waits for its answer instead of crossing again.
    const dueKeys = new Set(due.map(entry => `${entry.id}:${entry.attempts + 1}`));
    const carried = new Set(state.carried.filter(key => dueKeys.has(key)));
    const configured = new Set((credentials?.users ?? []).flatMap(user => user.accounts.map(account => account.address.toLowerCase())));
    const changes = store.sync.linkedWithLocalChanges().filter(message => configured.has(message.ref.account.toLowerCase()) && localFlagChange(message));
    const deletions = store.sync.allPendingDeletions().filter(ref => configured.has(ref.account.toLowerCase()));
    // The records' bytes before compression, about: the messages and a few hundred bytes a record.
    const records = changes.length + deletions.length + state.inFlight.length + state.missingBodies.length;
    const expectedBytes = 64 * 1024 + due.reduce((sum, entry) => sum + entry.size, 0) + 512 * records;
    const writer = await BundleWriter.create(target, { format: 1, direction: 'up', pi: piId, seq, ack: state.downApplied, createdAt: now }, key.privateKey, { expectedBytes });
    const inFlight: PiRelayState['inFlight'] = [];
    let needBodies = 0;
    let fetchFull = 0;
    try {
        if (credentials) {
            // `applies`: the down records this Pi applies beyond those every Pi does, so a newer relay sends them only to a Pi that reads them.
            const plain = Buffer.from(
                JSON.stringify({
                    users: credentials.users.map(user => ({ name: user.name, accounts: user.accounts })),
                    slimHeaders: credentials.slimHeaders ?? null,
                    applies: ['bodyRef']
                })
            );
            const sealed = seal(plain, sealingKeyFromText(credentials.sealKey), piId, seq);
            await writer.add('credentials', sealed.meta, sealed.body);
        }
        for (const entry of due) {
            const recipients = pendingRecipients(entry);
            const key = `${entry.id}:${entry.attempts + 1}`;
            if (!recipients.length || carried.has(key)) continue;
            keys.push(key);
            await writer.add(
                'outbound',
                { queueId: entry.id, attempt: entry.attempts + 1, user: entry.user, account: entry.account, mailFrom: entry.mailFrom, recipients },
                { stream: store.queue.messageStream(entry), length: entry.size }
            );
            messages++;
        }
        // The local changes to synced messages, for the accounts of configured users.
        const userOf = new Map((credentials?.users ?? []).flatMap(user => user.accounts.map(account => [account.address.toLowerCase(), user.name] as const)));
        // Those of earlier bundles the relay may not have had first, in the order they were made.
        for (const earlier of state.inFlight) {
            if (earlier.type === 'flags') await writer.add('flags', earlier.meta as RecordMeta<'flags'>);
            else if (earlier.type === 'needBody') await writer.add('needBody', earlier.meta as RecordMeta<'needBody'>);
            else await writer.add('delete', earlier.meta as RecordMeta<'delete'>);
        }
        for (const message of changes) {
            const change = localFlagChange(message)!;
            const user = userOf.get(message.ref.account.toLowerCase())!;
            const meta: RecordMeta<'flags'> = { user, ...message.ref, flags: syncedFlags(message.flags), add: change.add, remove: change.remove, upSeq: seq };
            await writer.add('flags', meta);
            inFlight.push({ seq, type: 'flags', meta });
        }
        for (const ref of deletions) {
            const meta: RecordMeta<'delete'> = { user: userOf.get(ref.account.toLowerCase())!, ...ref, upSeq: seq };
            await writer.add('delete', meta);
            inFlight.push({ seq, type: 'delete', meta });
        }
        // A body a messageRef or bodyRef named and this Pi no longer held; one that came whole since is not asked for.
        for (const missing of state.missingBodies as RecordMeta<'needBody'>[]) {
            if (store.sync.linkedMessage(missing)) continue;
            const meta: RecordMeta<'needBody'> = { ...missing, upSeq: seq };
            await writer.add('needBody', meta);
            inFlight.push({ seq, type: 'needBody', meta });
            needBodies++;
        }
        for (const user of credentials?.users ?? []) {
            for (const stub of fetchFullRequests(store, user)) {
                await writer.add('fetchFull', { user: user.name, ...stub.ref });
                fetchFull++;
            }
        }
    } catch (err) {
        await writer.abort();
        throw err;
    }
    const written = await writer.finish();
    files.write({ ...files.read(), upSeq: seq, carried: [...carried], inFlight: [...state.inFlight, ...inFlight], missingBodies: [] });
    // Pushed, as far as this Pi is concerned: the bundle carries them until the relay takes it.
    for (const message of changes) store.sync.setUpstreamFlags(message.mailboxId, message.uid, afterPush(message.upstreamFlags!, localFlagChange(message)!));
    for (const ref of deletions) store.sync.clearDeletions(ref.account, ref.folder, ref.uidValidity, [ref.uid]);
    return { ...written, seq, ack: state.downApplied, messages, flagChanges: changes.length, deletions: deletions.length, fetchFull, needBodies, keys };
}

/** The user's stubs in "Fetch full" of the accounts configured for them. */
function fetchFullRequests(store: Store, user: Pick<ResolvedUser, 'name' | 'accounts'>): StubRequest[] {
    const userId = store.users.get(user.name)?.id;
    const folder = userId === undefined ? null : store.mailboxes.get(userId, FETCH_FULL_FOLDER);
    if (userId === undefined || !folder) return [];
    const accounts = new Set(user.accounts.map(account => account.address.toLowerCase()));
    return store.sync.stubsIn(userId, folder.id).filter(stub => accounts.has(stub.ref.account.toLowerCase()));
}
