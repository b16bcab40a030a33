/**
 * A message the store refuses for good (MessageTooComplexError: MIME nested past MAX_MIME_DEPTH,
 * or a shape past V8's limits) is a problem of that one message, not of the run: were it an
 * error, the account's run would fail at it every night and nothing behind it would come home.
 * It stays on the provider, untouched, and a note carrying its headers and the reason is stored
 * in its place, linked to the upstream original like any synced message: the pending download
 * is settled (never fetched again), the user sees the note in the folder where the message
 * would have been, the run report says it (AccountProgress.leftUpstream), and `mailmule status`
 * counts the notes per account (the store marks them, messages.stub = 2).
 */
import crypto from 'node:crypto';
import { MessageTooComplexError, type AnalysedMessage, type Store, type UpstreamRef } from '../store';
import type { Logger } from '../log';
import type { AccountProgress } from './context';
import { buildTooComplexNote } from './stub';

/** The store's reason, in its words ("MIME parts nested 151 levels deep; the limit is 100"). */
function reasonOf(err: MessageTooComplexError): string {
    const cause = err.cause;
    return cause instanceof Error && cause.message ? cause.message : err.message;
}

/** A downloaded message ready to store: itself, or the note that stands in for it (`reason` says why). */
export interface Prepared {
    bytes: Buffer;
    analysed: AnalysedMessage;
    standsIn: boolean;
    reason: string | null;
}

/** Analyses `raw`; when the store refuses it as too complex, the stand-in note instead. Other errors pass through. */
export async function analyseOrStandIn(ctx: { store: Store }, raw: Buffer, ref: UpstreamRef): Promise<Prepared> {
    try {
        return { bytes: raw, analysed: ctx.store.messages.analyse(raw), standsIn: false, reason: null };
    } catch (err) {
        if (!(err instanceof MessageTooComplexError)) throw err;
        return standIn(ctx, raw, ref, err);
    }
}

async function standIn(ctx: { store: Store }, raw: Buffer, ref: UpstreamRef, err: MessageTooComplexError): Promise<Prepared> {
    const reason = reasonOf(err);
    const note = await buildTooComplexNote({
        raw,
        reason,
        account: ref.account,
        folder: ref.folder,
        boundarySeed: crypto.createHash('sha1').update(`${ref.folder}\0${ref.uidValidity}\0${ref.uid}`).digest('hex')
    });
    return { bytes: note, analysed: ctx.store.messages.analyse(note), standsIn: true, reason };
}

/** Once a stand-in note is stored: the run report and the log say that the message stays on the provider. */
export function reportStandIn(ctx: { logger: Logger }, progress: AccountProgress, ref: UpstreamRef, size: number, reason: string): void {
    progress.leftUpstream.push(`${ref.folder} UID ${ref.uid} (${size} bytes): ${reason}; a note stands in for it`);
    ctx.logger.warn({ account: ref.account, folder: ref.folder, uid: ref.uid, size, reason }, 'message too complex to store: left on the provider, a note stands in for it');
}

/**
 * `store(raw, analysed, false)`; when the store refuses the message as too complex (while analysing
 * it or while storing it), `store(note, analysed, true)` with the stand-in note instead, and it is
 * reported in `progress.leftUpstream` and the log. Other errors pass through.
 */
export async function storeOrStandIn<T>(
    ctx: { store: Store; logger: Logger },
    progress: AccountProgress,
    raw: Buffer,
    ref: UpstreamRef,
    store: (raw: Buffer, analysed: AnalysedMessage, standsIn: boolean) => T
): Promise<T> {
    let prepared = await analyseOrStandIn(ctx, raw, ref);
    let stored: T;
    try {
        stored = store(prepared.bytes, prepared.analysed, prepared.standsIn);
    } catch (err) {
        if (!(err instanceof MessageTooComplexError) || prepared.standsIn) throw err;
        prepared = await standIn(ctx, raw, ref, err);
        stored = store(prepared.bytes, prepared.analysed, true);
    }
    if (prepared.reason !== null) reportStandIn(ctx, progress, ref, raw.length, prepared.reason);
    return stored;
}
