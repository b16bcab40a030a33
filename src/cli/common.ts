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
 * The store, for one command, read through SQLite's quick_check first, as the daemon and restore
 * do: a damaged store fails every command (exit code 7), not only the ones that happen to read a
 * damaged page. Without it, a store with a run of zeroed pages (a bad block) or random bytes
 * written over some of them gave `status` and `queue` their usual answer and exit code 0. The
 * cost, measured on a store of 10,000 messages (96 MB database): opening it takes 0.33–0.35 s
 * instead of 0.002–0.02 s once the file is in the page cache, and up to 1.2 s when it is not (x86
 * under load; expect a few times that on a Pi reading an SD card). A command already costs
 * 2.4–3.5 s of wall time on the same machine, most of it loading Node and the modules.
 */
export async function openStore(config: LoadedConfig): Promise<Store> {
    const { Store } = await import('../store');
    return new Store({ dataDir: config.paths.dataDir, quickCheck: true });
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
