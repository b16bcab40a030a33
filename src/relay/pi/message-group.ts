/**
 * A down bundle's `message` records committed in groups (apply.ts), as direct mode commits its
 * downloads (uplink/download-group.ts): one store commit per group of messages of one mailbox
 * instead of one per message, each message's file written and synced on the thread pool while
 * the next record is read and analysed. On a first sync of 300 messages that is a handful of
 * commits (each with its flushes) instead of 300.
 *
 * What this changes for a crash: nothing. The bundle is recorded as applied only after its last
 * group's commit; a crash before that applies it again, and the messages a group committed
 * before are found here already (importUpstream's rows are unique by where the message is
 * upstream), the others stored then. The caller commits the group before any record that is not
 * a plain message, so every other record sees the messages before it committed.
 */
import { MessageTooComplexError, type UpstreamDownload, type UpstreamRef } from '../../store';
import type { AccountProgress } from '../../uplink/context';
import { GROUP_BYTES, GROUP_MESSAGES } from '../../uplink/download-group';
import { analyseOrStandIn, reportStandIn, storeOrStandIn } from '../../uplink/too-complex';
import type { ApplyContext } from './apply';

interface Member {
    download: UpstreamDownload;
    progress: AccountProgress;
    /** The original's size and why a note stands in for it, when one does. */
    standIn: { size: number; reason: string } | null;
}

export class MessageGroup {
    private members: Member[] = [];
    private bytes = 0;
    private mailbox: { userId: number; mailboxId: number } | null = null;

    /** `committed(uid)`: after each member's commit (null: the message was here already). */
    constructor(
        private readonly ctx: ApplyContext,
        private readonly committed: (uid: number | null) => void
    ) {}

    /** Takes a message for a mailbox (its file starts on its way to disk); commits the group first when it is another mailbox's, after when it is full. */
    async add(userId: number, mailboxId: number, raw: Buffer, ref: UpstreamRef, options: UpstreamDownload['options'], progress: AccountProgress): Promise<void> {
        if (this.mailbox && (this.mailbox.userId !== userId || this.mailbox.mailboxId !== mailboxId)) await this.commit();
        this.mailbox = { userId, mailboxId };
        const prepared = await analyseOrStandIn(this.ctx, raw, ref);
        const staged = this.ctx.store.sync.stageUpstream(prepared.bytes, prepared.analysed);
        this.members.push({
            download: { raw: prepared.bytes, analysed: prepared.analysed, ref, options: { ...options, standsIn: prepared.standsIn || options.standsIn }, staged },
            progress,
            standIn: prepared.reason === null ? null : { size: raw.length, reason: prepared.reason }
        });
        this.bytes += prepared.bytes.length;
        if (this.members.length >= GROUP_MESSAGES || this.bytes >= GROUP_BYTES) await this.commit();
    }

    /** Commits what the group holds (nothing: nothing to do). A store error passes through, as applying one message's would. */
    async commit(): Promise<void> {
        const { members, mailbox } = this;
        this.members = [];
        this.bytes = 0;
        this.mailbox = null;
        if (!members.length || !mailbox) return;
        let uids: (number | null)[];
        try {
            uids = await this.ctx.store.sync.importUpstreamBatch(
                mailbox.userId,
                mailbox.mailboxId,
                members.map(member => member.download)
            );
        } catch (err) {
            // One of them the store refuses while storing it: each on its own, a note for that one.
            if (!(err instanceof MessageTooComplexError)) throw err;
            uids = [];
            for (const { download, progress } of members) {
                uids.push(
                    await storeOrStandIn(this.ctx, progress, download.raw, download.ref, (bytes, analysed, standsIn) =>
                        this.ctx.store.sync.importUpstream(mailbox.userId, mailbox.mailboxId, bytes, analysed, download.ref, { ...download.options, standsIn: standsIn || download.options.standsIn })
                    )
                );
            }
        }
        members.forEach((member, i) => {
            if (member.standIn) reportStandIn(this.ctx, member.progress, member.download.ref, member.standIn.size, member.standIn.reason);
            this.committed(uids[i]);
        });
    }
}
