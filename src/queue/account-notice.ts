/**
 * The plain-language notice an account's owner finds in their INBOX when the provider refuses
 * the account's login: one per problem (AccountProblems.claimNotice), not one per message, and
 * not again at every run while the problem lasts. Mail waiting for the account is kept, not bounced.
 */
import crypto from 'node:crypto';
import { createMimeNode } from './mime-node';

export interface AccountNoticeOptions {
    /** The owner's address (the account itself). */
    to: string;
    account: string;
    /** The gateway's name (From, Message-ID). */
    reportingMta: string;
    /** What the provider said. */
    providerReply: string;
    /** How many messages wait for the account. */
    waiting: number;
}

/** The notice's text: what happened, what it means for the waiting mail, and what to do. */
export function accountNoticeText(options: Pick<AccountNoticeOptions, 'account' | 'providerReply' | 'waiting'>): string {
    const messages = options.waiting === 1 ? '1 message' : `${options.waiting} messages`;
    return [
        `Your mail provider refused to let the gateway log in to your account ${options.account}.`,
        '',
        `Because of this, ${messages} you sent could not go out yet. Nothing is lost: they stay in the`,
        'queue and go out by themselves once the login works again.',
        '',
        'What to do: the password (or app password) the gateway uses for this account has probably',
        'changed or expired. Ask your gateway administrator to update it in the configuration.',
        '',
        'You get this notice once; the next one only if the problem comes back after it was fixed.',
        '',
        `The provider said: ${options.providerReply.replace(/\s+/g, ' ')}`,
        ''
    ].join('\r\n');
}

export function buildAccountNotice(options: AccountNoticeOptions): Promise<Buffer> {
    const root = createMimeNode('text/plain; charset=utf-8');
    root.setHeader({
        From: `Mail Delivery System <mailer-daemon@${options.reportingMta}>`,
        To: options.to,
        Subject: `Your mail cannot be sent: the provider refused the login for ${options.account}`,
        Date: new Date(),
        'Message-ID': `<${crypto.randomUUID()}@${options.reportingMta}>`,
        'Auto-Submitted': 'auto-generated'
    });
    root.setContent(accountNoticeText(options));
    return new Promise((resolve, reject) => root.build((err: Error | null, message: Buffer) => (err ? reject(err) : resolve(message))));
}
