import { PassThrough, type Readable } from 'node:stream';

/**
 * `source` as a stream that ends, instead of failing, when `source` fails; the error goes to
 * `failures`. imap-core has announced the literal's length before its bytes flow, and its writer
 * waits for the stream to end: a failed stream would leave the literal short and the command
 * without a tagged reply (the client waits forever). Ended early, the literal is padded to its
 * length by imap-core's LengthLimiter, so the session stays in step and the command can end NO.
 */
export function endOnError(source: Readable & { isLimited?: boolean }, failures: Error[]): Readable {
    const guard = new PassThrough() as PassThrough & { isLimited?: boolean };
    guard.isLimited = source.isLimited;
    source.once('error', err => {
        failures.push(err);
        source.unpipe(guard);
        guard.end();
    });
    source.pipe(guard);
    return guard;
}
