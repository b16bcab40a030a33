/**
 * Applies a down bundle on the Pi, with the direct mode's guarantees:
 *
 * - Nothing of it is used before the whole file checks out (checksum, the relay's signature,
 *   every record well-formed, addressed to this Pi).
 * - Each record is its own commit, through the paths direct mode uses, but for new messages,
 *   committed in groups of one mailbox's as direct mode does (message-group.ts): a message through
 *   store.sync.importUpstream(Batch) (a second copy of the same upstream message is refused by its
 *   (account, folder, UIDVALIDITY, UID)); a delivery through the queue's own QueueDelivery, as the
 *   answer to the one attempt it names, counted in the same commit (an answer applied already no
 *   longer names the entry's next attempt, and is passed over).
 * - A `messageRef` is a `message` whose body the Pi holds already (store.sync.importUpstreamHeld,
 *   idempotent as importUpstream). A body no longer held is not lost: the record is passed over,
 *   kept in the state (missingBodies), and the next up bundle asks for the message whole (needBody).
 * - A `bodyRef` is a `message` whose body the Pi holds in another message file (the same post
 *   under other header lines): rebuilt as its header bytes and that body, checked against the
 *   length and SHA-256 the record states, and stored as a `message` is. A source no longer held
 *   (or one that does not rebuild the stated bytes) goes the way of a missing `messageRef` body.
 * - A whole `message` for an upstream message the Pi holds as a stub is what the user asked for
 *   with "Fetch full": it replaces the stub as in direct mode (store.sync.replaceStub).
 * - A `flags` record is what upstream now has: applied as direct mode's pull applies it
 *   (uplink/flags.ts), on top of a local change not yet pushed (as direct mode pushes before
 *   it pulls); again, it finds nothing changed. A `remap` (UIDVALIDITY reset upstream) re-links
 *   as direct mode does (store.sync.remap); again, there is nothing of the old generation left.
 * - Only then is the bundle's seq recorded as applied (and acknowledged in the next up bundle).
 *   A crash before that applies the bundle again: nothing twice, nothing lost.
 */
import crypto from 'node:crypto';
import type { ResolvedUser } from '../../config';
import type { Logger } from '../../log';
import { pendingRecipients, type QueueDelivery } from '../../queue';
import type { LinkedMessage, Store, UpstreamRef } from '../../store';
import { BundleError, BundleReader, publicKeyFromText, verifyBundle, type BundleRecord, type RecordMeta } from '../../bundle';
import { ensureLocalMailbox, FETCH_FULL_FOLDER } from '../../uplink/folders';
import { afterPush, applyUpstreamFlags, changedUpstream, localFlagChange, mergeUpstreamFlags, syncedFlags } from '../../uplink/flags';
import { storeOrStandIn } from '../../uplink/too-complex';
import type { AccountProgress } from '../../uplink/context';
import type { PiRelayFiles } from './state';
import { MessageGroup } from './message-group';

export interface ApplyContext {
    store: Store;
    logger: Logger;
    users: readonly ResolvedUser[];
    queue: QueueDelivery;
}

export interface DownApplyReport {
    seq: number;
    /** The bundle was applied before: nothing was done. */
    alreadyApplied: boolean;
    /** Messages stored now. */
    messages: number;
    /** Messages that were here already (applied before, or linked to a local copy). */
    messagesHere: number;
    /** Of `messages`, those stored from a body held here already (messageRef). */
    messagesByRef: number;
    /** Of `messages`, those rebuilt from their header bytes and a body held here in another message (bodyRef). */
    messagesByBodyRef: number;
    /** messageRef records whose body is no longer here: asked for whole in the next up bundle. */
    missingBodies: RecordMeta<'needBody'>[];
    /** Stubs replaced by the whole message ("Fetch full"). */
    fetchedFull: number;
    deliveries: number;
    /** Answers to attempts already settled. */
    deliveriesPassedOver: number;
    /** Upstream flag changes applied here. */
    flagChanges: number;
    /** Folders re-linked after a UIDVALIDITY reset upstream. */
    remaps: number;
    notes: string[];
}

