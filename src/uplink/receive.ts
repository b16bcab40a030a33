/**
 * Bringing mail home from one upstream account with imapflow, spending as few bytes as we can,
 * in steps, each in its own module:
 *
 * 1. headers.ts: for each folder, what is new since the last run, headers only; a message the
 *    local mailbox already holds is linked, the rest waits in sync_pending.
 * 2. flags.ts: for each folder, flags both ways (and local expunges, with deleteUpstream).
 * 3. bodies.ts: what waits, smallest first across the folders, while the budget allows; large
 *    messages as stubs.
 * 4. fetch-full.ts: stubs the user moved into "Fetch full", downloaded whole.
 *
 * Which upstream folders, and where they land locally: folders.ts. A folder with nothing to do
 * is not selected: it costs one STATUS, or nothing beyond the listing where the server has
 * LIST-STATUS.
 *
 * COMPRESS=DEFLATE is used whenever the server offers it (imapflow's default). Round trips are
 * what a slow link makes expensive, so commands that do not wait on each other go out together
 * (imapflow's `pipelining`, patches/imapflow+…+004, 005): ID with the login, NAMESPACE + ENABLE +
 * COMPRESS, body batches back to back (bodies.ts); and the session ends by closing the connection.
 * A run with nothing new costs three round trips however many folders it syncs.
 */
import type net from 'node:net';
import { ImapFlow, type StatusObject } from 'imapflow';
import type { ResolvedAccount, ResolvedUser } from '../config';
import type { AccountProgress, FolderPlan, UplinkContext } from './context';
import { imapTransport, type WireMeter } from './meter';
import { chooseFolders, ensureLocalMailbox, interpretListing, localFolderFor, settleCollision, type UpstreamFolder } from './folders';
import { syncFolderHeaders } from './headers';
import { pushGroups, selectForSync, syncFlags } from './flags';
import { downloadBodies } from './bodies';
import { fetchFullRequests } from './fetch-full';

/** Logs in to the account's IMAP server over a metered socket; a revoked OAuth2 token is refreshed once. */
export async function connectUpstream(ctx: UplinkContext, account: ResolvedAccount, meter: WireMeter, freshToken = false, early: net.Socket | null = null): Promise<ImapFlow> {
    const endpoint = account.imap;
    const user = endpoint.user ?? account.address;
    const credentials = account.credentials;
    const auth: { user: string; pass?: string; accessToken?: string } = { user };
    if (credentials?.oauth2) auth.accessToken = await ctx.tokens.accessToken(account.address, credentials.oauth2, freshToken);
    else auth.pass = credentials?.password ?? '';
    const client = new ImapFlow({
        host: endpoint.host,
        port: endpoint.port,
        secure: endpoint.tls === 'implicit',
        doSTARTTLS: endpoint.tls === 'starttls' ? true : endpoint.tls === 'none' ? false : undefined,
        auth,
        logger: false,
        qresync: true,
        connectionTimeout: ctx.timeouts.connectMs,
        greetingTimeout: ctx.timeouts.connectMs,
        socketTimeout: ctx.timeouts.socketMs,
        transport: imapTransport(meter, ctx.timeouts.connectMs, early),
        clientInfo: { name: 'mailmule' },
        // One ID, before login, is all we say and ask (patches/imapflow+…+002): a round trip less.
        disableIdAfterLogin: true,
        // Commands that do not wait on each other share a round trip (patches/imapflow+…+004, 005):
        // ID with the login, NAMESPACE + ENABLE + COMPRESS, the next body batch behind the one arriving.
        pipelining: true
    } as unknown as ConstructorParameters<typeof ImapFlow>[0]);
    client.on('error', err => ctx.logger.debug({ account: account.address, err: { message: err.message } }, 'upstream IMAP error'));
    try {
        await client.connect();
    } catch (err) {
        // A cached access token the provider no longer accepts (revoked early): refresh it once.
        if (credentials?.oauth2 && !freshToken && (err as { authenticationFailed?: boolean }).authenticationFailed) {
            client.close();
            return connectUpstream(ctx, account, meter, true);
        }
        throw err;
    }
    return client;
}

