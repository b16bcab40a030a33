/** `mailmule import USER MAILDIR`: brings a village's existing mail over from the hand-built stack. */
import fs from 'node:fs';
import type { Command } from 'commander';
import { loadConfig, openStore, requireUser, withConfigOption, type ConfigOption } from '../common';
import { UsageError } from '../exit-codes';
import { storeErrorCode } from '../../store/errors';
import { readMaildir, readMessage } from '../maildir';

export function registerImport(program: Command): void {
    withConfigOption(program.command('import'))
        .argument('<user>', 'a user named in accounts.yaml')
        .argument('<maildir>', 'a Maildir (Dovecot, OfflineIMAP, mbsync); Maildir++ subfolders are imported too')
        .description("import existing mail from a Maildir into a user's mailboxes")
        .action(async (name: string, dir: string, options: ConfigOption) => {
            const config = await loadConfig(options);
            const user = requireUser(config, name);
            if (!fs.existsSync(dir)) throw new UsageError(`${dir}: no such directory`);
            let folders: ReturnType<typeof readMaildir>;
            try {
                folders = readMaildir(dir);
            } catch (err) {
                // Not a Maildir (no cur/ or new/) is a bad argument, like a missing directory.
                throw new UsageError((err as Error).message);
            }
            const store = await openStore(config);
            try {
                const row = store.users.ensure(user.name);
                let total = 0;
                for (const folder of folders) {
                    let mailbox = store.mailboxes.get(row.id, folder.path);
                    if (!mailbox) {
                        let created: number;
                        try {
                            created = store.mailboxes.create(row.id, folder.path);
                        } catch (err) {
                            const code = storeErrorCode(err);
                            if (!code) throw err;
                            throw new UsageError(`cannot create mailbox ${folder.path}: ${code}`);
                        }
                        mailbox = store.mailboxes.getById(row.id, created)!;
                    }
                    // Up to a few hundred messages per commit (each file is still fsynced before its row
                    // is written), but the write lock is held for at most ~200 ms at a time and then
                    // left free for 100 ms: a running daemon waits for it (busy_timeout), polling at
                    // most every 100 ms, and would otherwise never find it free.
                    const target = mailbox;
                    for (let next = 0; next < folder.messages.length;) {
                        if (next > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
                        store.batch(() => {
                            const until = Date.now() + 200;
                            const end = Math.min(next + 200, folder.messages.length);
                            const first = next;
                            while (next < end && (next === first || Date.now() < until)) {
                                const message = folder.messages[next++];
                                store.messages.add(row.id, target.id, readMessage(message), { flags: message.flags, idate: message.idate });
                            }
                        });
                    }
                    total += folder.messages.length;
                    console.log(`${folder.path}: ${folder.messages.length} messages`);
                }
                console.log(`imported ${total} messages for ${user.name}`);
            } finally {
                store.close();
            }
        });
}
