/**
 * Delivery status notifications (RFC 3464): a multipart/report with a human-readable part,
 * a message/delivery-status part, and the original message's headers (text/rfc822-headers).
 * Built with nodemailer's MIME composer; delivered into the sender's INBOX by the caller.
 */
import crypto from 'node:crypto';
import { storeErrorCode, type QueueEntry, type Store } from '../store';
import { createMimeNode } from './mime-node';
import type { RecipientFailure } from './retry-policy';

export interface BouncedRecipient {
    address: string;
    /** "5.1.1" style status code. */
    status: string;
    /** The remote server's reply, e.g. "550 5.1.1 <x@y>: Recipient address rejected". */
    diagnostic: string;
    /** "failed" (permanent) or "delayed". */
    action?: 'failed' | 'delayed';
    remoteMta?: string;
}

export interface BounceOptions {
    /** Who gets the notice: the original sender. */
    to: string;
    /** The gateway's name (Reporting-MTA, From). */
    reportingMta: string;
    /** Header block of the original message (raw bytes, CRLF separated, no final blank line needed). */
    originalHeaders: Buffer;
    originalMessageId?: string | null;
    arrivalDate?: Date;
    recipients: BouncedRecipient[];
    /** A sentence on why, for the human-readable part. */
    reason?: string;
}

function dsnField(name: string, value: string): string {
    // Values come from remote servers: keep them on one line and printable ASCII.
    return `${name}: ${value.replace(/[\r\n]+/g, ' ').replace(/[^\x20-\x7e]/g, '?')}`;
}

export function buildBounce(options: BounceOptions): Promise<Buffer> {
    const failed = options.recipients.every(r => (r.action ?? 'failed') === 'failed');
    const root = createMimeNode('multipart/report; report-type=delivery-status');
    root.setHeader({
        From: `Mail Delivery System <mailer-daemon@${options.reportingMta}>`,
        To: options.to,
        Subject: failed ? 'Undelivered Mail Returned to Sender' : 'Delayed Mail (still being retried)',
        Date: new Date(),
        'Message-ID': `<${crypto.randomUUID()}@${options.reportingMta}>`,
        'Auto-Submitted': 'auto-replied'
    });
    if (options.originalMessageId) {
        root.setHeader('In-Reply-To', options.originalMessageId);
        root.setHeader('References', options.originalMessageId);
    }

    const human = [
        `This is the mail system at ${options.reportingMta}.`,
        '',
        failed ? 'Your message could not be delivered to one or more recipients. It has been given up on.' : 'Your message has not been delivered yet. The gateway keeps trying when the link is up.',
        options.reason ? `\n${options.reason}` : '',
        '',
        ...options.recipients.map(r => `<${r.address}>: ${r.diagnostic}`),
        ''
    ].join('\r\n');
    root.createChild('text/plain; charset=utf-8').setContent(human);

    const perMessage = [dsnField('Reporting-MTA', `dns; ${options.reportingMta}`)];
    if (options.arrivalDate) perMessage.push(dsnField('Arrival-Date', options.arrivalDate.toUTCString()));
    const perRecipient = options.recipients.map(r =>
        [
            dsnField('Final-Recipient', `rfc822; ${r.address}`),
            dsnField('Action', r.action ?? 'failed'),
            dsnField('Status', r.status),
            ...(r.remoteMta ? [dsnField('Remote-MTA', `dns; ${r.remoteMta}`)] : []),
            dsnField('Diagnostic-Code', `smtp; ${r.diagnostic}`)
        ].join('\r\n')
    );
    const status = root.createChild('message/delivery-status');
    status.setHeader('Content-Transfer-Encoding', '7bit');
    status.setContent([perMessage.join('\r\n'), ...perRecipient].join('\r\n\r\n') + '\r\n');

    // Given as raw: for a text/* part nodemailer ignores an 8bit Content-Transfer-Encoding and
    // re-encodes the content as quoted-printable, which mangles the original header lines.
    root.createChild('text/rfc822-headers').setRaw(
        Buffer.concat([Buffer.from('Content-Type: text/rfc822-headers\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'), options.originalHeaders, Buffer.from('\r\n')])
    );

    return new Promise((resolve, reject) => root.build((err: Error | null, message: Buffer) => (err ? reject(err) : resolve(message))));
}

/**
 * The RFC 3463 status for a failed recipient: the enhanced status code in the provider's reply
 * when it gave one, else 4.4.7 for an expired entry and 5.0.0 for any other permanent failure.
 */
export function dsnStatus(failure: Pick<RecipientFailure, 'error' | 'code'>): string {
    return /\b([245]\.\d{1,3}\.\d{1,3})\b/.exec(failure.error)?.[1] ?? (failure.code === 447 ? '4.4.7' : '5.0.0');
}

/** The DSN's per-recipient fields for recipients the queue gave up on (the provider is the Remote-MTA). */
export function bouncedRecipients(entry: Pick<QueueEntry, 'account'>, failures: RecipientFailure[]): BouncedRecipient[] {
    return failures.map(failure => ({
        address: failure.address,
        status: dsnStatus(failure),
        diagnostic: failure.error,
        action: 'failed' as const,
        remoteMta: entry.account.split('@')[1]
    }));
}

/**
 * Builds a DSN for a queue entry and puts it in the sender's INBOX (delivery.ts calls this on a
 * permanent failure or when a message outlives queue.maxAge). Only the original's header block
 * is read from disk, never the whole message.
 */
export async function bounceToSender(store: Store, entry: QueueEntry, recipients: BouncedRecipient[], options: { reportingMta: string; reason?: string }): Promise<number | null> {
    const originalHeaders = store.queue.readHeaderBlock(entry);
    const raw = await buildBounce({
        to: entry.mailFrom,
        reportingMta: options.reportingMta,
        originalHeaders,
        originalMessageId: entry.messageId,
        arrivalDate: new Date(entry.createdAt),
        recipients,
        reason: options.reason
    });
    try {
        return store.messages.deliverToInbox(entry.userId, raw, store.messages.analyse(raw)).uid;
    } catch (err) {
        // No INBOX to put it in: nothing to deliver to.
        if (storeErrorCode(err) === 'TRYCREATE') return null;
        throw err;
    }
}
