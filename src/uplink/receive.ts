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
 * COMPRESS=DEFLATE is used whenever the server offers it (imapflow's default).
 */
import { ImapFlow } from 'imapflow';
import type { ResolvedAccount, ResolvedUser } from '../config';
import type { AccountProgress, FolderPlan, UplinkContext } from './context';
import { imapTransport, type WireMeter } from './meter';
import { ensureLocalMailbox, localFolderFor } from './folders';
import { syncFolderHeaders } from './headers';
import { syncFlags } from './flags';
import { downloadBodies } from './bodies';
import { fetchFullRequests } from './fetch-full';

/** Logs in to the account's IMAP server over a metered socket; a revoked OAuth2 token is refreshed once. */
export async function connectUpstream(ctx: UplinkContext, account: ResolvedAccount, meter: WireMeter, freshToken = false): Promise<ImapFlow> {
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
        transport: imapTransport(meter, ctx.timeouts.connectMs),
        clientInfo: { name: 'mailmule' }
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

/** One account's receive pass: steps 1 to 4 over one IMAP connection. */
export async function receiveAccount(ctx: UplinkContext, user: ResolvedUser, account: ResolvedAccount, accountIndex: number, meter: WireMeter, progress: AccountProgress): Promise<void> {
    const storeUser = ctx.store.users.ensure(user.name);
    progress.step(`connecting to ${account.imap.host}`);
    const client = await connectUpstream(ctx, account, meter);
    try {
        progress.step('listing folders');
        const listing = await client.list();
        const specialUse = new Map(listing.map(entry => [entry.path, entry.specialUse ?? null]));
        const plans = planFolders(ctx, storeUser.id, user, account, accountIndex, specialUse, progress);

        // 1 and 2: headers and flags, folder by folder.
        for (const plan of plans) {
            if (!specialUse.has(plan.folder)) {
                progress.errors.push(`upstream folder ${plan.folder} does not exist`);
                continue;
            }
            progress.step(`new headers in ${plan.folder}`);
            const lock = await client.getMailboxLock(plan.folder);
            try {
                await syncFolderHeaders(ctx, client, storeUser.id, account, plan, progress);
                await syncFlags(ctx, client, account, plan);
            } finally {
                lock.release();
            }
        }

        // 3 and 4: bodies, smallest first across the account's folders, then "Fetch full".
        progress.step('downloading');
        await downloadBodies(ctx, client, storeUser.id, account, plans, progress);
        await fetchFullRequests(ctx, client, storeUser.id, user, account, accountIndex, specialUse, progress);
        await client.logout().catch(() => undefined);
    } finally {
        client.close();
    }
}

/** The local mailbox of each configured upstream folder, created when missing. */
function planFolders(
    ctx: UplinkContext,
    userId: number,
    user: ResolvedUser,
    account: ResolvedAccount,
    accountIndex: number,
    specialUse: Map<string, string | null>,
    progress: AccountProgress
): FolderPlan[] {
    const plans: FolderPlan[] = [];
    for (const folder of account.folders) {
        const localPath = localFolderFor(user, account, accountIndex, folder, specialUse.get(folder) ?? null);
        const mailbox = ensureLocalMailbox(ctx.store, userId, localPath);
        if (!mailbox) {
            progress.errors.push(`cannot create local folder ${localPath}`);
            continue;
        }
        plans.push({ userName: user.name, folder, localPath, mailboxId: mailbox.id });
    }
    return plans;
}
