/** GETQUOTAROOT and GETQUOTA: one STORAGE root per user. imap-core needs both hooks. */
import { guarded, type Callback, type ImapContext, type ImapSession } from './context';

function quota(ctx: ImapContext, name: string) {
    return (_pathOrRoot: string, session: ImapSession, callback: Callback): void =>
        guarded(ctx, name, callback, () => {
            callback(null, { root: '', quota: ctx.quota() || 0, storageUsed: ctx.store.storageUsed(session.user.id) });
        });
}

export const onGetQuotaRoot = (ctx: ImapContext) => quota(ctx, 'getquotaroot');
export const onGetQuota = (ctx: ImapContext) => quota(ctx, 'getquota');
