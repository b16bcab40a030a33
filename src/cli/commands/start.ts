/** `mailmule start`: the gateway in the foreground, as systemd runs it (src/foreground.ts: start whole or not at all, signals). */
import type { Command } from 'commander';
import { configPath, withConfigOption, type ConfigOption } from '../common';
import { EXIT } from '../exit-codes';

export function registerStart(program: Command): void {
    withConfigOption(program.command('start'))
        .description('run the gateway in the foreground (SIGTERM stops it, SIGHUP reloads both YAML files)')
        .action(async (options: ConfigOption) => {
            const file = await configPath(options);
            const { runForeground } = await import('../../foreground');
            await runForeground(file);
            // Exit now rather than when the event loop drains: after a clean stop an uplink run may
            // still hold a connection to a provider, and the store is closed either way. A failed
            // start rejects above, and exit-codes.ts picks its code (LISTEN_FAILED for a listener).
            process.exit(EXIT.OK);
        });
}
