/**
 * Logging with pino. Anything that could carry a secret is redacted by key, so a careless
 * `log.info({ account })` cannot leak a password or token. Lines are JSON, or rendered for the
 * journal or a person (format.ts; `log.format` in mailmule.yaml, `auto` by default).
 */
import tty from 'node:tty';
import util from 'node:util';
import pino from 'pino';
import { formatLine, resolveFormat, type LogFormat } from './format';

export { LOG_FORMATS, formatLine, isJournalStream, journalPrefix, resolveFormat, type LogFormat } from './format';

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

/** A destination that renders each of pino's JSON lines before handing it on (flushes pass through). */
function rendering(target: pino.DestinationStream & { flush?: (cb: () => void) => void; flushSync?: () => void }, format: 'journal' | 'pretty', colour: boolean) {
    return {
        write: (line: string) => target.write(formatLine(line, format, { colour })),
        flush: (cb: () => void) => (target.flush ? target.flush(cb) : cb()),
        flushSync: () => target.flushSync?.()
    };
}

/**
 * A logger writing to `destination` (default: stdout) in `format`. `auto` decides by what the
 * destination is (format.ts): the journal, a terminal, or anything else (JSON). A destination
 * without a file descriptor counts as anything else.
 */
export function createLogger(level: string, destination?: pino.DestinationStream, format: LogFormat = 'json'): Logger {
    const target = destination ?? pino.destination({ dest: 1, sync: false });
    const fd = destination ? (destination as { fd?: unknown }).fd : 1;
    const resolved = typeof fd === 'number' ? resolveFormat(format, fd) : format === 'auto' ? 'json' : format;
    // Colour only on a terminal that has it, unless NO_COLOR (no-color.org) says otherwise.
    const colour = typeof fd === 'number' && tty.isatty(fd) && !process.env.NO_COLOR && process.env.TERM !== 'dumb';
    return pino(
        {
            level,
            base: { name: 'mailmule' },
            redact: { paths: REDACT_PATHS, censor: '[redacted]' },
            timestamp: pino.stdTimeFunctions.isoTime
        },
        resolved === 'json' ? target : rendering(target, resolved, colour)
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
