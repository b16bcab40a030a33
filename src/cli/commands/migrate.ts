/**
 * `mailmule migrate`: brings a store up to date offline: the schema migrations (which every start
 * runs too), then what they leave to do for rows stored before them (header summaries, compressed
 * MIME trees, packed search text, small messages moved into the database; src/store/store.ts
 * compact). Resumable: interrupted, the next run (or start) goes on where it stopped; every
 * message keeps its bytes. `--vacuum` then gives the space freed back to the file system.
 */
import type { Command } from 'commander';
import { withConfigOption, withStore, type ConfigOption } from '../common';

export function registerMigrate(program: Command): void {
    withConfigOption(program.command('migrate'))
        .description('bring the store up to date now (schema, then compaction of messages stored by older versions); start does the same')
        .option('--vacuum', 'afterwards rewrite the database without its free pages (stop mailmule first; needs free space as large as the database)')
        .option('--json', 'print JSON')
        .action((options: ConfigOption & { vacuum?: boolean; json?: boolean }) =>
            withStore(options, store => {
                const report = store.compact();
                if (options.vacuum) store.vacuum();
                if (options.json) {
                    console.log(JSON.stringify({ ...report, vacuumed: Boolean(options.vacuum) }, null, 2));
                    return;
                }
                console.log(
                    `store up to date: ${report.headerSummaries} header summaries filled, ${report.trees} MIME trees compressed, ` +
                        `${report.searchTexts} search texts packed, ${report.inlined} small messages moved into the database${options.vacuum ? '; database vacuumed' : ''}`
                );
            })
        );
}
