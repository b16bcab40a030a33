import type { Socket } from 'node:net';
import type { Store } from '../store';
import type { Logger } from '../log';
import type { LoginSource } from '../auth';
import type { Notifier } from './notifier';
import { failureReply } from './failure';

/** What every handler needs. Getters, because SIGHUP can replace the config underneath. */
export interface ImapContext extends LoginSource {
    store: Store;
    logger: Logger;
    notifier: Notifier;
    /** Bytes per user for QUOTA; 0 = none. */
    quota(): number;
}

/** imap-core's session object, as far as the handlers use it. */
export interface ImapSession {
    id: string;
    user: { id: number; username: string };
    remoteAddress: string;
    selected:
        | false
        | {
              mailbox: number;
              uidList: number[];
              modifyIndex: number;
              condstoreEnabled: boolean;
              readOnly: boolean;
              /** UIDs that are \Recent in this session (imap-core patch 033 keeps it: SELECT, EXISTS notifications, EXPUNGE). */
              recent?: Set<number>;
          };
    writeStream: NodeJS.WritableStream & { write(chunk: unknown, cb?: () => void): boolean };
    /** The connection's socket, which writeStream pipes to (or, after COMPRESS, its deflate stream does). */
    socket?: Socket;
    formatResponse(command: string, uid: number, data?: unknown): unknown;
    getQueryResponse(query: unknown[], message: unknown, options: unknown): unknown[];
    isUTF8Enabled(): boolean;
    /** Announces (FLAGS, PERMANENTFLAGS) keywords the client has not been told of; call before writing a FETCH that shows them. */
    announceFlags(flags: string[]): void;
    /** Calls back once the client has taken the output written so far; never on a connection that closes (imap-core patch 134). */
    whenOutputTaken?: (callback: () => void) => void;
}

export type Callback = (err: Error | null, ...rest: unknown[]) => void;

/**
 * Runs a handler body and turns any throw or rejection into `callback(err)`: imap-core crashes
 * the process on an uncaught error in a hook, and one bad message must not take everyone down.
 * The error is logged with the handler's name (never its arguments: a password, message text),
 * and the client gets a truthful answer for its class (failure.ts), never the error's own text.
 */
export function guarded(ctx: ImapContext, name: string, callback: Callback, body: () => unknown): void {
    let called = false;
    const once: Callback = (err, ...rest) => {
        if (called) return;
        called = true;
        callback(err, ...rest);
    };
    const fail = (err: unknown): void => {
        const reply = failureReply(err);
        ctx.logger.error({ err, handler: name, answer: reply.code }, 'IMAP handler failed');
        once(reply);
    };
    try {
        const result = body();
        if (result && typeof (result as Promise<unknown>).then === 'function') {
            (result as Promise<unknown>).catch(fail);
        }
    } catch (err) {
        fail(err);
    }
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * imap-core 1.46.15 reads every argument as a 'binary' string (one character per byte) and
 * decodes mailbox names to UTF-8 in each command, except for a quoted name in APPEND and any
 * name in UNSUBSCRIBE: in a UTF8=ACCEPT session "Entwürfe" reaches those two handlers as
 * "EntwÃ¼rfe". This redoes the decoding. A name whose bytes are not valid UTF-8 was decoded
 * already (a literal, or modified UTF-7 in a legacy session) and is returned as it is.
 */
export function utf8MailboxPath(path: string, session: ImapSession): string {
    if (!session.isUTF8Enabled() || !/[\x80-\xff]/.test(path) || /[^\x00-\xff]/.test(path)) {
        return path;
    }
    try {
        return strictUtf8.decode(Buffer.from(path, 'latin1'));
    } catch {
        return path;
    }
}
