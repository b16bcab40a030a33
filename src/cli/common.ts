/**
 * What most commands share: the -c option, loading the configuration, opening the store, finding
 * a user. The config (yaml, zod) and the store (SQLite, the MIME indexer) are loaded when a
 * command first asks for them, not when the program starts: `--version` and `--help` need neither.
 */
import type { Command } from 'commander';
import type { LoadedConfig, ResolvedUser } from '../config';
import type { Store } from '../store';
import { UsageError } from './exit-codes';

export interface ConfigOption {
    config?: string;
}

export function withConfigOption(command: Command): Command {
    return command.option('-c, --config <file>', 'gateway config file (default: /etc/mailmule/mailmule.yaml if it exists, else ./config/mailmule.yaml)');
}

export async function configPath(options: ConfigOption): Promise<string> {
    if (options.config) return options.config;
    const { defaultConfigPath } = await import('../config');
    return defaultConfigPath();
}

export async function loadConfig(options: ConfigOption): Promise<LoadedConfig> {
    const file = await configPath(options);
    const config = await import('../config');
    return config.loadConfig(file);
}

/**
 * The store, for one command. Without quick_check by default: reading the whole database would
 * cost a second or more per command on a Pi with years of mail; the daemon checks it at start,
 * and a damaged page a command does meet still fails it (SQLITE_CORRUPT, exit code 7).
 */
export async function openStore(config: LoadedConfig, options: { quickCheck?: boolean } = {}): Promise<Store> {
    const { Store } = await import('../store');
    return new Store({ dataDir: config.paths.dataDir, quickCheck: options.quickCheck ?? false });
}

/** Runs `fn` with the store of the configured data directory, closing it afterwards whatever happens. */
export async function withStore<T>(options: ConfigOption, fn: (store: Store, config: LoadedConfig) => T | Promise<T>): Promise<T> {
    const config = await loadConfig(options);
    const store = await openStore(config);
    try {
        return await fn(store, config);
    } finally {
        store.close();
    }
}

export function requireUser(config: LoadedConfig, name: string): ResolvedUser {
    const user = config.users.find(u => u.name.toLowerCase() === name.toLowerCase());
    if (!user) {
        throw new UsageError(`no user "${name}" in ${config.accountsFile}; add it there first`);
    }
    return user;
}

/** Bytes for people: KB below a megabyte, MB above. */
export function kb(bytes: number): string {
    return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(2)} MB` : `${(bytes / 1024).toFixed(1)} KB`;
}
