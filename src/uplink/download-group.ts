/**
 * Downloaded bodies committed in groups (step 3 of a receive pass): one store commit per group
 * of messages instead of one per message, and each message's file written and synced on the
 * thread pool while the next one is still arriving, so the disk's flushes overlap each other and
 * the download instead of queueing behind it one message at a time.
 *
 * What this changes for a cut or a crash: nothing is told upstream about a downloaded message,
 * and its pending row (sync_pending, which the header pass committed together with the folder's
 * last seen UID) leaves in the same commit that stores it. A crash before a group's commit
 * therefore leaves those messages pending, downloaded again by the next run, never twice (their
 * files, written but named by no row, go to lost+found at the next start, as any crash's do). A
 * cut link loses nothing that arrived: the caller commits what the group holds before it passes
 * the error on (`commit` in a finally).
 */
import { MessageTooComplexError, storeErrorCode, type PendingDownload, type UpstreamDownload } from '../store';
import type { AccountProgress, FolderPlan, UplinkContext } from './context';
import { analyseOrStandIn, reportStandIn, storeOrStandIn } from './too-complex';

/** A group is committed once it holds this many messages… */
export const GROUP_MESSAGES = 100;
/** …or this many bytes… */
export const GROUP_BYTES = 2 * 1024 * 1024;
/** …or when its first message has waited this long (a slow link still shows progress). */
export const GROUP_WAIT_MS = 1000;

interface Member {
    item: PendingDownload;
    download: UpstreamDownload;
    /** The original's size and why a note stands in for it, when one does. */
    standIn: { size: number; reason: string } | null;
}

export class DownloadGroup {
    private members: Member[] = [];
    private bytes = 0;
    private firstAt = 0;

    /** `committed(item, uid)`: after each member's commit (uid null: it was here already, or its mailbox is gone). */
    constructor(
        private readonly ctx: UplinkContext,
        private readonly userId: number,
        private readonly plan: FolderPlan,
        private readonly progress: AccountProgress,
        private readonly committed: (item: PendingDownload, uid: number | null) => void
    ) {}

    /** Takes a downloaded message (its file starts on its way to disk); commits the group when it is full. */
    async add(item: PendingDownload, raw: Buffer, stub: boolean): Promise<void> {
        const prepared = await analyseOrStandIn(this.ctx, raw, item);
        const staged = this.ctx.store.sync.stageUpstream(prepared.bytes, prepared.analysed);
        if (!this.members.length) this.firstAt = Date.now();
        this.members.push({
            item,
            download: { raw: prepared.bytes, analysed: prepared.analysed, ref: item, options: { flags: item.flags, idate: item.idate, stub, key: item.key, standsIn: prepared.standsIn }, staged },
            standIn: prepared.reason === null ? null : { size: raw.length, reason: prepared.reason }
        });
        this.bytes += prepared.bytes.length;
        if (this.members.length >= GROUP_MESSAGES || this.bytes >= GROUP_BYTES || Date.now() - this.firstAt >= GROUP_WAIT_MS) await this.commit();
    }

    /** Commits what the group holds (nothing: nothing to do). */
    async commit(): Promise<void> {
        const members = this.members;
        if (!members.length) return;
        this.members = [];
        this.bytes = 0;
        let uids: (number | null)[];
        try {
            uids = await this.ctx.store.sync.importUpstreamBatch(
                this.userId,
                this.plan.mailboxId,
                members.map(member => member.download)
            );
        } catch (err) {
            // The local folder was deleted during the run: the next run creates it again.
            if (storeErrorCode(err) === 'TRYCREATE') uids = members.map(() => null);
            // One of them the store refuses while storing it: each on its own, a note for that one.
            else if (err instanceof MessageTooComplexError) uids = await this.oneByOne(members);
            else throw err;
        }
        members.forEach((member, i) => {
            if (member.standIn && uids[i] !== null) reportStandIn(this.ctx, this.progress, member.item, member.standIn.size, member.standIn.reason);
            this.committed(member.item, uids[i]);
        });
    }

    private async oneByOne(members: Member[]): Promise<(number | null)[]> {
        const uids: (number | null)[] = [];
        for (const member of members) {
            // A note already standing in is reported by commit(); one storeOrStandIn makes now, by itself.
            const { item, download } = member;
            try {
                uids.push(
                    await storeOrStandIn(this.ctx, this.progress, download.raw, item, (bytes, analysed, standsIn) =>
                        this.ctx.store.sync.importUpstream(this.userId, this.plan.mailboxId, bytes, analysed, item, { ...download.options, standsIn: standsIn || download.options.standsIn })
                    )
                );
            } catch (err) {
                if (storeErrorCode(err) !== 'TRYCREATE') throw err;
                uids.push(null);
            }
        }
        return uids;
    }
}
