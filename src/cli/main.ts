#!/usr/bin/env node
/**
 * The `mailmule` command.
 *
 * Exit codes: 0 success; 1 a runtime failure; 2 invalid configuration; 3 bad arguments
 * (unknown user, unreadable path, usage); 8 `start` could not bind a listener.
 */
import fs from 'node:fs';
import { Command, CommanderError } from 'commander';
import { loadConfig, defaultConfigPath, ConfigError, type LoadedConfig } from '../config';
import { Store } from '../store';
import { hashPassword } from '../auth';
import { VERSION } from '../daemon';
import { runForeground } from '../foreground';
import { ListenError } from '../listen';
import { readMaildir } from './maildir';
import { normaliseLineEnds } from '../smtp/headers';
import { promptHidden, readStdinLine } from './prompt';
import { registerQueueCommands } from './queue-commands';
import { registerUplinkCommands } from './uplink-commands';
import { registerInitCommand } from './init-command';

/** LISTEN_FAILED: `start` could not bind a listener (a port in use, no privilege, another daemon on the data directory). */
export const EXIT = { OK: 0, FAILURE: 1, CONFIG: 2, USAGE: 3, LISTEN_FAILED: 8 } as const;

class UsageError extends Error {}

function configPath(options: { config?: string }): string {
    return options.config ?? defaultConfigPath();
}

function load(options: { config?: string }): LoadedConfig {
    return loadConfig(configPath(options));
}

function openStore(config: LoadedConfig): Store {
    return new Store({ dataDir: config.paths.dataDir });
}

function requireUser(config: LoadedConfig, name: string) {
    const user = config.users.find(u => u.name.toLowerCase() === name.toLowerCase());
    if (!user) {
        throw new UsageError(`no user "${name}" in ${config.accountsFile}; add it there first`);
    }
    return user;
}

function withConfigOption(command: Command): Command {
    return command.option('-c, --config <file>', 'gateway config file (default: /etc/mailmule/mailmule.yaml if it exists, else ./config/mailmule.yaml)');
}

