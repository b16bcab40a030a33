#!/usr/bin/env node
/**
 * The `mailmule` command: one module per command in commands/, registered here.
 *
 * Registering a command only declares its arguments and options; its action loads what it needs
 * (config, store, daemon, uplink) when it runs. `mailmule --version` and `--help` load commander
 * and nothing of mailmule but the version, and `status` does not load the IMAP and SMTP servers.
 *
 * Exit codes: exit-codes.ts, the one table (also in README, "Commands").
 */
import { Command } from 'commander';
import { VERSION } from '../version';
import { registerBackup } from './commands/backup';
import { registerBundle } from './commands/bundle';
import { registerCheck } from './commands/check';
import { registerImport } from './commands/import';
import { registerInit } from './commands/init';
import { registerMigrate } from './commands/migrate';
import { registerPasswd } from './commands/passwd';
import { registerQueue } from './commands/queue';
import { registerRelay } from './commands/relay';
import { registerRestore } from './commands/restore';
import { registerStart } from './commands/start';
import { registerStatus } from './commands/status';
import { registerSync } from './commands/sync';
import { registerUsers } from './commands/users';
import { EXIT, exitCodeFor, failureLines, type ExitCode } from './exit-codes';

export function buildProgram(): Command {
    const program = new Command();
    program.name('mailmule').description('A mail gateway for a village LAN behind a slow, costly uplink.').version(VERSION).showHelpAfterError().exitOverride();
    for (const register of [
        registerStart,
        registerCheck,
        registerPasswd,
        registerUsers,
        registerImport,
        registerQueue,
        registerSync,
        registerStatus,
        registerBackup,
        registerRestore,
        registerMigrate,
        registerInit,
        registerBundle,
        registerRelay
    ]) {
        register(program);
    }
    return program;
}

export async function main(argv: string[]): Promise<ExitCode> {
    try {
        await buildProgram().parseAsync(argv);
        return EXIT.OK;
    } catch (err) {
        // Under systemd, as errors in the journal (`journalctl -p err`), not at its default priority.
        const { journalPrefix } = await import('../log/format');
        const prefix = journalPrefix(2, 3);
        for (const line of failureLines(err)) process.stderr.write(`${prefix}${line}\n`);
        return exitCodeFor(err);
    }
}

if (require.main === module) {
    main(process.argv).then(
        code => {
            process.exitCode = code;
        },
        (err: unknown) => {
            // main() turns every failure into an exit code: a rejection here is a bug in that reporting.
            console.error(err);
            process.exitCode = EXIT.FAILURE;
        }
    );
}