/** One account's receive pass: steps 1 to 4 over one IMAP connection (`early`: from openEarly(), to the account's IMAP server). */
export async function receiveAccount(
    ctx: UplinkContext,
    user: ResolvedUser,
    account: ResolvedAccount,
    accountIndex: number,
    meter: WireMeter,
    progress: AccountProgress,
    early: net.Socket | null = null
): Promise<void> {
    const storeUser = ctx.store.users.ensure(user.name);
    progress.step(`connecting to ${account.imap.host}`);
    const client = await connectUpstream(ctx, account, meter, false, early);
    try {
        progress.step('listing folders');
        // A plain LIST: special-use attributes come with it where the server has them, and
        // subscriptions (LSUB, a second listing on servers without LIST-EXTENDED) are not ours.
        // Where the server has LIST-STATUS (RFC 5819), each folder's STATUS comes with the
        // listing (patches/imapflow+…+003): an unchanged folder then costs no command of its own.
        const listed = await client.list({ listOnly: true, statusQuery: statusQuery(client) });
        const listedStatus = new Map(listed.filter(entry => entry.status).map(entry => [entry.path, entry.status!]));
        const listing = interpretListing(listed, client.namespace ? { prefix: client.namespace.prefix ?? '', delimiter: client.namespace.delimiter ?? null } : null);
        const choice = chooseFolders(account.folders, listing);
        for (const problem of choice.problems) {
            progress.errors.push(problem);
            ctx.logger.warn({ account: account.address, user: user.name }, problem);
        }
        const plans = planFolders(ctx, storeUser.id, user, account, accountIndex, choice.folders, progress);

        // 1 and 2: headers and flags, folder by folder; one that has nothing to do is not selected.
        for (const plan of plans) {
            const status = await folderStatus(ctx, client, account, plan, listedStatus.get(plan.folder));
            if (status.unchanged) continue;
            if (status.firstSeenEmpty) {
                // New to us and empty upstream: its state is what STATUS says; nothing to select.
                ctx.store.sync.saveFolder({ account: account.address, folder: plan.folder, ...status.firstSeenEmpty, lastFlagScan: Date.now() });
                ctx.store.sync.setLocalPath(account.address, plan.folder, plan.localPath);
                continue;
            }
            progress.step(`new headers in ${plan.folder}`);
            const { lock, atSelect } = await selectForSync(ctx, client, account, plan);
            try {
                await syncFolderHeaders(ctx, client, storeUser.id, account, plan, progress, status.uidNext);
                ctx.store.sync.setLocalPath(account.address, plan.folder, plan.localPath);
                await syncFlags(ctx, client, account, plan, atSelect);
            } finally {
                lock.release();
            }
        }

        // 3 and 4: bodies, smallest first across the account's folders, then "Fetch full".
        progress.step('downloading');
        await downloadBodies(ctx, client, storeUser.id, account, plans, progress);
        const pinned = ctx.store.sync.localPaths(account.address);
        const byFolder = new Map(plans.map(plan => [plan.folder, plan.localPath]));
        await fetchFullRequests(ctx, client, storeUser.id, account, folder => byFolder.get(folder) ?? pinned.get(folder) ?? null, progress);
    } finally {
        // No LOGOUT: closing the connection ends the session as well (the server has answered
        // every command by now), without a round trip to wait for its BYE. Nothing arrives after
        // the close, so the meter and the provider's count of the run's bytes stay the same.
        client.close();
    }
}

/** What a folder's STATUS asks: UIDNEXT UIDVALIDITY MESSAGES, and HIGHESTMODSEQ with CONDSTORE. */
function statusQuery(client: ImapFlow): { uidNext: true; uidValidity: true; messages: true; highestModseq?: true } {
    return { uidNext: true, uidValidity: true, messages: true, ...(client.enabled.has('CONDSTORE') ? { highestModseq: true as const } : {}) };
}

