/** APPEND with flags and internal date; answers APPENDUID. */
import { storeErrorCode } from '../store';
import { announceNewMessages } from './announce';
import { binaryPartsToBase64 } from './append-binary';
import { guarded, utf8MailboxPath, type Callback, type ImapContext, type ImapSession } from './context';

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

/** IMAP date-time ("17-Jul-1996 02:44:25 -0700") to ms; null when absent or malformed. */
export function parseImapDateTime(value: unknown): number | null {
    const match = /^\s*(\d{1,2})-([a-z]{3})-(\d{4}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})\s*$/i.exec(typeof value === 'string' ? value : '');
    if (!match) return null;
    const month = MONTHS.indexOf(match[2].toLowerCase());
    if (month < 0) return null;
    const offsetMinutes = (match[7] === '-' ? -1 : 1) * (Number(match[8]) * 60 + Number(match[9]));
    const utc = Date.UTC(Number(match[3]), month, Number(match[1]), Number(match[4]), Number(match[5]), Number(match[6]));
    return utc - offsetMinutes * 60000;
}

export interface AppendedMessage {
    flags: string[];
    internaldate: unknown;
    raw: Buffer;
    /** Sent in a literal8 (RFC 3516 4.4, patch 101): its binary parts are stored base64-encoded. */
    literal8?: boolean;
}

/**
 * Stores the messages of one APPEND (one, or several with MULTIAPPEND, RFC 3502) in one
 * transaction: all or none. Answers a response code, or the UIDs given. Appending to the
 * selected mailbox announces the new messages before the tagged OK (RFC 3501 6.3.11).
 */
export async function appendMessages(ctx: ImapContext, path: string, appended: AppendedMessage[], session: ImapSession): Promise<string | { uidValidity: number; uids: number[] }> {
    const userId = session.user.id;
    const mailbox = ctx.store.mailboxes.get(userId, utf8MailboxPath(path, session));
    if (!mailbox) {
        return 'TRYCREATE';
    }
    if (appended.some(message => !message.raw || !message.raw.length)) {
        return 'CANNOT';
    }
    const messages = appended.map(message => (message.literal8 ? { ...message, raw: binaryPartsToBase64(message.raw) } : message));
    const total = messages.reduce((sum, message) => sum + message.raw.length, 0);
    const quota = ctx.quota();
    if (quota > 0 && ctx.store.users.storageUsed(userId) + total > quota) {
        return 'OVERQUOTA';
    }
    const selectedHere = !!session.selected && Number(session.selected.mailbox) === mailbox.id;
    let result: { uidValidity: number; uids: number[] };
    try {
        // The store writes and fsyncs the files on the thread pool, so other sessions are not held up by them.
        result = await ctx.store.messages.append(
            userId,
            mailbox.id,
            messages.map(message => ({
                raw: message.raw,
                analysed: ctx.store.messages.analyse(message.raw),
                flags: message.flags ?? [],
                idate: parseImapDateTime(message.internaldate) ?? Date.now()
            })),
            // Thunderbird APPENDs its own Sent copy after submitting; mailmule has filed one already.
            { dedupeByMessageId: mailbox.specialUse === '\\Sent', ignoreSession: selectedHere ? session.id : undefined }
        );
    } catch (err) {
        const code = storeErrorCode(err);
        if (!code) throw err;
        return code;
    }
    if (selectedHere) announceNewMessages(ctx, session, mailbox.id);
    return result;
}

export function onAppend(ctx: ImapContext) {
    return (path: string, flags: string[], internaldate: unknown, raw: Buffer, session: ImapSession, callback: Callback, options?: { literal8?: boolean }): void =>
        guarded(ctx, 'append', callback, async () => {
            const result = await appendMessages(ctx, path, [{ flags, internaldate, raw, literal8: options?.literal8 }], session);
            if (typeof result === 'string') {
                return callback(null, result);
            }
            callback(null, true, { uidValidity: result.uidValidity, uid: result.uids[0] });
        });
}

/** MULTIAPPEND (RFC 3502): every message is stored, in one transaction, or none is. */
export function onAppendMultiple(ctx: ImapContext) {
    return (path: string, messages: AppendedMessage[], session: ImapSession, callback: Callback): void =>
        guarded(ctx, 'append', callback, async () => {
            const result = await appendMessages(ctx, path, messages, session);
            if (typeof result === 'string') {
                return callback(null, result);
            }
            callback(null, true, { uidValidity: result.uidValidity, uids: result.uids });
        });
}
