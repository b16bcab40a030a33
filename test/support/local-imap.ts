/**
 * The Pi's users over its local IMAP, as the relay tests read what arrived: a session for a
 * user (password `pw-<user>`, as the relay rigs configure them) and a folder's sources.
 */
import { ImapFlow } from 'imapflow';
import type { Gateway } from './gateway';

/** Runs `fn` in a local IMAP session of `user` (password `pw-<user>`), logged out after. */
export async function withLocal<T>(gateway: Gateway, user: string, fn: (client: ImapFlow) => Promise<T>): Promise<T> {
    const client = new ImapFlow({
        host: '127.0.0.1',
        port: gateway.imapPort,
        secure: false,
        auth: { user, pass: `pw-${user}` },
        logger: false,
        tls: { rejectUnauthorized: false },
        disableAutoIdle: true
    });
    client.on('error', () => undefined);
    await client.connect();
    try {
        return await fn(client);
    } finally {
        await client.logout().catch(() => client.close());
    }
}

/** The sources of a local folder, over local IMAP, in UID order. */
export function localSources(gateway: Gateway, user: string, folder = 'INBOX'): Promise<{ uid: number; source: Buffer }[]> {
    return withLocal(gateway, user, async client => {
        const lock = await client.getMailboxLock(folder);
        try {
            if (!client.mailbox || !client.mailbox.exists) return [];
            const out: { uid: number; source: Buffer }[] = [];
            for await (const message of client.fetch('1:*', { uid: true, source: true })) out.push({ uid: message.uid, source: message.source! });
            return out;
        } finally {
            lock.release();
        }
    });
}

/** Deletes and expunges every message of `user`'s INBOX over local IMAP, as a user clearing it would. */
export function expungeAll(gateway: Gateway, user: string): Promise<void> {
    return withLocal(gateway, user, async client => {
        const lock = await client.getMailboxLock('INBOX');
        try {
            await client.messageDelete('1:*');
        } finally {
            lock.release();
        }
    });
}
