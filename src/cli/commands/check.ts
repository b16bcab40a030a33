/**
 * `mailmule check`: validates both YAML files and prints what they configure. Stricter than
 * loading: an upstream account without credentials is refused here (exit 2, the line named).
 */
import type { Command } from 'commander';
import { loadConfig, withConfigOption, type ConfigOption } from '../common';

export function registerCheck(program: Command): void {
    withConfigOption(program.command('check'))
        .description('validate mailmule.yaml and accounts.yaml and print a summary')
        .action(async (options: ConfigOption) => {
            const config = await loadConfig(options);
            const { accountsWithoutCredentials, ConfigError } = await import('../../config');
            const problems = accountsWithoutCredentials(config);
            if (problems.length) throw new ConfigError(problems);
            const accounts = config.users.reduce((sum, user) => sum + user.accounts.length, 0);
            const gateway = config.gateway;
            console.log(`config:    ${config.file}`);
            console.log(`accounts:  ${config.accountsFile}`);
            console.log(`data:      ${config.paths.dataDir}`);
            console.log(`users:     ${config.users.length} (${config.users.map(u => u.name).join(', ') || 'none'})`);
            console.log(`upstream:  ${accounts} account${accounts === 1 ? '' : 's'}`);
            const listeners = (list: typeof gateway.imap.listeners) =>
                list.map(l => `${l.host}:${l.port} ${l.security}${l.allowPlaintextAuth ? ' (plaintext auth allowed)' : ''}`).join(', ') || 'none';
            console.log(`imap:      ${listeners(gateway.imap.listeners)}`);
            console.log(`smtp:      ${listeners(gateway.smtp.listeners)}`);
            console.log(`web:       ${gateway.web.listeners.map(l => `${l.host}:${l.port} ${l.security}`).join(', ') || 'none'}`);
            console.log('ok');
        });
}
