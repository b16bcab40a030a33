/**
 * `mailmule queue`: what is waiting to go out over the uplink, and what to do about it.
 */
import type { Command } from 'commander';
import type { QueueEntry } from '../../store';
import { withConfigOption, withStore, type ConfigOption } from '../common';
import { UsageError } from '../exit-codes';
import { storeErrorCode } from '../../store/errors';

function when(ms: number | null): string {
    return ms ? new Date(ms).toISOString().replace('T', ' ').slice(0, 19) + 'Z' : '-';
}

function summary(entry: QueueEntry): string {
    const pending = entry.recipients.filter(r => r.state === 'pending').length;
    return [
        String(entry.id).padStart(5),
        entry.state.padEnd(8),
        String(entry.attempts).padStart(3),
        String(entry.size).padStart(9),
        when(entry.createdAt),
        entry.mailFrom,
        `→ ${entry.recipients.length} rcpt${entry.recipients.length === 1 ? '' : 's'}${pending !== entry.recipients.length ? ` (${pending} pending)` : ''}`,
        entry.lastError ? `  [${entry.lastError.slice(0, 80)}]` : ''
    ].join('  ');
}

/**
 * A subcommand's options merged with those of `queue` itself: `queue` also takes -c and --json,
 * so commander hands `queue show 3 -c FILE --json` to the parent and the subcommand sees neither.
 */
function withParentOptions<T>(command: Command): T {
    return command.optsWithGlobals() as T;
}

function parseId(value: string): number {
    const id = Number(value);
    if (!Number.isInteger(id) || id <= 0) throw new UsageError(`"${value}" is not a queue id`);
    return id;
}

export function registerQueue(program: Command): void {
    const queue = withConfigOption(program.command('queue'))
        .description('list the outbound queue (queued, sending, deferred, failed, sent)')
        .option('--json', 'print JSON')
        .action((options: ConfigOption & { json?: boolean }) =>
            withStore(options, store => {
                const entries = store.queue.list();
                if (options.json) {
                    console.log(JSON.stringify(entries, null, 2));
                    return;
                }
                if (!entries.length) {
                    console.log('the queue is empty');
                    return;
                }
                console.log('   id  state     try      size  created               from  → recipients');
                for (const entry of entries) console.log(summary(entry));
                const counts = store.queue.counts();
                console.log(
                    Object.entries(counts)
                        .map(([state, n]) => `${n} ${state}`)
                        .join(', ')
                );
            })
        );

    withConfigOption(queue.command('show'))
        .argument('<id>', 'queue id')
        .description('show one queued message: envelope, recipients, attempts, last error')
        .option('--json', 'print JSON')
        .action((idText: string, _options: unknown, command: Command) => {
            const options = withParentOptions<ConfigOption & { json?: boolean }>(command);
            return withStore(options, store => {
                const entry = store.queue.get(parseId(idText));
                if (!entry) throw new UsageError(`no queue entry ${idText}`);
                if (options.json) {
                    console.log(JSON.stringify(entry, null, 2));
                    return;
                }
                console.log(`id:           ${entry.id}`);
                console.log(`state:        ${entry.state}`);
                console.log(`user:         ${entry.user}`);
                console.log(`relay via:    ${entry.account}`);
                console.log(`mail from:    ${entry.mailFrom}`);
                console.log(`subject:      ${entry.subject ?? ''}`);
                console.log(`message-id:   ${entry.messageId ?? ''}`);
                console.log(`size:         ${entry.size} bytes`);
                console.log(`created:      ${when(entry.createdAt)}`);
                console.log(`attempts:     ${entry.attempts}`);
                console.log(`next attempt: ${when(entry.nextAttemptAt)}`);
                console.log(`last error:   ${entry.lastError ?? ''}`);
                for (const r of entry.recipients) console.log(`  ${r.state.padEnd(8)} ${r.address}${r.lastError ? `  [${r.lastError}]` : ''}`);
            });
        });

    withConfigOption(queue.command('retry'))
        .argument('[id]', 'queue id')
        .option('--all', 'every deferred message (a failed one only by its id)')
        .description('make a deferred or failed message (or --all deferred ones) due at the next uplink run; a recipient already bounced is never bounced again')
        .action((idText: string | undefined, _options: unknown, command: Command) => {
            const options = withParentOptions<ConfigOption & { all?: boolean }>(command);
            return withStore(options, store => {
                if (!idText && !options.all) throw new UsageError('give a queue id or --all');
                const count = store.queue.retry(options.all ? null : parseId(idText!));
                if (!options.all && !count) {
                    const entry = store.queue.get(parseId(idText!));
                    if (!entry) throw new UsageError(`no queue entry ${idText}`);
                    console.log(`message ${entry.id} is ${entry.state}; nothing to retry`);
                    return;
                }
                console.log(`${count} message${count === 1 ? '' : 's'} will be tried at the next uplink run`);
            });
        });

    withConfigOption(queue.command('drop'))
        .argument('<id>', 'queue id')
        .option('-y, --yes', 'do not ask')
        .description('delete a message from the queue without sending it (asks on a terminal)')
        .action(async (idText: string, _options: unknown, command: Command) => {
            const options = withParentOptions<ConfigOption & { yes?: boolean }>(command);
            const id = parseId(idText);
            return withStore(options, async store => {
                const entry = store.queue.get(id);
                if (!entry) throw new UsageError(`no queue entry ${id}`);
                if (!options.yes && process.stdin.isTTY) {
                    const { confirm } = await import('../prompt');
                    const ok = await confirm(`Drop message ${id} from ${entry.mailFrom} to ${entry.recipients.length} recipient(s), "${entry.subject ?? ''}"? [y/N] `);
                    if (!ok) {
                        console.log('kept');
                        return;
                    }
                }
                try {
                    store.queue.drop(id);
                } catch (err) {
                    const code = storeErrorCode(err);
                    if (code === 'BUSY') throw new UsageError(`message ${id} is being sent right now; try again after the run`);
                    if (code === 'NONEXISTENT') throw new UsageError(`no queue entry ${id}`);
                    throw err;
                }
                console.log(`dropped ${id}`);
            });
        });
}