/** A progress sink for storeOrStandIn: its notes go to the report. */
function progressFor(report: DownApplyReport, account: string, user: string): AccountProgress {
    return {
        account,
        user,
        messagesSent: 0,
        messagesReceived: 0,
        bytesSent: 0,
        bytesReceived: 0,
        errors: report.notes,
        waiting: [],
        budgetStopped: false,
        leftUpstream: report.notes,
        report: () => undefined,
        step: () => undefined
    };
}

/**
 * Verifies and applies the down bundle in `file`; `relay` is uplink.relay (this Pi's id, the
 * relay's key). Throws a BundleError when the file is refused (nothing applied), and the store's
 * error when a record cannot be committed (what was committed before it stays; the bundle is not
 * recorded as applied, so applying it again resumes).
 */
export async function applyDownBundle(ctx: ApplyContext, files: PiRelayFiles, relay: { id: string; key: string }, file: string): Promise<DownApplyReport> {
    const signer = publicKeyFromText(relay.key);
    const { header } = await verifyBundle(file, { signer });
    if (header.direction !== 'down') throw new BundleError('MALFORMED', `an ${header.direction} bundle: the Pi imports down bundles`);
    if (header.pi !== relay.id) throw new BundleError('MALFORMED', `the bundle is for Pi "${header.pi}"; this Pi is "${relay.id}"`);
    const report: DownApplyReport = {
        seq: header.seq,
        alreadyApplied: false,
        messages: 0,
        messagesHere: 0,
        messagesByRef: 0,
        messagesByBodyRef: 0,
        missingBodies: [],
        fetchedFull: 0,
        deliveries: 0,
        deliveriesPassedOver: 0,
        flagChanges: 0,
        remaps: 0,
        notes: []
    };
    if (header.seq <= files.read().downApplied) return { ...report, alreadyApplied: true };

    const reader = await BundleReader.open(file, { signer });
    const group = new MessageGroup(ctx, uid => (uid === null ? report.messagesHere++ : report.messages++));
    for await (const record of reader.records()) {
        // Every record but a plain message sees the messages before it committed.
        if (record.type !== 'message') await group.commit();
        await applyRecord(ctx, record, report, group);
    }
    await group.commit();
    const state = files.read();
    // The relay had processed up bundles through header.ack: their changes need not be carried again.
    const missing = new Map(state.missingBodies.map(meta => [refKey(meta as RecordMeta<'needBody'>), meta]));
    for (const meta of report.missingBodies) missing.set(refKey(meta), meta);
    files.write({
        ...state,
        downApplied: Math.max(state.downApplied, header.seq),
        inFlight: state.inFlight.filter(change => change.seq > header.ack),
        missingBodies: [...missing.values()]
    });
    ctx.logger.info({ seq: header.seq, messages: report.messages, deliveries: report.deliveries }, 'relay bundle applied');
    return report;
}

async function applyRecord(ctx: ApplyContext, record: BundleRecord, report: DownApplyReport, group: MessageGroup): Promise<void> {
    switch (record.type) {
        case 'message':
            return applyMessage(ctx, record.meta, record.body, report, group);
        case 'messageRef':
            return applyMessageRef(ctx, record.meta, report);
        case 'bodyRef':
            return applyBodyRef(ctx, record.meta, record.body, report);
        case 'delivery':
            return applyDelivery(ctx, record.meta, report);
        case 'flags':
            return applyFlags(ctx, record.meta, report);
        case 'remap':
            return applyRemap(ctx, record.meta, record.body, report);
        default:
            // delete comes with a later slice of relay mode: refusing it
            // keeps the bundle unapplied (and unacknowledged) rather than dropping it.
            throw new BundleError('MALFORMED', `this mailmule cannot apply ${record.type} records yet; upgrade it`);
    }
}

