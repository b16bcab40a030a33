/**
 * nodemailer's MIME composer, for the messages the queue writes itself (bounces, account notices),
 * loaded when the first one is built rather than with the queue: `mailmule status` loads the uplink,
 * and with it the queue, only to reach the daemon's control socket, and nodemailer's MimeNode (with
 * its fetch, URL and MIME-type tables) was about 0.1 s of that command's start-up.
 */
import type MimeNode from 'nodemailer/lib/mime-node';

export function createMimeNode(contentType: string): MimeNode {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const MimeNodeClass = require('nodemailer/lib/mime-node') as typeof MimeNode;
    return new MimeNodeClass(contentType);
}
