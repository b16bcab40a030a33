/**
 * `mailmule backup DIR`: a consistent copy of the store while the daemon runs (SQLite's online
 * backup plus the message files the copy references; see src/store/backup.ts). Incremental: a
 * message file already in DIR is not copied again, so a nightly run to a USB stick copies only
 * the day's mail.
 */
import path from 'node:path';
import type { Command } from 'commander';
import { kb, withConfigOption, withStore, type ConfigOption } from '../common';

export function registerBackup(program: Command): void {
    withConfigOption(program.command('backup'))
        .argument('<dir>', 'backup directory (created if missing; an earlier backup of this store there is updated)')
        .description('copy the store (database and message files) into DIR while mailmule runs; only new message files are copied')
        .option('--json', 'print JSON')
        .action((dir: string, options: ConfigOption & { json?: boolean }) =>
            withStore(options, async store => {
                const target = path.resolve(dir);
                const report = await store.backup(target);
                if (options.json) {
                    console.log(JSON.stringify({ dir: target, ...report }, null, 2));
                    return;
                }
                console.log(
                    `backed up store ${report.storeId} to ${target}: ${report.messageFiles} message files ` +
                        `(${report.copied} copied, ${kb(report.bytesCopied)}; ${report.messageFiles - report.copied} already there; ${report.pruned} no longer needed removed)`
                );
            })
        );
}
