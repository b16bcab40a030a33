/** APPEND with flags and internal date; answers APPENDUID. */
import { announceNewMessages } from './announce';
import { guarded, utf8MailboxPath, type Callback, type ImapContext, type ImapSession } from './context';

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

/** IMAP date-time ("17-Jul-1996 02:44:25 -0700") to ms; null when absent or malformed. */
export function parseImapDateTime(value: unknown): number | null {
    const match = /^\s*(\d{1,2})-([a-z]{3})-(\d{4}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})\s*$/i.exec(String(value ?? ''));
    if (!match) return null;
    const month = MONTHS.indexOf(match[2].toLowerCase());
    if (month < 0) return null;
    const offsetMinutes = (match[7] === '-' ? -1 : 1) * (Number(match[8]) * 60 + Number(match[9]));
    const utc = Date.UTC(Number(match[3]), month, Number(match[1]), Number(match[4]), Number(match[5]), Number(match[6]));
    return utc - offsetMinutes * 60000;
}

export function onAppend(ctx: ImapContext) {
    return (path: string, flags: string[], internaldate: unknown, raw: Buffer, session: ImapSession, callback: Callback): void =>
        guarded(ctx, 'append', callback, async () => {
            const userId = session.user.id;
            const mailbox = ctx.store.getMailbox(userId, utf8MailboxPath(path, session));
            if (!mailbox) {
                return callback(null, 'TRYCREATE');
            }
            const selectedHere = !!session.selected && Number(session.selected.mailbox) === mailbox.id;
            if (!raw || !raw.length) {
                return callback(null, 'CANNOT');
            }
            const quota = ctx.quota();
            if (quota > 0 && ctx.store.storageUsed(userId) + raw.length > quota) {
                return callback(null, 'OVERQUOTA');
            }
            // Write and fsync the file on the thread pool, so other sessions are not held up by it.
            const analysed = ctx.store.analyse(raw);
            await ctx.store.blobs.write(analysed.hash, raw);
            const result = ctx.store.addMessage(userId, mailbox.id, raw, {
                analysed,
                flags: flags ?? [],
                idate: parseImapDateTime(internaldate) ?? Date.now(),
                // Thunderbird APPENDs its own Sent copy after submitting; mailmule has filed one already.
                dedupeByMessageId: mailbox.specialUse === '\\Sent',
                ignoreSession: selectedHere ? session.id : undefined
            });
            if (typeof result === 'string') {
                return callback(null, result);
            }
            if (selectedHere) announceNewMessages(ctx, session, mailbox.id);
            callback(null, true, { uidValidity: result.uidValidity, uid: result.uid });
        });
}

interface AppendedMessage {
    flags: string[];
    internaldate: unknown;
    raw: Buffer;
}

/** MULTIAPPEND (RFC 3502): every message is stored, in one transaction, or none is. */
export function onAppendMultiple(ctx: ImapContext) {
    return (path: string, messages: AppendedMessage[], session: ImapSession, callback: Callback): void =>
        guarded(ctx, 'append', callback, async () => {
            const userId = session.user.id;
            const mailbox = ctx.store.getMailbox(userId, utf8MailboxPath(path, session));
            if (!mailbox) {
                return callback(null, 'TRYCREATE');
            }
            const total = messages.reduce((sum, message) => sum + message.raw.length, 0);
            const quota = ctx.quota();
            if (quota > 0 && ctx.store.storageUsed(userId) + total > quota) {
                return callback(null, 'OVERQUOTA');
            }
            const analysed = messages.map(message => ctx.store.analyse(message.raw));
            // One at a time: the files together are at most the APPEND limit, but fsyncs in parallel gain little on an SD card.
            for (const [index, message] of messages.entries()) {
                await ctx.store.blobs.write(analysed[index].hash, message.raw);
            }
            const selectedHere = !!session.selected && Number(session.selected.mailbox) === mailbox.id;
            const result = ctx.store.addMessages(
                userId,
                mailbox.id,
                messages.map((message, index) => ({
                    raw: message.raw,
                    analysed: analysed[index],
                    flags: message.flags ?? [],
                    idate: parseImapDateTime(message.internaldate) ?? Date.now()
                })),
                { dedupeByMessageId: mailbox.specialUse === '\\Sent', ignoreSession: selectedHere ? session.id : undefined }
            );
            if (typeof result === 'string') {
                return callback(null, result);
            }
            if (selectedHere) announceNewMessages(ctx, session, mailbox.id);
            callback(null, true, { uidValidity: result.uidValidity, uids: result.uids });
        });
}
