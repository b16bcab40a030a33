/**
 * The Pi's up bundle: every queued message that is due, with its envelope, for the relay to
 * send. Writing one changes nothing in the queue: an entry stays queued (or deferred) until the
 * relay's answer to this very attempt comes back in a down bundle (apply.ts), so a bundle that
 * is lost on the way costs nothing but the next export. The attempt number makes the record's
 * identity, (queue id, attempt): the relay sends each identity at most once, however many
 * bundles carry it.
 */
import type { Store } from '../../store';
import { pendingRecipients } from '../../queue';
import { BundleWriter, type WrittenBundle } from '../../bundle';
import type { ResolvedUser } from '../../config';
import { seal, sealingKeyFromText } from '../seal';
import type { PiRelayFiles } from './state';

export interface UpExport extends WrittenBundle {
    seq: number;
    ack: number;
    messages: number;
    /** "queueId:attempt" of the outbound records in it. */
    keys: string[];
}

/** Writes the up bundle to `target` and records its seq; `piId` is this Pi's id at the relay. */
/** The Pi's upstream accounts, sealed to the relay (`sealKey`, uplink.relay.sealKey) for it alone. */
export interface CredentialsForRelay {
    sealKey: string;
    users: readonly ResolvedUser[];
}

export async function exportUpBundle(store: Store, files: PiRelayFiles, piId: string, target: string, credentials: CredentialsForRelay | null, now: number = Date.now()): Promise<UpExport> {
    const state = files.read();
    const seq = state.upSeq + 1;
    const key = files.signingKey();
    const writer = await BundleWriter.create(target, { format: 1, direction: 'up', pi: piId, seq, ack: state.downApplied, createdAt: now }, key.privateKey);
    let messages = 0;
    const keys: string[] = [];
    const due = store.queue.due(now);
    // What the relay has taken already waits for its answer instead of crossing again.
    const dueKeys = new Set(due.map(entry => `${entry.id}:${entry.attempts + 1}`));
    const carried = new Set(state.carried.filter(key => dueKeys.has(key)));
    try {
        if (credentials) {
            const plain = Buffer.from(JSON.stringify({ users: credentials.users.map(user => ({ name: user.name, accounts: user.accounts })) }));
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
    } catch (err) {
        await writer.abort();
        throw err;
    }
    const written = await writer.finish();
    files.write({ ...files.read(), upSeq: seq, carried: [...carried] });
    return { ...written, seq, ack: state.downApplied, messages, keys };
}