/**
 * STATUS of a folder before it is selected (statusQuery above; `listed`: what the listing brought
 * already, else a STATUS command): far fewer bytes than SELECT, and the UIDNEXT that servers such
 * as Courier leave out of SELECT. `unchanged`: nothing new, no flag change either way, no deletion
 * to push, and no flag scan due: the folder is skipped. `firstSeenEmpty`: a folder this account
 * never synced that holds no message: its first state, without selecting it.
 */
async function folderStatus(
    ctx: UplinkContext,
    client: ImapFlow,
    account: ResolvedAccount,
    plan: FolderPlan,
    listed?: StatusObject
): Promise<{ unchanged: boolean; uidNext?: number; firstSeenEmpty?: { uidValidity: number; lastUid: number; highestModseq: number } }> {
    const condstore = client.enabled.has('CONDSTORE');
    const answer = listed ?? (await client.status(plan.folder, statusQuery(client)));
    const status: Partial<Exclude<typeof answer, false>> = answer || {};
    const uidNext = Number(status.uidNext ?? 0) || undefined;
    const state = ctx.store.sync.getFolder(account.address, plan.folder);
    const uidValidity = Number(status.uidValidity ?? 0);
    if (!state && uidNext && uidValidity && status.messages !== undefined && Number(status.messages) === 0) {
        return { unchanged: false, uidNext, firstSeenEmpty: { uidValidity, lastUid: uidNext - 1, highestModseq: Number(status.highestModseq ?? 0) } };
    }
    if (!state || !uidNext || Number(status.uidValidity ?? 0) !== state.uidValidity || uidNext > state.lastUid + 1) return { unchanged: false, uidNext };
    const highestModseq = Number(status.highestModseq ?? 0);
    const flagsQuiet = condstore && highestModseq > 0 ? state.highestModseq === highestModseq : Date.now() - state.lastFlagScan < ctx.flagScanIntervalMs();
    if (!flagsQuiet) return { unchanged: false, uidNext };
    if (ctx.store.sync.pendingDeletions(account.address, plan.folder, state.uidValidity).length) return { unchanged: false, uidNext };
    if (pushGroups(ctx.store.sync.linkedMessages(account.address, plan.folder, state.uidValidity)).length) return { unchanged: false, uidNext };
    return { unchanged: true, uidNext };
}

/**
 * The local mailbox of each chosen upstream folder, created when missing. A folder keeps the
 * local path it was given at its first run (sync_folders.local_path) while that mailbox exists;
 * otherwise it gets the mapping of folders.ts, made unique among the account's folders.
 */
function planFolders(ctx: UplinkContext, userId: number, user: ResolvedUser, account: ResolvedAccount, accountIndex: number, folders: UpstreamFolder[], progress: AccountProgress): FolderPlan[] {
    const pinned = ctx.store.sync.localPaths(account.address);
    // Paths kept by the account's folders (configured or not any more) are theirs.
    const claimed = new Set(pinned.values());
    const localPaths = new Map<string, string>();
    for (const folder of folders) {
        const kept = pinned.get(folder.path);
        if (kept && ctx.store.mailboxes.get(userId, kept)) localPaths.set(folder.path, kept);
    }
    for (const folder of folders) {
        if (localPaths.has(folder.path)) continue;
        const kept = pinned.get(folder.path);
        if (kept) claimed.delete(kept);
        const local = settleCollision(localFolderFor(account, accountIndex, folder), path => claimed.has(path));
        claimed.add(local);
        localPaths.set(folder.path, local);
        if (kept !== local) ctx.store.sync.setLocalPath(account.address, folder.path, local);
    }
    const plans: FolderPlan[] = [];
    for (const folder of folders) {
        const localPath = localPaths.get(folder.path)!;
        const mailbox = ensureLocalMailbox(ctx.store, userId, localPath);
        if (!mailbox) {
            progress.errors.push(`cannot create local folder ${localPath}`);
            continue;
        }
        plans.push({ userName: user.name, folder: folder.path, localPath, mailboxId: mailbox.id });
    }
    return plans;
}
