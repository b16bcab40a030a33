/** `mailmule start`: the gateway in the foreground, as systemd runs it. */
import type { Command } from 'commander';
import { configPath, withConfigOption, type ConfigOption } from '../common';
import { EXIT } from '../exit-codes';

export function registerStart(program: Command): void {
    withConfigOption(program.command('start'))
        .description('run the gateway in the foreground (SIGTERM stops it, SIGHUP reloads both YAML files)')
        .action(async (options: ConfigOption) => {
            const file = await configPath(options);
            process.stderr.write(`mailmule: using ${file}\n`);
            const { Daemon } = await import('../../daemon');
            const daemon = new Daemon(file);
            await daemon.start();
            let stopping = false;
            const stop = (signal: string) => {
                if (stopping) return;
                stopping = true;
                daemon.logger.info({ signal }, 'stopping');
                daemon.stop().then(
                    () => process.exit(EXIT.OK),
                    err => {
                        daemon.logger.error({ err }, 'error while stopping');
                        process.exit(EXIT.FAILURE);
                    }
                );
            };
            process.on('SIGTERM', () => stop('SIGTERM'));
            process.on('SIGINT', () => stop('SIGINT'));
            process.on('SIGHUP', () => daemon.reload());
            // Runs until a signal ends the process.
            await new Promise(() => {});
        });
}
