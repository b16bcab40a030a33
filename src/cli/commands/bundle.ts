/**
 * `mailmule bundle`: relay mode's exchange carried by hand (sneakernet, docs/relay.md). On the
 * Pi, `export` writes the up bundle (the due queue) to a file, `import` applies a down bundle
 * from the relay, and `key` prints this Pi's public key for `mailmule relay pair`.
 */
import type { Command } from 'commander';
import type { LoadedConfig } from '../../config';
import { kb, loadConfig, openStore, withConfigOption, type ConfigOption } from '../common';
import { UsageError } from '../exit-codes';

function plural(count: number, what: string, many = `${what}s`): string {
    return `${count} ${count === 1 ? what : many}`;
}

/** What a down bundle did with bodies the Pi held (messageRef, bodyRef) and stubs asked for whole, when it did anything. */
function refsNote(report: { messagesByRef: number; messagesByBodyRef: number; missingBodies: unknown[]; fetchedFull: number }): string {
    const parts: string[] = [];
    if (report.messagesByRef) parts.push(`${plural(report.messagesByRef, 'message')} from bodies held here`);
    if (report.messagesByBodyRef) parts.push(`${plural(report.messagesByBodyRef, 'message')} rebuilt from their header lines and a body held here`);
    if (report.missingBodies.length) parts.push(`${plural(report.missingBodies.length, 'body', 'bodies')} no longer here, asked for again`);
    if (report.fetchedFull) parts.push(`${plural(report.fetchedFull, 'stub')} replaced by the whole message`);
    return parts.map(part => `, ${part}`).join('');
}

function relayConfig(config: LoadedConfig): NonNullable<LoadedConfig['gateway']['uplink']['relay']> {
    const relay = config.gateway.uplink.relay;
    if (!relay) throw new UsageError(`uplink.relay is not set in ${config.file}: pair this Pi with a relay first (mailmule relay pair, docs/relay.md)`);
    return relay;
}

export function registerBundle(program: Command): void {
    const bundle = program.command('bundle').description("relay mode by hand: carry the Pi's bundles on a USB stick when the link is down");

    withConfigOption(bundle.command('export'))
        .argument('<file>', 'where to write the up bundle')
        .description('write the up bundle (every message due to go out, and what this Pi has applied) to a file')
        .action(async (file: string, options: ConfigOption) => {
            const config = await loadConfig(options);
            const relay = relayConfig(config);
            const { exportUpBundle, PiRelayFiles } = await import('../../relay/pi');
            const store = await openStore(config);
            try {
                const written = await exportUpBundle(store, new PiRelayFiles(config.paths.dataDir), relay.id, file, { sealKey: relay.sealKey, users: config.users, slimHeaders: relay.slimHeaders });
                console.log(
                    `up bundle ${written.seq} (acknowledges down ${written.ack}): ${written.messages} message${written.messages === 1 ? '' : 's'}, ${plural(written.flagChanges, 'flag change')}, ${plural(written.deletions, 'deletion')}${written.fetchFull ? `, ${plural(written.fetchFull, '"Fetch full" request')}` : ''}${written.needBodies ? `, ${plural(written.needBodies, 'body', 'bodies')} asked for again` : ''}, ${kb(written.bytes)}, written to ${file}`
                );
            } finally {
                store.close();
            }
        });

    withConfigOption(bundle.command('import'))
        .argument('<file>', 'a down bundle from the relay')
        .description('check a down bundle from the relay (checksum, signature) and apply it message by message')
        .action(async (file: string, options: ConfigOption) => {
            const config = await loadConfig(options);
            const relay = relayConfig(config);
            const { applyDownBundle, PiRelayFiles } = await import('../../relay/pi');
            const { createLogger } = await import('../../log');
            const { QueueDelivery } = await import('../../queue');
            const logger = createLogger(config.gateway.log.level, process.stderr, config.gateway.log.format);
            const store = await openStore(config);
            try {
                const queue = new QueueDelivery({ store, logger, reportingMta: config.gateway.hostname, maxAgeMs: config.gateway.queue.maxAge * 1000 });
                const report = await applyDownBundle({ store, logger, users: config.users, queue }, new PiRelayFiles(config.paths.dataDir), relay, file);
                if (report.alreadyApplied) {
                    console.log(`down bundle ${report.seq} was applied before; nothing to do`);
                    return;
                }
                console.log(
                    `down bundle ${report.seq} applied: ${report.messages} new message${report.messages === 1 ? '' : 's'} (${report.messagesHere} here already), ${report.deliveries} delivery result${report.deliveries === 1 ? '' : 's'} (${report.deliveriesPassedOver} settled already), ${plural(report.flagChanges, 'flag change')}, ${plural(report.remaps, 're-linked folder')}${refsNote(report)}`
                );
                for (const note of report.notes) console.log(`  ${note}`);
            } finally {
                store.close();
            }
        });

    withConfigOption(bundle.command('key'))
        .description("print this Pi's public key, for `mailmule relay pair` on the relay")
        .action(async (options: ConfigOption) => {
            const config = await loadConfig(options);
            const { PiRelayFiles } = await import('../../relay/pi');
            const { publicKeyText } = await import('../../bundle');
            console.log(publicKeyText(new PiRelayFiles(config.paths.dataDir).signingKey().publicKey));
        });
}
