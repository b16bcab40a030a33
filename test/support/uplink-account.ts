/**
 * alice@upstream.test's one upstream account, as the uplink tests give it to an in-process
 * gateway (test/support/gateway.ts) against a real upstream (test/support/upstream.ts), and one
 * receive-only run of that gateway's uplink.
 */
import type { RunReport } from '../../src/uplink';
import { startGateway, type Gateway } from './gateway';
import { startUpstream, type Upstream } from './upstream';

export const ALICE = 'alice@upstream.test';

/**
 * The accounts.yaml lines of alice's account: IMAP on `imapPort` (the upstream's own, or a link
 * proxy in front of it), submission on the upstream's, syncing `folders`; `extra` lines go inside
 * the account (since:, maxMessageSize:, …).
 */
export function aliceAccountYaml(imapPort: number, upstream: Upstream, folders: string[], extra: string[] = []): string {
    return [
        `      - address: ${ALICE}`,
        `        imap: { host: 127.0.0.1, port: ${imapPort}, tls: none }`,
        `        smtp: { host: 127.0.0.1, port: ${upstream.submissionPort}, tls: none }`,
        '        credentials: { password: alice-pass }',
        `        folders: [${folders.map(folder => JSON.stringify(folder)).join(', ')}]`,
        ...extra.map(line => `        ${line}`)
    ].join('\n');
}

/** A real upstream and a gateway whose alice syncs `folders` straight from it; both are stopped afterwards. */
export async function withAliceUplink(setup: { folders: string[]; account?: string[]; extraYaml?: string }, fn: (upstream: Upstream, gateway: Gateway) => Promise<void>): Promise<void> {
    const upstream = await startUpstream();
    let gateway: Gateway | undefined;
    try {
        const accountsYaml = aliceAccountYaml(upstream.imapPort, upstream, setup.folders, setup.account);
        gateway = await startGateway({ users: [{ name: 'alice', password: 'pw-alice', accountsYaml }], extraYaml: setup.extraYaml });
        await fn(upstream, gateway);
    } finally {
        await gateway?.stop().catch(() => undefined);
        await upstream.stop();
    }
}

/** One receive-only uplink run of the in-process gateway. */
export function receiveRun(gateway: Gateway, trigger: string): Promise<RunReport> {
    return gateway.daemon.uplink!.run({ trigger, receiveOnly: true });
}
