/**
 * "Fetch full" (the last step of a receive pass): a stub the user moved into the folder of that
 * name is downloaded whole and put back, complete, in the folder it came from. A request that
 * does not fit the budget waits in the folder for the next run. One the store refuses whole (too
 * complex) is replaced by a note saying so, in the folder it came from (too-complex.ts).
 */
import type { ImapFlow } from 'imapflow';
import type { ResolvedAccount } from '../config';
import type { AccountProgress, UplinkContext } from './context';
import { ensureLocalMailbox, FETCH_FULL_FOLDER } from './folders';
import { storeErrorCode } from '../store';
import { worstWireCost } from './budget';
import { storeOrStandIn } from './too-complex';

/** Planned beyond the message's size: the FETCH response's own lines. */
const PER_MESSAGE_OVERHEAD = 256;

async function downloadWhole(client: ImapFlow, uid: number): Promise<Buffer | null> {
    const download = await client.download(String(uid), undefined, { uid: true });
    if (!download || !download.content) return null;
    const chunks: Buffer[] = [];
    for await (const chunk of download.content) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
}

/**
 * Stubs of this account in "Fetch full": download them whole and put them back where they came
 * from, the local folder `localPathOf` names for their upstream folder (null: none known, the
 * stub waits).
 */
export async function fetchFullRequests(
    ctx: UplinkContext,
    client: ImapFlow,
    userId: number,
    account: ResolvedAccount,
    localPathOf: (upstreamFolder: string) => string | null,
    progress: AccountProgress
): Promise<void> {
    const fetchFull = ensureLocalMailbox(ctx.store, userId, FETCH_FULL_FOLDER);
    if (!fetchFull) return;
    const stubs = ctx.store.sync.stubsIn(userId, fetchFull.id).filter(stub => stub.ref.account === account.address);
    for (const stub of stubs) {
        const state = ctx.store.sync.getFolder(account.address, stub.ref.folder);
        const target = localPathOf(stub.ref.folder);
        if (!state || state.uidValidity !== stub.ref.uidValidity || !target) continue;
        const lock = await client.getMailboxLock(stub.ref.folder);
        try {
            const fetched = await client.fetchOne(String(stub.ref.uid), { uid: true, size: true }, { uid: true });
            const size = (fetched && fetched.size) || 0;
            if (!ctx.budget.allows(worstWireCost(size) + PER_MESSAGE_OVERHEAD)) {
                progress.waiting.push(`a "Fetch full" request (${size} bytes) waits for the next run: budget`);
                progress.budgetStopped = true;
                return;
            }
            const raw = await downloadWhole(client, stub.ref.uid);
            if (!raw) continue;
            const targetMailbox = ctx.store.mailboxes.get(userId, target);
            if (!targetMailbox) continue;
            try {
                // Too complex to store whole: the stub gives way to a note saying so, and is not asked for again.
                await storeOrStandIn(ctx, progress, raw, stub.ref, (bytes, analysed, standsIn) =>
                    ctx.store.sync.replaceStub(userId, fetchFull.id, stub.uid, targetMailbox.id, bytes, analysed, stub.ref, stub.flags, stub.idate, standsIn)
                );
            } catch (err) {
                // A mailbox went away during the run: the stub stays, and the next run tries again.
                if (storeErrorCode(err) !== 'TRYCREATE') throw err;
                continue;
            }
            progress.messagesReceived++;
            progress.report();
        } finally {
            lock.release();
        }
    }
}
