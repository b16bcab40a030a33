/**
 * `mailmule restore DIR`: brings a backup made by `mailmule backup` back into the configured data
 * directory, which must be empty. Everything is checked on the way (the database's integrity,
 * its store id against the backup's, every referenced message file present and matching its
 * hash) and once more by opening the restored store.
 */
import path from 'node:path';
import type { Command } from 'commander';
import { kb, loadConfig, openStore, withConfigOption, type ConfigOption } from '../common';

export function registerRestore(program: Command): void {
    withConfigOption(program.command('restore'))
        .argument('<dir>', 'a directory written by `mailmule backup`')
        .description('restore a backup into the (empty) data directory and check it; mailmule must not be running')
        .option('--json', 'print JSON')
        .action(async (dir: string, options: ConfigOption & { json?: boolean }) => {
            const config = await loadConfig(options);
            const { restoreStore } = await import('../../store');
            const report = restoreStore(path.resolve(dir), config.paths.dataDir);
            // Open it as mailmule start will: the identity check and a full integrity check.
            const store = await openStore(config);
            let integrity: string;
            try {
                integrity = store.integrityCheck();
            } finally {
                store.close();
            }
            if (integrity !== 'ok') throw new Error(`the restored store failed its integrity check: ${integrity}`);
            if (options.json) {
                console.log(JSON.stringify({ dataDir: config.paths.dataDir, ...report, integrity }, null, 2));
                return;
            }
            console.log(`restored store ${report.storeId} into ${config.paths.dataDir}: ${report.messageFiles} message files (${kb(report.bytes)}), every one checked; integrity ok`);
        });
}
