/**
 * Telling the acting session about messages it added to its own selected mailbox (APPEND, COPY
 * or MOVE into it). Their journal entries carry the session's id, so the notification path skips
 * them; the command announces them itself, before its tagged reply (RFC 3501 6.3.11, RFC 6851 4.3).
 */
import type { ImapContext, ImapSession } from './context';

/**
 * Writes `* n EXISTS` for every message of the selected mailbox this session has not been told
 * of yet, in UID order: others' new messages whose notifications are still queued too, so
 * sequence numbers stay in step (their later notification is then a duplicate imap-core ignores).
 */
export function announceNewMessages(ctx: ImapContext, session: ImapSession, mailboxId: number): void {
    const selected = session.selected;
    if (!selected || Number(selected.mailbox) !== mailboxId) return;
    const known = selected.uidList;
    let exists: unknown = false;
    const announced: number[] = [];
    for (const uid of ctx.store.messages.uidsAfter(mailboxId, known.length ? known[known.length - 1] : 0)) {
        const response = session.formatResponse('EXISTS', uid);
        if (response) {
            exists = response;
            announced.push(uid);
        }
    }
    if (!exists) return;
    session.writeStream.write(exists);
    // RFC 3501 2.3.2: this session is the first to see them, so they are \Recent here (unless another has them).
    const recent = selected.recent ? ctx.store.mailboxes.takeRecent(mailboxId, announced, { readOnly: selected.readOnly }) : [];
    if (recent.length && selected.recent) {
        for (const uid of recent) selected.recent.add(uid);
        session.writeStream.write({ tag: '*', command: String(selected.recent.size), attributes: [{ type: 'atom', value: 'RECENT' }] });
    }
}
