/**
 * JSON-lines logging with pino. Anything that could carry a secret is redacted by key, so a
 * careless `log.info({ account })` cannot leak a password or token.
 */
import util from 'node:util';
import pino from 'pino';

export type Logger = pino.Logger;

export const REDACT_PATHS = [
    'password',
    '*.password',
    '*.*.password',
    'pass',
    '*.pass',
    'credentials',
    '*.credentials',
    '*.*.credentials',
    'oauth2',
    '*.oauth2',
    'accessToken',
    '*.accessToken',
    'refreshToken',
    '*.refreshToken',
    'clientSecret',
    '*.clientSecret',
    'auth',
    '*.auth'
];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
    return pino(
        {
            level,
            base: { name: 'mailmule' },
            redact: { paths: REDACT_PATHS, censor: '[redacted]' },
            timestamp: pino.stdTimeFunctions.isoTime
        },
        destination ?? pino.destination({ dest: 1, sync: false })
    );
}

/**
 * An adapter for the protocol engines (imap-core, smtp-server), which log through a bunyan-style
 * `(meta, format, ...args)` logger. Their debug lines echo client input (a malformed LOGIN or AUTH
 * line included), so only info and above are passed on, as text, with long arguments cut.
 */
export function engineLogger(logger: Logger) {
    const forward =
        (level: 'info' | 'warn' | 'error') =>
        (meta: Record<string, unknown>, format: string, ...args: unknown[]) => {
            const fields: Record<string, unknown> = {};
            let effective = level;
            if (meta && typeof meta === 'object') {
                if (meta.cid) fields.session = meta.cid;
                if (typeof meta.command === 'string') fields.command = meta.command;
                if (meta.err instanceof Error) {
                    fields.err = { message: meta.err.message, code: (meta.err as NodeJS.ErrnoException).code };
                    // A contained exception in imap-core: where it happened (a stack holds no client data).
                    if (level === 'error' && meta.command) (fields.err as Record<string, unknown>).stack = meta.err.stack;
                }
                // A client that resets or times out is ordinary life on Wi-Fi, not a server error.
                if (isClientGone(meta.err)) effective = 'info';
            }
            logger[effective](fields, util.format(String(format ?? ''), ...args.map(arg => (typeof arg === 'string' && arg.length > 200 ? arg.slice(0, 200) + '…' : arg))));
        };
    return { info: forward('info'), warn: forward('warn'), error: forward('error'), debug() {}, trace() {}, fatal: forward('error') };
}

const CLIENT_GONE = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED', 'ERR_STREAM_DESTROYED', 'ERR_STREAM_WRITE_AFTER_END']);

/** An error that only means the client went away (reset, timed out, unreachable). */
export function isClientGone(err: unknown): boolean {
    return !!err && typeof err === 'object' && CLIENT_GONE.has(String((err as NodeJS.ErrnoException).code));
}
