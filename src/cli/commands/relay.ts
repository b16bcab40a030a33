/**
 * `mailmule relay`: the cloud side of relay mode (docs/relay.md). `relay start` serves paired Pis
 * over HTTPS; `relay pair` registers a Pi's key and prints what the Pi's uplink.relay needs.
 * Neither reads mailmule.yaml: a relay is configured by its directory and options alone.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../exit-codes';

interface RelayDirOption {
    dir: string;
    hostname: string;
}

/**
 * The relay's TLS: a local CA of its own under <dir>/tls issues the serving certificate (as on the
 * Pi, src/tls). Pis pin the CA's fingerprint, not the serving certificate's, so the yearly renewal
 * at start-up does not break a pairing.
 */
async function relayTls(options: RelayDirOption & { localDomain?: string }): Promise<{ cert: Buffer; key: Buffer; fingerprint: string }> {
    const { ServingTls } = await import('../../tls');
    const serving = await ServingTls.open({ certFile: null, keyFile: null, dataDir: options.dir, hostname: options.hostname, localDomain: options.localDomain ?? 'mailmule.lan' });
    const pair = serving.pair;
    if (!pair.caCert) throw new Error('the relay has no local CA');
    return { cert: pair.cert, key: pair.key, fingerprint: new crypto.X509Certificate(pair.caCert).fingerprint256 };
}

export function registerRelay(program: Command): void {
    const relay = program.command('relay').description('run a mailmule relay (on a cloud VM) for Pis in relay mode');

    relay
        .command('start')
        .description('serve paired Pis over HTTPS: take their up bundles, do their provider work, hand back down bundles')
        .requiredOption('--dir <dir>', "the relay's directory (keys, TLS certificate, each Pi's bundles and store)")
        .option('--host <address>', 'address to listen on', '0.0.0.0')
        .option('--port <port>', 'port to listen on (0: any free port, printed)', '8443')
        .option('--hostname <name>', 'the name in greetings and the generated certificate', 'mailmule-relay')
        .option('--local-domain <domain>', 'the local domain for the uplink code', 'mailmule.lan')
        .action(async (options: RelayDirOption & { host: string; port: string; localDomain: string }) => {
            const port = Number(options.port);
            if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port ${options.port}: expected a port number`);
            fs.mkdirSync(options.dir, { recursive: true, mode: 0o700 });
            const { RelayHome, startRelayServer } = await import('../../relay/server');
            const { createLogger } = await import('../../log');
            const logger = createLogger('info', process.stderr, 'json');
            const home = new RelayHome(options.dir);
            home.checkPiStates();
            const tls = await relayTls(options);
            const server = await startRelayServer({ home, host: options.host, port, tls, logger, names: { hostname: options.hostname, localDomain: options.localDomain } });
            console.log(`relay listening on ${options.host}:${server.port}`);
            await new Promise<void>(resolve => {
                const stop = () => {
                    process.off('SIGTERM', stop);
                    process.off('SIGINT', stop);
                    void server.close().then(resolve);
                };
                process.on('SIGTERM', stop);
                process.on('SIGINT', stop);
            });
        });

    relay
        .command('exchange')
        .description('sneakernet on the relay: process an up bundle brought as a file, and write the down bundles for the Pi to a directory')
        .requiredOption('--dir <dir>', "the relay's directory (the relay must not be serving this Pi meanwhile)")
        .requiredOption('--pi <id>', "the Pi's id")
        .requiredOption('--up <file>', 'the up bundle (`mailmule bundle export` on the Pi)')
        .requiredOption('--out <dir>', 'where to write the down bundles, for `mailmule bundle import` on the Pi')
        .option('--hostname <name>', 'the name in greetings', 'mailmule-relay')
        .option('--local-domain <domain>', 'the local domain for the uplink code', 'mailmule.lan')
        .action(async (options: RelayDirOption & { pi: string; up: string; out: string; localDomain: string }) => {
            const { RelayHome, PiExchange } = await import('../../relay/server');
            const { createLogger } = await import('../../log');
            const home = new RelayHome(options.dir);
            const pi = home.pi(options.pi);
            if (!pi) throw new UsageError(`no Pi "${options.pi}" is paired with this relay (mailmule relay pair)`);
            const exchange = new PiExchange(home, pi, createLogger('warn', process.stderr, 'json'), { hostname: options.hostname, localDomain: options.localDomain });
            try {
                const seq = await exchange.adopt(options.up);
                const down = await exchange.exchange(seq, { acknowledgeChanges: true });
                fs.mkdirSync(options.out, { recursive: true });
                for (const bundle of down) {
                    const target = path.join(options.out, `${options.pi}-down-${bundle.seq}.bundle`);
                    fs.copyFileSync(exchange.downFile(bundle.seq), target);
                    console.log(`${target} (${bundle.bytes} bytes)`);
                }
                if (!down.length) console.log('nothing for the Pi');
            } finally {
                exchange.close();
            }
        });

    relay
        .command('pair')
        .description('register a Pi (its key from `mailmule bundle key`) and print the lines of its uplink.relay')
        .requiredOption('--dir <dir>', "the relay's directory")
        .requiredOption('--pi <id>', "the Pi's id: letters, digits, '.', '_', '-'")
        .requiredOption('--key <key>', "the Pi's public key, as `mailmule bundle key` prints it")
        .option('--hostname <name>', 'the name in the generated certificate', 'mailmule-relay')
        .action(async (options: RelayDirOption & { pi: string; key: string }) => {
            fs.mkdirSync(options.dir, { recursive: true, mode: 0o700 });
            const { RelayHome } = await import('../../relay/server');
            const home = new RelayHome(options.dir);
            try {
                home.pair(options.pi, options.key);
            } catch (err) {
                throw new UsageError((err as Error).message);
            }
            const tls = await relayTls(options);
            console.log(`paired ${options.pi}; on the Pi, under uplink: (with mode: relay)`);
            console.log('  relay:');
            console.log('    url: https://<this relay>:<port>');
            for (const line of home.pairingLines(options.pi, tls.fingerprint)) console.log(`    ${line}`);
        });
}