function userFor(ctx: ApplyContext, name: string, account: string): ResolvedUser {
    const user = ctx.users.find(candidate => candidate.name.toLowerCase() === name.toLowerCase());
    if (!user) throw new BundleError('MALFORMED', `mail for user "${name}", who is not configured here`);
    if (!user.accounts.some(candidate => candidate.address.toLowerCase() === account.toLowerCase())) {
        throw new BundleError('MALFORMED', `mail for account ${account}, which is not one of ${user.name}'s`);
    }
    return user;
}

/** A message brought home; with `group`, a new one is committed with the group (message-group.ts), else by itself. */
async function applyMessage(ctx: ApplyContext, meta: RecordMeta<'message'>, raw: Buffer, report: DownApplyReport, group: MessageGroup | null = null): Promise<void> {
    const user = userFor(ctx, meta.user, meta.account);
    const userId = ctx.store.users.ensure(user.name).id;
    const mailbox = ensureLocalMailbox(ctx.store, userId, meta.localPath);
    if (!mailbox) throw new BundleError('MALFORMED', `"${meta.localPath}" cannot be a mailbox here`);
    const ref: UpstreamRef = { account: meta.account, folder: meta.folder, uidValidity: meta.uidValidity, uid: meta.uid };
    if (meta.afterStub) {
        await group?.commit();
        // The whole message after its header stub (headers first): it takes the stub's place,
        // keeping the flags set here; a stub no longer here was replaced before or expunged.
        const stub = ctx.store.sync.linkedStub(ref);
        if (!stub) {
            report.messagesHere++;
            return;
        }
        await storeOrStandIn({ store: ctx.store, logger: ctx.logger }, progressFor(report, meta.account, user.name), raw, ref, (bytes, analysed, standsIn) =>
            ctx.store.sync.replaceStub(userId, stub.mailboxId, stub.uid, stub.mailboxId, bytes, analysed, ref, stub.flags, stub.idate, standsIn, stub.upstreamFlags ?? stub.flags)
        );
        report.messages++;
        return;
    }
    if (!meta.stub && ctx.store.sync.stubLinkedTo(ref)) {
        await group?.commit();
        if (await replacedStub(ctx, { id: userId, name: user.name }, ref, meta, raw, report)) return;
    }
    if (group) {
        const options = { flags: meta.flags, idate: meta.idate, stub: meta.stub, key: meta.key, standsIn: meta.standsIn === true };
        await group.add(userId, mailbox.id, raw, ref, options, progressFor(report, meta.account, user.name));
        return;
    }
    const uid = await storeOrStandIn({ store: ctx.store, logger: ctx.logger }, progressFor(report, meta.account, user.name), raw, ref, (bytes, analysed, standsIn) =>
        ctx.store.sync.importUpstream(userId, mailbox.id, bytes, analysed, ref, { flags: meta.flags, idate: meta.idate, stub: meta.stub, key: meta.key, standsIn: standsIn || meta.standsIn === true })
    );
    if (uid === null) report.messagesHere++;
    else report.messages++;
}

/**
 * The whole of a message held here as a stub (the user moved it into "Fetch full"), or the note
 * standing in for it: it replaces the stub as direct mode's fetch-full.ts does, in the message's
 * folder when the stub is in "Fetch full", else where the stub is now. False when no stub is
 * linked to `ref`.
 */
