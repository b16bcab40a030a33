/**
 * Which upstream messages are one and the same within an account: the same mail in INBOX and
 * `[Gmail]/All Mail` (a Gmail label is a folder over IMAP), or copied into two folders. A message
 * whose identity is already home is filed from the local copy instead of being downloaded again
 * (the store's sync aggregate does the linking; this module only names the identity).
 *
 * The server's own id when it offers one that spans folders: X-GM-MSGID with X-GM-EXT-1 (Gmail),
 * EMAILID with OBJECTID (RFC 8474). imapflow asks for it on every FETCH and returns it as
 * `emailId`. Otherwise the Message-ID together with RFC822.SIZE and INTERNALDATE from the header
 * pass: a Message-ID alone is not proof (resent or edited drafts keep it), but a copy keeps all
 * three, and two different messages agreeing on all three byte for byte in size is unlikely
 * enough to be worth the bytes saved.
 *
 * The key is a string stored with the message (messages.upstream_key) and its pending download;
 * schema migration 8 writes the Message-ID form for older rows, so keep the two in step.
 */

/** What imapflow's `client.capabilities` offers: a look-up by capability name. */
export interface Capabilities {
    has(name: string): boolean;
}

/** What the header pass knows of one upstream message. */
export interface IdentityFacts {
    /** imapflow's `emailId`: X-GM-MSGID or EMAILID, whichever the server offers. */
    emailId?: string | null;
    /** The normalised Message-ID (message-id.ts), or null. */
    messageId: string | null;
    size: number;
    idate: number;
}

/** The message's identity within its account, or null when nothing identifies it well enough. */
export function upstreamKey(capabilities: Capabilities, facts: IdentityFacts): string | null {
    if (facts.emailId) {
        // imapflow prefers EMAILID when both are offered, so the id is whichever OBJECTID names.
        if (capabilities.has('OBJECTID')) return `emailid ${facts.emailId}`;
        if (capabilities.has('X-GM-EXT-1')) return `gm ${facts.emailId}`;
    }
    if (facts.messageId) return `mid ${facts.messageId} ${facts.size} ${facts.idate}`;
    return null;
}
