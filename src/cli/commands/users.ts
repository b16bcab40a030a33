/** `mailmule users`: who is configured, whether they have a password, and what they store. */
import type { Command } from 'commander';
import { withConfigOption, withStore, type ConfigOption } from '../common';

export function registerUsers(program: Command): void {
    withConfigOption(program.command('users'))
        .description('list users, their upstream accounts, mailboxes and bytes stored')
        .option('--json', 'print JSON')
        .action((options: ConfigOption & { json?: boolean }) =>
            withStore(options, (store, config) => {
                const stats = new Map(store.users.summaries().map(row => [row.name.toLowerCase(), row]));
                const rows = config.users.map(user => {
                    const stat = stats.get(user.name.toLowerCase());
                    return {
                        name: user.name,
                        address: `${user.name}@${config.gateway.localDomain}`,
                        accounts: user.accounts.map(a => a.address),
                        password: Boolean(stat?.hasPassword),
                        mailboxes: stat?.mailboxes ?? 0,
                        messages: stat?.messages ?? 0,
                        bytes: stat?.bytes ?? 0
                    };
                });
                if (options.json) {
                    console.log(JSON.stringify(rows, null, 2));
                    return;
                }
                for (const row of rows) {
                    console.log(
                        `${row.name.padEnd(16)} ${row.password ? 'password set' : 'NO PASSWORD '}  ${String(row.mailboxes).padStart(3)} mailboxes  ${String(row.messages).padStart(7)} messages  ${String(row.bytes).padStart(12)} bytes  ${[row.address, ...row.accounts].join(', ')}`
                    );
                }
            })
        );
}
