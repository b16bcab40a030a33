/**
 * Where an upstream folder lands locally.
 *
 * The user's first account maps to the top level: its INBOX is the INBOX, and its special-use
 * folders (\Sent, \Drafts, \Trash, \Junk, \Archive; also "Sent", "Trash", … by name) land on
 * mailmule's own. Every other account appears under a folder named after the account's `name`
 * (its address when unnamed): "work/INBOX", "work/Sent", …
 */
import type { ResolvedAccount, ResolvedUser } from '../config';
import { storeErrorCode, type MailboxRow, type Store } from '../store';

/** Moving a stub here asks the next run to download the whole message. */
export const FETCH_FULL_FOLDER = 'Fetch full';

const SPECIAL: Record<string, string> = {
    '\\sent': 'Sent',
    '\\drafts': 'Drafts',
    '\\trash': 'Trash',
    '\\junk': 'Junk',
    '\\archive': 'Archive'
};

const BY_NAME: Record<string, string> = {
    sent: 'Sent',
    'sent items': 'Sent',
    'sent messages': 'Sent',
    drafts: 'Drafts',
    trash: 'Trash',
    'deleted items': 'Trash',
    junk: 'Junk',
    spam: 'Junk',
    archive: 'Archive'
};

export function localFolderFor(user: ResolvedUser, account: ResolvedAccount, accountIndex: number, upstreamPath: string, specialUse: string | null): string {
    let local: string;
    if (/^inbox$/i.test(upstreamPath)) {
        local = 'INBOX';
    } else if (specialUse && SPECIAL[specialUse.toLowerCase()]) {
        local = SPECIAL[specialUse.toLowerCase()];
    } else {
        const leaf = upstreamPath.split('/').pop()!.toLowerCase();
        local = BY_NAME[leaf] && !upstreamPath.includes('/') ? BY_NAME[leaf] : upstreamPath;
    }
    if (accountIndex === 0) return local;
    const prefix = (account.name || account.address).replace(/\//g, '_');
    void user;
    return `${prefix}/${local}`;
}

/** The user's local mailbox at `mailboxPath`, created (and subscribed) if missing; null when that name cannot be a mailbox here. */
export function ensureLocalMailbox(store: Store, userId: number, mailboxPath: string): MailboxRow | null {
    const existing = store.mailboxes.get(userId, mailboxPath);
    if (existing) return existing;
    try {
        return store.mailboxes.getById(userId, store.mailboxes.create(userId, mailboxPath));
    } catch (err) {
        if (!storeErrorCode(err)) throw err;
        return null;
    }
}
