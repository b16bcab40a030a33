/**
 * The village bench/relay.ts measures: two users whose upstream mailboxes share some real
 * messages (SpamAssassin easy-ham-1 + hard-ham-1, as bench/real-corpus.ts), and the four ways it
 * can sync them, each through one counting link proxy (test/support/link-proxy.ts) on the
 * village's uplink:
 *
 *   - relay:       an in-process Pi (uplink.mode relay) ↔ proxy ↔ a real `mailmule relay` process,
 *                  which does the IMAP work against Dovecot directly (the datacenter side);
 *   - direct:      an in-process Pi (direct mode) ↔ proxy ↔ Dovecot, both users in one run;
 *   - mbsync:      `mbsync` once per user ↔ proxy ↔ Dovecot (bench/sync-clients.ts);
 *   - offlineimap: the same with offlineimap.
 *
 * mailmule's Pis run in this process (as in test/support/relay.ts); a run is
 * `daemon.uplink.run()`, receive only in direct mode (nothing is queued in either mode).
 */
import fs from 'node:fs';
import path from 'node:path';
import { generateSigningKey, publicKeyText } from '../src/bundle';
import { startGateway, type Gateway } from '../test/support/gateway';
import type { LinkProxy } from '../test/support/link-proxy';
import { installPiKey, relayYaml, startRelay, type Relay } from '../test/support/relay';
import { messageRows } from '../test/support/store';
import type { Upstream } from '../test/support/upstream';
import { mbsyncClient, offlineimapClient, type Client } from './sync-clients';

export const VILLAGE_CLIENTS = ['relay', 'direct', 'mbsync', 'offlineimap'] as const;
export type VillageClientName = (typeof VILLAGE_CLIENTS)[number];
export const VILLAGE_USERS = ['alice', 'bob'] as const;

const MAIL_UID = 65534;

/** One upstream address per (client, user): every client starts from its own untouched mailboxes. */
export function upstreamAddress(client: VillageClientName, user: (typeof VILLAGE_USERS)[number]): string {
    return `${client}${user}@upstream.test`;
}

export function upstreamPassword(address: string): string {
    return `${address.split('@')[0]}-pass`;
}

export interface VillageClient {
    name: VillageClientName;
    /** One run for the whole village (every user); ok false with a detail on failure. */
    sync(timeoutMs: number): Promise<{ ok: boolean; detail: string }>;
    /** Messages each user holds in INBOX afterwards. */
    messages(): number[];
    stop(): Promise<void>;
}

/**
 * Writes `messages` into `address`'s Maildir/cur before Dovecot has seen it, INTERNALDATEs spread
 * over the last 20 days, the last 5 % unread (as bench/sync.ts loads its accounts).
 */
export function loadMailbox(upstream: Upstream, address: string, messages: Buffer[]): void {
    const [local, domain] = address.split('@');
    const home = path.join(upstream.dir, 'dovecot', 'mail', domain, local);
    const maildir = path.join(home, 'Maildir');
    for (const sub of ['cur', 'new', 'tmp']) fs.mkdirSync(path.join(maildir, sub), { recursive: true });
    const now = Math.floor(Date.now() / 1000);
    const span = 20 * 86400;
    messages.forEach((raw, i) => {
        const at = now - span + Math.floor(((i + 1) * span) / (messages.length + 1));
        const file = path.join(maildir, 'cur', `${at}.M${i + 1}P1.bench:2,${i < messages.length * 0.95 ? 'S' : ''}`);
        fs.writeFileSync(file, raw);
        fs.utimesSync(file, at, at);
        fs.chownSync(file, MAIL_UID, MAIL_UID);
    });
    for (const dir of [path.join(upstream.dir, 'dovecot', 'mail', domain), home, maildir, ...['cur', 'new', 'tmp'].map(s => path.join(maildir, s))]) {
        fs.chownSync(dir, MAIL_UID, MAIL_UID);
    }
}

/** accounts.yaml lines for one user's account, full messages (as the other clients get them). */
function accountYaml(address: string, imapPort: number, smtpPort: number): string {
    return [
        `      - address: ${address}`,
        `        imap: { host: 127.0.0.1, port: ${imapPort}, tls: none }`,
        `        smtp: { host: 127.0.0.1, port: ${smtpPort}, tls: none }`,
        `        credentials: { password: ${upstreamPassword(address)} }`,
        '        folders: [INBOX]',
        '        maxMessageSize: 1GB',
        '        since: 3650d'
    ].join('\n');
}

function inboxCounts(gateway: Gateway): number[] {
    const store = gateway.daemon.store;
    return VILLAGE_USERS.map(user => {
        const inbox = store.mailboxes.get(store.users.ensure(user).id, 'INBOX');
        return inbox ? messageRows(store, inbox.id).length : 0;
    });
}

function gatewayClient(name: 'relay' | 'direct', gateway: Gateway, cleanup: () => Promise<void>): VillageClient {
    return {
        name,
        async sync() {
            const report = await gateway.daemon.uplink!.run({ trigger: `bench:relay ${name}`, receiveOnly: name === 'direct' });
            return { ok: report.status === 'ok', detail: JSON.stringify(report).slice(0, 1500) };
        },
        messages: () => inboxCounts(gateway),
        async stop() {
            await gateway.stop().catch(() => undefined);
            await cleanup();
        }
    };
}

/** The Pi in relay mode; `link` must forward to the relay (startVillageRelay's port). */
export async function relayVillage(upstream: Upstream, relay: Relay, link: LinkProxy, piKey: ReturnType<typeof generateSigningKey>): Promise<VillageClient> {
    const users = VILLAGE_USERS.map(user => ({ name: user, password: `pw-${user}`, accountsYaml: accountYaml(upstreamAddress('relay', user), upstream.imapPort, upstream.submissionPort) }));
    const gateway = await startGateway({ users, extraYaml: relayYaml(link.port, relay.pairing) });
    installPiKey(gateway, piKey);
    return gatewayClient('relay', gateway, () => relay.stop());
}

/** A paired `mailmule relay` process and the Pi's key. */
export async function startVillageRelay(): Promise<{ relay: Relay; piKey: ReturnType<typeof generateSigningKey> }> {
    const piKey = generateSigningKey();
    return { relay: await startRelay(publicKeyText(piKey.publicKey)), piKey };
}

/** The Pi in direct mode; `link` forwards to Dovecot's IMAP port. */
export async function directVillage(upstream: Upstream, link: LinkProxy): Promise<VillageClient> {
    const users = VILLAGE_USERS.map(user => ({ name: user, password: `pw-${user}`, accountsYaml: accountYaml(upstreamAddress('direct', user), link.port, upstream.submissionPort) }));
    return gatewayClient('direct', await startGateway({ users }), () => Promise.resolve());
}

/** mbsync or offlineimap, one command per user, one after the other (as a cron job would). */
export function imapClientVillage(name: 'mbsync' | 'offlineimap', work: string, link: LinkProxy): VillageClient {
    const clients: Client[] = VILLAGE_USERS.map(user => {
        const dir = path.join(work, user);
        fs.mkdirSync(dir, { recursive: true });
        const address = upstreamAddress(name, user);
        return (name === 'mbsync' ? mbsyncClient : offlineimapClient)(dir, address, upstreamPassword(address), link.port);
    });
    return {
        name,
        async sync(timeoutMs) {
            for (const client of clients) {
                const outcome = await client.sync(timeoutMs);
                if (!outcome.ok) return { ok: false, detail: outcome.detail };
            }
            return { ok: true, detail: '' };
        },
        messages: () => clients.map(client => client.messages()),
        async stop() {}
    };
}