async function replacedStub(
    ctx: ApplyContext,
    user: { id: number; name: string },
    ref: UpstreamRef,
    meta: Pick<RecordMeta<'message'>, 'localPath' | 'standsIn'>,
    raw: Buffer,
    report: DownApplyReport
): Promise<boolean> {
    const localPath = meta.localPath;
    const stub = ctx.store.sync.stubLinkedTo(ref);
    if (!stub || stub.userId !== user.id) return false;
    const fetchFull = ctx.store.mailboxes.get(user.id, FETCH_FULL_FOLDER);
    const target = fetchFull?.id === stub.mailboxId ? ensureLocalMailbox(ctx.store, user.id, localPath) : { id: stub.mailboxId };
    if (!target) throw new BundleError('MALFORMED', `"${localPath}" cannot be a mailbox here`);
    await storeOrStandIn({ store: ctx.store, logger: ctx.logger }, progressFor(report, ref.account, user.name), raw, ref, (bytes, analysed, standsIn) =>
        ctx.store.sync.replaceStub(user.id, stub.mailboxId, stub.uid, target.id, bytes, analysed, ref, stub.flags, stub.idate, standsIn || meta.standsIn === true)
    );
    report.fetchedFull++;
    return true;
}

/** A message whose body the Pi holds already; one it no longer holds is asked for whole in the next up bundle. */
async function applyMessageRef(ctx: ApplyContext, meta: RecordMeta<'messageRef'>, report: DownApplyReport): Promise<void> {
    const user = userFor(ctx, meta.user, meta.account);
    const userId = ctx.store.users.ensure(user.name).id;
    const mailbox = ensureLocalMailbox(ctx.store, userId, meta.localPath);
    if (!mailbox) throw new BundleError('MALFORMED', `"${meta.localPath}" cannot be a mailbox here`);
    const ref: UpstreamRef = { account: meta.account, folder: meta.folder, uidValidity: meta.uidValidity, uid: meta.uid };
    const missing = () => report.missingBodies.push({ user: meta.user, ...ref, sha256: meta.sha256 });
    // The whole of a stub held here (another user had fetched the same message in full): it replaces the stub.
    if (!meta.stub && ctx.store.sync.stubLinkedTo(ref)) {
        const raw = heldBytes(ctx.store, meta.sha256);
        if (!raw) missing();
        else await replacedStub(ctx, { id: userId, name: user.name }, ref, meta, raw, report);
        return;
    }
    const uid = ctx.store.sync.importUpstreamHeld(userId, mailbox.id, meta.sha256, ref, { flags: meta.flags, idate: meta.idate, stub: meta.stub, key: meta.key, standsIn: meta.standsIn });
    if (uid === 'missing') {
        missing();
    } else if (uid === null) {
        report.messagesHere++;
    } else {
        report.messages++;
        report.messagesByRef++;
    }
}

/**
 * A message whose body the Pi holds in another message file: rebuilt from `header` and that
 * body, and stored as a `message` (importUpstream, idempotent by where it is upstream). A source
 * not held here, or a rebuild that is not the message the record states, is asked for whole.
 */
async function applyBodyRef(ctx: ApplyContext, meta: RecordMeta<'bodyRef'>, header: Buffer, report: DownApplyReport): Promise<void> {
    const { sha256, size, source, ...messageFields } = meta;
    userFor(ctx, meta.user, meta.account);
    const ref: UpstreamRef = { account: meta.account, folder: meta.folder, uidValidity: meta.uidValidity, uid: meta.uid };
    const held = heldBytes(ctx.store, source.sha256);
    const raw = held && held.length >= source.offset + source.length ? Buffer.concat([header, held.subarray(source.offset, source.offset + source.length)]) : null;
    if (!raw || raw.length !== size || crypto.createHash('sha256').update(raw).digest('hex') !== sha256) {
        if (raw) report.notes.push(`${meta.account} ${meta.folder} UID ${meta.uid}: the body referred to did not rebuild the message; asked for whole`);
        report.missingBodies.push({ user: meta.user, ...ref, sha256: source.sha256 });
        return;
    }
    const stored = report.messages + report.fetchedFull;
    await applyMessage(ctx, messageFields, raw, report);
    if (report.messages + report.fetchedFull > stored) report.messagesByBodyRef++;
}

