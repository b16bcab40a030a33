/** `mailmule passwd USER`: sets a user's LAN password (IMAP and SMTP login). */
import type { Command } from 'commander';
import { loadConfig, openStore, requireUser, withConfigOption, type ConfigOption } from '../common';
import { UsageError } from '../exit-codes';

export function registerPasswd(program: Command): void {
    withConfigOption(program.command('passwd'))
        .argument('<user>', 'a user named in accounts.yaml')
        .description('set the LAN password of a user (read from stdin when stdin is not a terminal)')
        .action(async (name: string, options: ConfigOption) => {
            const config = await loadConfig(options);
            const user = requireUser(config, name);
            const { promptHidden, readStdinLine } = await import('../prompt');
            let password: string;
            if (process.stdin.isTTY) {
                password = await promptHidden(`New password for ${user.name}: `);
                const again = await promptHidden('Again: ');
                if (password !== again) throw new UsageError('the passwords do not match');
            } else {
                password = await readStdinLine();
            }
            if (password.length < 4) throw new UsageError('the password must have at least 4 characters');
            const { hashPassword } = await import('../../auth');
            const hash = await hashPassword(password);
            const store = await openStore(config);
            try {
                store.users.setPasswordHash(user.name, hash);
            } finally {
                store.close();
            }
            console.log(`password set for ${user.name}`);
        });
}
