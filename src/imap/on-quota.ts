/** GETQUOTAROOT and GETQUOTA: one STORAGE root per user. imap-core needs both hooks. */
import fs from 'node:fs';
import { guarded, type Callback, type ImapContext, type ImapSession } from './context';

function quota(ctx: ImapContext, name: string) {
    return (_pathOrRoot: string, session: ImapSession, callback: Callback): void =>
        guarded(ctx, name, callback, () => {
            const used = ctx.store.users.storageUsed(session.user.id);
            // With no quota configured, report what the disk can still take: a limit of 0 reads as
            // "over quota" to strict clients, and a full SD card is the real limit on a Pi.
            let limit = ctx.quota();
            if (!limit) {
                const stats = fs.statfsSync(ctx.store.dataDir);
                limit = used + stats.bavail * stats.bsize;
            }
            callback(null, { root: '', quota: limit, storageUsed: used });
        });
}

export const onGetQuotaRoot = (ctx: ImapContext) => quota(ctx, 'getquotaroot');
export const onGetQuota = (ctx: ImapContext) => quota(ctx, 'getquota');