export function buildProgram(): Command {
    const program = new Command();
    program
        .name('mailmule')
        .description('A mail gateway for a village LAN behind a slow, costly uplink.')
        .version(VERSION)
        .showHelpAfterError()
        .exitOverride();

    withConfigOption(program.command('start'))
        .description('run the gateway in the foreground (SIGTERM stops it, SIGHUP reloads both YAML files)')
        .action(async (options: { config?: string }) => {
            let code: number = EXIT.OK;
            try {
                await runForeground(configPath(options));
            } catch (err) {
                if (!(err instanceof ListenError)) throw err;
                process.stderr.write(`mailmule: ${err.message}\n`);
                code = EXIT.LISTEN_FAILED;
            }
            // Exit now rather than when the event loop drains: after a clean stop an uplink run may
            // still hold a connection to a provider, and the store is closed either way.
            process.exit(code);
        });

    withConfigOption(program.command('check'))
        .description('validate mailmule.yaml and accounts.yaml and print a summary')
        .action((options: { config?: string }) => {
            const config = load(options);
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
            console.log('ok');
        });

    withConfigOption(program.command('passwd'))
        .argument('<user>', 'a user named in accounts.yaml')
        .description('set the LAN password of a user (read from stdin when stdin is not a terminal)')
        .action(async (name: string, options: { config?: string }) => {
            const config = load(options);
            const user = requireUser(config, name);
            let password: string;
            if (process.stdin.isTTY) {
                password = await promptHidden(`New password for ${user.name}: `);
                const again = await promptHidden('Again: ');
                if (password !== again) throw new UsageError('the passwords do not match');
            } else {
                password = await readStdinLine();
            }
            if (password.length < 4) throw new UsageError('the password must have at least 4 characters');
            const store = openStore(config);
            try {
                store.setPasswordHash(user.name, await hashPassword(password));
            } finally {
                store.close();
            }
            console.log(`password set for ${user.name}`);
        });

    withConfigOption(program.command('users'))
        .description('list users, their upstream accounts, mailboxes and bytes stored')
        .option('--json', 'print JSON')
        .action((options: { config?: string; json?: boolean }) => {
            const config = load(options);
            const store = openStore(config);
            try {
                const stats = new Map(store.userSummaries().map(row => [row.name.toLowerCase(), row]));
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
            } finally {
                store.close();
            }
        });

    withConfigOption(program.command('import'))
        .argument('<user>', 'a user named in accounts.yaml')
        .argument('<maildir>', 'a Maildir (Dovecot, OfflineIMAP, mbsync); Maildir++ subfolders are imported too')
        .description('import existing mail from a Maildir into a user\'s mailboxes')
        .action((name: string, dir: string, options: { config?: string }) => {
            const config = load(options);
            const user = requireUser(config, name);
            if (!fs.existsSync(dir)) throw new UsageError(`${dir}: no such directory`);
            let folders: ReturnType<typeof readMaildir>;
            try {
                folders = readMaildir(dir);
            } catch (err) {
                // Not a Maildir (no cur/ or new/) is a bad argument (exit 3), like a missing directory.
                throw new UsageError((err as Error).message);
            }
            const store = openStore(config);
            try {
                const row = store.ensureUser(user.name);
                let total = 0;
                for (const folder of folders) {
                    let mailbox = store.getMailbox(row.id, folder.path);
                    if (!mailbox) {
                        const created = store.createMailbox(row.id, folder.path);
                        if (typeof created !== 'number') throw new UsageError(`cannot create mailbox ${folder.path}: ${created}`);
                        mailbox = store.getMailboxById(row.id, created)!;
                    }
                    // Up to a few hundred messages per commit (each file is still fsynced before its row
                    // is written), but the write lock is held for at most ~200 ms at a time and then
                    // left free for 100 ms: a running daemon waits for it (busy_timeout), polling at
                    // most every 100 ms, and would otherwise never find it free.
                    const target = mailbox;
                    for (let next = 0; next < folder.messages.length; ) {
                        if (next > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
                        store.batch(() => {
                            const until = Date.now() + 200;
                            const end = Math.min(next + 200, folder.messages.length);
                            const first = next;
                            while (next < end && (next === first || Date.now() < until)) {
                                const message = folder.messages[next++];
                                // Maildirs (Dovecot, mbsync) keep bare LF line ends; IMAP serves CRLF (RFC 3501), as SMTP intake stores it.
                                const raw = normaliseLineEnds(fs.readFileSync(message.file));
                                store.addMessage(row.id, target.id, raw, { flags: message.flags, idate: message.idate });
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

    registerQueueCommands(program, { load, openStore, withConfigOption, usageError: message => new UsageError(message) });
    registerUplinkCommands(program, { load, openStore, withConfigOption });
    registerInitCommand(program, { usageError: message => new UsageError(message) });

    return program;
}

export async function main(argv: string[]): Promise<number> {
    const program = buildProgram();
    try {
        await program.parseAsync(argv);
        // A command may set its own code (sync: 4 skipped, 5 busy, 1 failed).
        return typeof process.exitCode === 'number' ? process.exitCode : EXIT.OK;
    } catch (err) {
        if (err instanceof CommanderError) {
            if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return EXIT.OK;
            return EXIT.USAGE;
        }
        if (err instanceof ConfigError) {
            for (const problem of err.problems) process.stderr.write(`mailmule: ${problem}\n`);
            return EXIT.CONFIG;
        }
        if (err instanceof UsageError) {
            process.stderr.write(`mailmule: ${err.message}\n`);
            return EXIT.USAGE;
        }
        process.stderr.write(`mailmule: ${(err as Error).message}\n`);
        return EXIT.FAILURE;
    }
}

if (require.main === module) {
    main(process.argv).then(code => {
        process.exitCode = code;
    });
}
