/**
 * Relay mode's test rig (issue 14, docs/relay.md): a real `mailmule relay` process paired with
 * `mailmule relay pair`, a cutting link proxy in front of it, the real Dovecot + Postfix
 * upstream on loopback, and an in-process gateway (the Pi) in uplink.mode relay.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BundleReader, generateSigningKey, publicKeyFromText, publicKeyText, type BundleRecord } from '../../src/bundle';
import { startGateway, tempDir, type Gateway, type TestUser } from './gateway';
import { MAIN, runMailmule } from './daemon-process';
import { startLinkProxy, type LinkProxy } from './link-proxy';
import { describeRun } from './run-process';
import { startUpstream, type Upstream, type UpstreamOptions } from './upstream';
import { withTimeout } from './wait';

export const ALICE = 'alice@upstream.test';
export const PI = 'village-1';

export interface Relay {
    dir: string;
    port: number;
    pairing: { key: string; sealKey: string; fingerprint: string };
    process: ChildProcess;
    stderr: string[];
    stop(): Promise<void>;
}

/** A relay directory with the Pi paired by `mailmule relay pair`, and what the Pi's uplink.relay needs. */
export async function pairRelay(piPublicKey: string): Promise<{ dir: string; pairing: Relay['pairing'] }> {
    const dir = tempDir('mailmule-relay-');
    const paired = await runMailmule(['relay', 'pair', '--dir', dir, '--pi', PI, '--key', piPublicKey]);
    assert.equal(paired.code, 0, describeRun('relay pair', paired));
    // Quoted for YAML (JSON's double quotes).
    const line = (name: string) => JSON.parse(new RegExp(`^\\s*${name}: ("[^"]*")$`, 'm').exec(paired.stdout)?.[1] ?? assert.fail(`no ${name} in ${paired.stdout}`)) as string;
    return { dir, pairing: { key: line('key'), sealKey: line('sealKey'), fingerprint: line('fingerprint') } };
}

/** `mailmule relay pair` for the Pi's key, then `mailmule relay start` on a free port. */
export async function startRelay(piPublicKey: string): Promise<Relay> {
    const { dir, pairing } = await pairRelay(piPublicKey);
    const child = spawn(process.execPath, [MAIN, 'relay', 'start', '--dir', dir, '--host', '127.0.0.1', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const stderr: string[] = [];
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
    const port = await withTimeout(
        new Promise<number>((resolve, reject) => {
            let out = '';
            child.stdout.on('data', (chunk: Buffer) => {
                out += chunk.toString();
                const match = /relay listening on [^:]+:(\d+)/.exec(out);
                if (match) resolve(Number(match[1]));
            });
            child.once('exit', code => reject(new Error(`the relay exited (${code}): ${stderr.join('')}`)));
        }),
        20_000,
        'the relay to listen'
    );
    return {
        dir,
        port,
        pairing,
        process: child,
        stderr,
        async stop() {
            if (child.exitCode === null) {
                const exited = new Promise(resolve => child.once('exit', resolve));
                child.kill('SIGTERM');
                await withTimeout(exited, 10_000, 'the relay to stop');
            }
            fs.rmSync(dir, { recursive: true, force: true });
        }
    };
}

export function relayYaml(port: number, pairing: Relay['pairing'], uplinkLines: string[] = [], relayLines: string[] = []): string {
    return [
        'uplink:',
        ...uplinkLines.map(line => `  ${line}`),
        '  mode: relay',
        '  relay:',
        `    url: https://127.0.0.1:${port}`,
        `    id: ${PI}`,
        `    key: "${pairing.key}"`,
        `    sealKey: "${pairing.sealKey}"`,
        `    fingerprint: "${pairing.fingerprint}"`,
        ...relayLines.map(line => `    ${line}`)
    ].join('\n');
}

export function aliceYaml(upstream: Upstream): string {
    return [
        `      - address: ${ALICE}`,
        `        imap: { host: 127.0.0.1, port: ${upstream.imapPort}, tls: none }`,
        `        smtp: { host: 127.0.0.1, port: ${upstream.submissionPort}, tls: none }`,
        '        credentials: { password: alice-pass }',
        '        folders: [INBOX]'
    ].join('\n');
}

export interface RelaySetup {
    upstream: Upstream;
    relay: Relay;
    gateway: Gateway;
    /** The link between the Pi and the relay (a cutting proxy). */
    link: LinkProxy;
}

export interface RelaySetupOptions {
    /** Lines under uplink: besides mode and relay (budget: …). */
    uplinkLines?: string[];
    /** Lines under uplink.relay: besides where the relay is and its keys (slimHeaders: …). */
    relayLines?: string[];
    upstream?: UpstreamOptions;
    /** The Pi's users (default: alice with her one account, INBOX). */
    users?: (upstream: Upstream) => TestUser[];
}

/** Upstream, relay (paired), a link proxy in front of it, and the Pi: run `fn`, then stop everything. */
export async function withRelaySetup(fn: (setup: RelaySetup) => Promise<void>, options: RelaySetupOptions = {}): Promise<void> {
    const upstream = await startUpstream(options.upstream ?? {});
    const piKey = generateSigningKey();
    let relay: Relay | undefined;
    let link: LinkProxy | undefined;
    let gateway: Gateway | undefined;
    try {
        relay = await startRelay(publicKeyText(piKey.publicKey));
        link = await startLinkProxy({ targetPort: relay.port });
        const users = options.users?.(upstream) ?? [{ name: 'alice', password: 'pw-alice', accountsYaml: aliceYaml(upstream) }];
        gateway = await startGateway({ users, extraYaml: relayYaml(link.port, relay.pairing, options.uplinkLines, options.relayLines) });
        installPiKey(gateway, piKey);
        await fn({ upstream, relay, gateway, link });
    } catch (err) {
        if (relay) process.stderr.write(`relay log:\n${relay.stderr.join('').slice(-4000)}\n`);
        throw err;
    } finally {
        await gateway?.stop().catch(() => undefined);
        await link?.close().catch(() => undefined);
        await relay?.stop().catch(() => undefined);
        await upstream.stop();
    }
}

/** The Pi's key, as `mailmule bundle key` would have made it before pairing. */
export function installPiKey(gateway: Gateway, piKey: ReturnType<typeof generateSigningKey>): void {
    const keyDir = path.join(gateway.daemon.store.dataDir, 'relay');
    fs.mkdirSync(keyDir, { recursive: true, mode: 0o700 });
    fs.writeFileSync(path.join(keyDir, 'pi-key.pem'), piKey.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
}

/** The records of the relay's down bundle `seq` (kept there until the Pi acknowledges it), and the bundle's size. */
export async function downBundle(relay: Relay, seq: number): Promise<{ bytes: number; records: BundleRecord[] }> {
    const file = path.join(relay.dir, 'pis', PI, 'down', `${seq}.bundle`);
    const reader = await BundleReader.open(file, { signer: publicKeyFromText(relay.pairing.key) });
    const records: BundleRecord[] = [];
    for await (const record of reader.records()) records.push(record);
    return { bytes: fs.statSync(file).size, records };
}

/** The last down bundle the Pi has applied. */
export function downApplied(gateway: Gateway): number {
    return (JSON.parse(fs.readFileSync(path.join(gateway.daemon.store.dataDir, 'relay', 'state.json'), 'utf8')) as { downApplied: number }).downApplied;
}
