/**
 * Test harness: a real gateway on free loopback ports with its own temporary data directory,
 * configured through real YAML files, plus small helpers for clients.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { Daemon } from '../../src/daemon';
import { createLogger } from '../../src/log';
import { hashPassword, type AuthPenaltyOptions } from '../../src/auth';

export interface TestUser {
    name: string;
    password: string;
    /** Raw YAML lines for this user's accounts (indented under the user), optional. */
    accountsYaml?: string;
    /** `admin: true` in accounts.yaml (the web status page). */
    admin?: boolean;
}

/** accountsYaml for one upstream account at an address nothing listens on (for tests that never run the uplink). */
export function upstreamAccount(address: string): string {
    return [
        `      - address: ${address}`,
        '        imap: { host: 127.0.0.1, port: 1, tls: none }',
        '        smtp: { host: 127.0.0.1, port: 1, tls: none }',
        '        credentials: { password: x }'
    ].join('\n');
}

export interface GatewayOptions {
    users?: TestUser[];
    /** Allow LOGIN without STARTTLS on the plain listener (most protocol tests). */
    plaintext?: boolean;
    /** Extra top-level YAML for mailmule.yaml. */
    extraYaml?: string;
    imapExtraYaml?: string;
    /** Extra YAML lines inside the smtp: section (indented two spaces). */
    smtpExtraYaml?: string;
    /** Login penalty timing (the default delays reach 15 s). */
    authPenalty?: AuthPenaltyOptions;
    /** Also serve the web pages: one plain HTTP and one HTTPS listener. */
    web?: boolean;
}

export interface Gateway {
    daemon: Daemon;
    dir: string;
    configFile: string;
    accountsFile: string;
    imapPort: number;
    imapsPort: number;
    smtpPort: number;
    smtpsPort: number;
    /** The web listeners' ports (0 without `web: true`). */
    webPort: number;
    websPort: number;
    /** Every log line the daemon wrote (JSON strings). */
    logLines: string[];
    stop(): Promise<void>;
}

export const DEFAULT_USERS: TestUser[] = [
    { name: 'alice', password: 'alice-secret-pw' },
    { name: 'bob', password: 'bob-secret-pw' }
];

export function tempDir(prefix = 'mailmule-test-'): string {
    return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function writeConfig(dir: string, options: GatewayOptions = {}): { configFile: string; accountsFile: string } {
    const users = options.users ?? DEFAULT_USERS;
    const configFile = path.join(dir, 'mailmule.yaml');
    const accountsFile = path.join(dir, 'accounts.yaml');
    fs.writeFileSync(
        configFile,
        [
            'dataDir: ./data',
            'localDomain: mailmule.lan',
            'hostname: mailmule.test',
            'accounts: ./accounts.yaml',
            'log:',
            '  level: info',
            'imap:',
            '  listeners:',
            '    - host: 127.0.0.1',
            '      port: 0',
            '      security: starttls',
            `      allowPlaintextAuth: ${options.plaintext !== false}`,
            '    - host: 127.0.0.1',
            '      port: 0',
            '      security: tls',
            options.imapExtraYaml ?? '',
            'smtp:',
            '  listeners:',
            '    - host: 127.0.0.1',
            '      port: 0',
            '      security: starttls',
            `      allowPlaintextAuth: ${options.plaintext !== false}`,
            '    - host: 127.0.0.1',
            '      port: 0',
            '      security: tls',
            options.smtpExtraYaml ?? '',
            ...(options.web ? ['web:', '  listeners:', '    - { host: 127.0.0.1, port: 0, security: plain }', '    - { host: 127.0.0.1, port: 0, security: tls }'] : []),
            options.extraYaml ?? ''
        ].join('\n') + '\n'
    );
    fs.writeFileSync(
        accountsFile,
        'users:\n' + users.map(user => `  - name: ${user.name}\n${user.admin ? '    admin: true\n' : ''}    accounts:${user.accountsYaml ? '\n' + user.accountsYaml : ' []'}\n`).join(''),
        { mode: 0o600 }
    );
    return { configFile, accountsFile };
}

export async function startGateway(options: GatewayOptions = {}): Promise<Gateway> {
    const dir = tempDir();
    const { configFile, accountsFile } = writeConfig(dir, options);
    const logLines: string[] = [];
    const sink = new Writable({
        write(chunk, _encoding, done) {
            logLines.push(...chunk.toString().split('\n').filter(Boolean));
            done();
        }
    });
    const daemon = new Daemon(configFile, { logger: createLogger('debug', sink), authPenalty: options.authPenalty });
    await daemon.start();
    for (const user of options.users ?? DEFAULT_USERS) {
        daemon.store.users.setPasswordHash(user.name, await hashPassword(user.password));
    }
    const imap = daemon.listeners.find(l => l.security === 'starttls')!;
    const imaps = daemon.listeners.find(l => l.security === 'tls')!;
    const smtp = daemon.smtpListeners.find(l => l.security === 'starttls')!;
    const smtps = daemon.smtpListeners.find(l => l.security === 'tls')!;
    return {
        daemon,
        dir,
        configFile,
        accountsFile,
        imapPort: imap.port,
        imapsPort: imaps.port,
        smtpPort: smtp.port,
        smtpsPort: smtps.port,
        webPort: daemon.webListeners.find(l => l.security === 'plain')?.port ?? 0,
        websPort: daemon.webListeners.find(l => l.security === 'tls')?.port ?? 0,
        logLines,
        async stop() {
            await daemon.stop();
            fs.rmSync(dir, { recursive: true, force: true });
        }
    };
}

/** A plain RFC 5322 message with CRLF line endings. */
export function makeMessage(fields: { from?: string; to?: string; subject?: string; messageId?: string; body?: string; date?: string } = {}): Buffer {
    const lines = [
        `From: ${fields.from ?? 'Carol <carol@example.org>'}`,
        `To: ${fields.to ?? 'alice@mailmule.lan'}`,
        `Subject: ${fields.subject ?? 'Hello'}`,
        `Date: ${fields.date ?? 'Mon, 23 Nov 2026 10:00:00 +0000'}`,
        `Message-ID: ${fields.messageId ?? `<${Math.random().toString(36).slice(2)}@example.org>`}`,
        'MIME-Version: 1.0',
        'Content-Type: text/plain; charset=utf-8',
        '',
        fields.body ?? 'Hello there.'
    ];
    return Buffer.from(lines.join('\r\n') + '\r\n');
}