/** The bytes of the message file with this SHA-256, or null when there is none here. */
function heldBytes(store: Store, hash: string): Buffer | null {
    try {
        return store.messages.readRaw(hash);
    } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw err;
    }
}

/** An upstream message's identity, as a map key. */
export function refKey(ref: UpstreamRef): string {
    return JSON.stringify([ref.account, ref.folder, ref.uidValidity, ref.uid]);
}

async function applyDelivery(ctx: ApplyContext, meta: RecordMeta<'delivery'>, report: DownApplyReport): Promise<void> {
    const entry = ctx.store.queue.get(meta.queueId);
    // Settled already (this answer applied before, or the entry dropped, sent or given up on since).
    if (!entry || entry.attempts + 1 !== meta.attempt || (entry.state !== 'queued' && entry.state !== 'deferred')) {
        report.deliveriesPassedOver++;
        return;
    }
    const answer = meta.answer;
    if (answer.kind === 'connection') {
        await ctx.queue.connectionFailed([entry], { kind: answer.failure, text: answer.text }, answer.endpoint);
    } else {
        const outcome = await ctx.queue.answered(entry, pendingRecipients(entry), answer, Date.now(), { countAttempt: true });
        report.notes.push(...outcome.notes);
    }
    report.deliveries++;
}

/**
 * What upstream now has as a message's synced flags: direct mode's pull (applyUpstreamFlags).
 * A local change made since the up bundle went (not pushed yet) stays on top of it, as it would
 * in direct mode, which pushes before it pulls; the next up bundle pushes it.
 */
function applyFlags(ctx: ApplyContext, meta: RecordMeta<'flags'>, report: DownApplyReport): void {
    userFor(ctx, meta.user, meta.account);
    const local = ctx.store.sync.linkedMessage(meta);
    if (!local) return;
    const upstream = changedUpstream(local.upstreamFlags, meta.flags);
    if (!upstream) return;
    if (localFlagChange(local)) {
        ctx.store.messages.updateFlags(local.userId, local.mailboxId, [local.uid], 'set', flagsAfterPull(local, upstream));
        ctx.store.sync.setUpstreamFlags(local.mailboxId, local.uid, upstream);
    } else {
        applyUpstreamFlags(ctx.store, local, upstream);
    }
    report.flagChanges++;
}

/**
 * A message's local flags once upstream's synced flags `upstream` are pulled: upstream's, with
 * the local change not pushed yet (against what was known upstream) on top, and the local
 * keywords; what direct mode ends with by pushing that change before it pulls.
 */
export function flagsAfterPull(local: Pick<LinkedMessage, 'flags' | 'upstreamFlags'>, upstream: string[]): string[] {
    const pending = localFlagChange(local);
    return mergeUpstreamFlags(local.flags, pending ? afterPush(upstream, pending) : syncedFlags(upstream));
}

/** A folder's UIDVALIDITY reset upstream: the re-link the relay made, made here (store.sync.remap, as direct mode). */
function applyRemap(ctx: ApplyContext, meta: RecordMeta<'remap'>, body: Buffer, report: DownApplyReport): void {
    userFor(ctx, meta.user, meta.account);
    if (body.length % 8 !== 0) throw new BundleError('MALFORMED', `remap of ${meta.folder}: ${body.length} bytes of UID pairs`);
    const matches: { oldUid: number; newUid: number }[] = [];
    for (let offset = 0; offset < body.length; offset += 8) matches.push({ oldUid: body.readUInt32BE(offset), newUid: body.readUInt32BE(offset + 4) });
    const moved = ctx.store.sync.remap(meta.account, meta.folder, meta.oldUidValidity, meta.uidValidity, matches);
    if (moved)
        ctx.logger.info(
            { account: meta.account, folder: meta.folder, oldUidValidity: meta.oldUidValidity, uidValidity: meta.uidValidity, relinked: moved },
            'UIDVALIDITY changed upstream; local copies re-linked'
        );
    report.remaps++;
}
