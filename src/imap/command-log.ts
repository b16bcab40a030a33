/**
 * One debug line per IMAP command: who, which command, in which mailbox, how it ended and how
 * long it took. Built from what imap-core reports after the command (its name and outcome),
 * never from the command's arguments, so no password, literal or search text reaches the log.
 */
import type { Logger } from '../log';

export interface CommandDone {
    tag?: string;
    command: string;
    /** imap-core's outcome: OK, NO, BAD, or an error code. */
    result: string;
    /** Milliseconds. */
    duration: number;
}

interface CommandSession {
    id: string;
    remoteAddress?: string;
    user?: { username?: string };
    selected?: false | { path?: string };
}

export function logCommand(logger: Logger) {
    return (done: CommandDone, session: CommandSession | undefined): void => {
        if (!logger.isLevelEnabled('debug')) return;
        const selected = session?.selected;
        logger.debug(
            {
                session: session?.id,
                user: session?.user?.username ?? null,
                // A tag is the client's own token: keep it short in case of garbage.
                tag: typeof done.tag === 'string' ? done.tag.slice(0, 32) : null,
                command: String(done.command).slice(0, 40),
                mailbox: selected ? (selected.path ?? null) : null,
                result: String(done.result).toUpperCase(),
                ms: Math.round(done.duration * 10) / 10
            },
            'IMAP command'
        );
    };
}
