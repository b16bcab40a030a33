/**
 * The uplink's settings, read from the configuration at the start of every run (so a SIGHUP
 * applies from the next run on), and the one way to build an UplinkRunner: the daemon and a
 * standalone `mailmule sync` both call createUplinkRunner.
 */
import type { LoadedConfig } from '../config';
import type { Logger } from '../log';
import type { Store } from '../store';
import { UplinkRunner } from './runner';

export interface UplinkSettings {
    up: string | null;
    probe: string | null;
    down: string | null;
    hookTimeoutMs: number;
    budgetPerRun: number;
    budgetPerDay: number;
    queueMaxAgeMs: number;
    flagScanIntervalMs: number;
    hostname: string;
    localDomain: string;
    /** uplink.mode relay: the relay this Pi exchanges bundles with instead of talking to providers (src/relay). */
    relay: { url: string; id: string; key: string; sealKey: string; fingerprint: string | null } | null;
}

export function uplinkSettings(config: LoadedConfig): UplinkSettings {
    const uplink = config.gateway.uplink;
    return {
        up: uplink.up,
        probe: uplink.probe,
        down: uplink.down,
        hookTimeoutMs: uplink.hookTimeout * 1000,
        budgetPerRun: uplink.budget.perRun,
        budgetPerDay: uplink.budget.perDay,
        queueMaxAgeMs: config.gateway.queue.maxAge * 1000,
        flagScanIntervalMs: uplink.flagScanInterval * 1000,
        hostname: config.gateway.hostname,
        localDomain: config.gateway.localDomain,
        relay: uplink.mode === 'relay' ? uplink.relay : null
    };
}

/** The uplink as the daemon and a standalone `mailmule sync` both build it; `config` is read at each run. */
export function createUplinkRunner(store: Store, logger: Logger, config: () => LoadedConfig): UplinkRunner {
    return new UplinkRunner(
        store,
        logger,
        () => config().users,
        () => uplinkSettings(config())
    );
}
