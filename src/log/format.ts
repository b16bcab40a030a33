/**
 * The three shapes of a log line. pino always writes JSON; for the other two each line is parsed
 * back and rendered (logs are a few lines a second at most, so the cost does not matter):
 *
 * - `json`: pino's line as it is, for log shippers and `jq`.
 * - `journal`: for systemd's journal. Each line starts with its syslog priority (`<3>` error,
 *   `<4>` warning, `<6>` info, `<7>` debug), which journald reads (SyslogLevelPrefix=yes, the
 *   default) so `journalctl -u mailmule -p err` shows exactly the errors. No time stamp and no
 *   colour: the journal records the time itself. A line never breaks: a stack trace becomes
 *   several lines, each with the same prefix.
 * - `pretty`: for a person at a terminal: the time, the level, the message, then its fields as
 *   `key=value`.
 *
 * `auto` picks `journal` when stdout is the journal's stream (JOURNAL_STREAM names its device and
 * inode: systemd's documented check, which a child process with other output does not pass),
 * `pretty` on a terminal, `json` otherwise. INVOCATION_ID alone is not enough: it only says the
 * process runs in a unit, whose output may go to a file or a pipe.
 *
 * Redaction happens in pino before any of this, so a secret never reaches these functions.
 */
import fs from 'node:fs';
import tty from 'node:tty';

export const LOG_FORMATS = ['auto', 'json', 'journal', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** pino's numeric levels and journald's syslog priorities (sd-daemon.h: SD_CRIT … SD_DEBUG). */
export function syslogPriority(level: number): number {
    if (level >= 60) return 2; // fatal: crit
    if (level >= 50) return 3; // error: err
    if (level >= 40) return 4; // warn: warning
    if (level >= 30) return 6; // info
    return 7; // debug, trace
}

const LEVEL_NAMES: [number, string][] = [
    [60, 'FATAL'],
    [50, 'ERROR'],
    [40, 'WARN'],
    [30, 'INFO'],
    [20, 'DEBUG'],
    [0, 'TRACE']
];

function levelName(level: number): string {
    return (LEVEL_NAMES.find(([at]) => level >= at) ?? LEVEL_NAMES[LEVEL_NAMES.length - 1])[1];
}

/** Keys every line has, shown in their own place (or not at all) rather than as fields. */
const OWN_PLACE = new Set(['level', 'time', 'msg', 'name', 'pid', 'hostname', 'component']);

/** A field's value: bare when it is a plain word, JSON otherwise (so a value never breaks the line). */
function fieldValue(value: unknown): string {
    if (typeof value === 'string') return /^[^\s"=\\]+$/.test(value) ? value : JSON.stringify(value);
    if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
    // undefined, a function or a symbol: none comes out of pino's JSON.
    return JSON.stringify(value) ?? 'undefined';
}

interface Rendered {
    /** The message and its fields, on one line. */
    head: string;
    /** Lines that follow it: a stack trace, without its first line (the message). */
    tail: string[];
}

/** The message with its component in front and its fields after; an error's stack apart. */
function render(record: Record<string, unknown>): Rendered {
    const parts: string[] = [];
    const tail: string[] = [];
    const component = typeof record.component === 'string' ? `${record.component}: ` : '';
    const msg = typeof record.msg === 'string' ? record.msg : '';
    for (const [key, value] of Object.entries(record)) {
        if (OWN_PLACE.has(key) || value === undefined) continue;
        if (value && typeof value === 'object' && !Array.isArray(value) && typeof (value as { stack?: unknown }).stack === 'string') {
            // pino's err serializer adds `type` (the class name): "Object" for a plain object says nothing.
            const { stack, ...rest } = value as { stack: string; type?: unknown };
            if (rest.type === 'Object') delete rest.type;
            tail.push(
                ...stack
                    .split('\n')
                    .slice(1)
                    .map(line => `    ${line.trim()}`)
            );
            parts.push(`${key}=${fieldValue(rest)}`);
            continue;
        }
        parts.push(`${key}=${fieldValue(value)}`);
    }
    const head = `${component}${msg}${parts.length ? (msg ? '  ' : '') + parts.join(' ') : ''}`;
    // A message with line breaks of its own: each of them becomes a line of the tail.
    const [first, ...more] = head.split(/\r?\n/);
    return { head: first, tail: [...more, ...tail] };
}

/** One pino record as journal lines: every physical line carries the priority prefix. */
export function journalLines(record: Record<string, unknown>): string {
    const prefix = `<${syslogPriority(Number(record.level) || 30)}>`;
    const { head, tail } = render(record);
    return [head, ...tail].map(line => prefix + line + '\n').join('');
}

const COLOURS: Record<string, string> = { FATAL: '\x1b[35m', ERROR: '\x1b[31m', WARN: '\x1b[33m', INFO: '\x1b[32m', DEBUG: '\x1b[90m', TRACE: '\x1b[90m' };

/** One pino record for a person: `12:04:31 WARN  uplink: sending failed  account=a@b.c`. */
export function prettyLines(record: Record<string, unknown>, options: { colour?: boolean } = {}): string {
    const time = typeof record.time === 'string' || typeof record.time === 'number' ? new Date(record.time) : new Date();
    const clock = [time.getHours(), time.getMinutes(), time.getSeconds()].map(n => String(n).padStart(2, '0')).join(':');
    const name = levelName(Number(record.level) || 30);
    const label = options.colour ? `${COLOURS[name]}${name.padEnd(5)}\x1b[0m` : name.padEnd(5);
    const { head, tail } = render(record);
    return [`${clock} ${label} ${head}`, ...tail].join('\n') + '\n';
}

/** Renders pino's JSON line in `format`; a line that is not JSON passes through unchanged. */
export function formatLine(line: string, format: 'journal' | 'pretty', options: { colour?: boolean } = {}): string {
    let record: unknown;
    try {
        record = JSON.parse(line);
    } catch {
        return line;
    }
    if (!record || typeof record !== 'object') return line;
    return format === 'journal' ? journalLines(record as Record<string, unknown>) : prettyLines(record as Record<string, unknown>, options);
}

/**
 * Whether file descriptor `fd` is the journal's stream: JOURNAL_STREAM holds `device:inode` of
 * the stream systemd connected stdout and stderr to (systemd.exec(5)).
 */
export function isJournalStream(fd: number, env: NodeJS.ProcessEnv = process.env): boolean {
    const expected = env.JOURNAL_STREAM;
    if (!expected) return false;
    try {
        const stat = fs.fstatSync(fd);
        return expected === `${stat.dev}:${stat.ino}`;
    } catch {
        return false;
    }
}

/** `<priority>` when `fd` is the journal's stream, else nothing: for lines written past the logger. */
export function journalPrefix(fd: number, priority: number): string {
    return isJournalStream(fd) ? `<${priority}>` : '';
}

/** What `auto` means for output on `fd`. */
export function resolveFormat(format: LogFormat, fd: number, env: NodeJS.ProcessEnv = process.env): Exclude<LogFormat, 'auto'> {
    if (format !== 'auto') return format;
    if (isJournalStream(fd, env)) return 'journal';
    if (tty.isatty(fd)) return 'pretty';
    return 'json';
}
