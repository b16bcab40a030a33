/**
 * `mailmule check`: validates both YAML files and prints what they configure. Stricter than
 * loading: an upstream account without credentials is refused here (exit 2, the line named).
 *
 * With --json the summary is one JSON object on stdout, `"ok": true`; an invalid configuration
 * prints `{"ok": false, "problems": [...]}` (each problem as on stderr, file:line:col) and still
 * exits 2.
 */
import type { Command } from 'commander';
import { loadConfig, withConfigOption, type ConfigOption } from '../common';

interface CheckOptions extends ConfigOption {
    json?: boolean;
}

export function registerCheck(program: Command): void {
    withConfigOption(program.command('check'))
        .description('validate mailmule.yaml and accounts.yaml and print a summary')
        .option('--json', 'print the summary (or the problems) as JSON')
        .action(async (options: CheckOptions) => {
            const { accountsWithoutCredentials, ConfigError } = await import('../../config');
            let config: Awaited<ReturnType<typeof loadConfig>>;
            try {
                config = await loadConfig(options);
                const problems = accountsWithoutCredentials(config);
                if (problems.length) throw new ConfigError(problems);
            } catch (err) {
                if (options.json && err instanceof ConfigError) console.log(JSON.stringify({ ok: false, problems: err.problems }, null, 2));
                throw err;
            }
            const accounts = config.users.reduce((sum, user) => sum + user.accounts.length, 0);
            const gateway = config.gateway;
            if (options.json) {
                const listeners = (list: typeof gateway.imap.listeners) => list.map(l => ({ host: l.host, port: l.port, security: l.security, allowPlaintextAuth: l.allowPlaintextAuth }));
                const summary = {
                    ok: true,
                    config: config.file,
                    accounts: config.accountsFile,
                    dataDir: config.paths.dataDir,
                    users: config.users.map(user => ({ name: user.name, accounts: user.accounts.map(account => account.address) })),
                    upstreamAccounts: accounts,
                    imap: listeners(gateway.imap.listeners),
                    smtp: listeners(gateway.smtp.listeners),
                    web: gateway.web.listeners.map(l => ({ host: l.host, port: l.port, security: l.security }))
                };
                console.log(JSON.stringify(summary, null, 2));
                return;
            }
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
