/**
 * `mailmule init`: writes a commented starting configuration for a production install
 * (by default /etc/mailmule/mailmule.yaml and accounts.yaml, data in /var/lib/mailmule, the
 * standard ports 143/993/587/465, web 80/443) and creates the local CA and the serving certificate
 * it issues in the data directory (src/tls).
 * Existing files are never overwritten without --force.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import type { Command } from 'commander';
import { UsageError } from '../exit-codes';

export interface InitOptions {
    dir: string;
    dataDir: string;
    hostname: string;
    localDomain: string;
    force: boolean;
    /** Give the files, the data directory and the TLS pair to this system user (init run as root). */
    user?: string;
}

export function gatewayTemplate(options: Pick<InitOptions, 'dataDir' | 'hostname' | 'localDomain'>): string {
    return `# mailmule gateway configuration (written by \`mailmule init\`).
# Relative paths are relative to this file. \`mailmule check -c <this file>\` validates it;
# \`systemctl reload mailmule\` (SIGHUP) applies changes, except listener changes, which need a restart.

# Store, message files, the local CA and its TLS pair, and the control socket.
dataDir: ${options.dataDir}

# Every local user is also name@localDomain; mail between these addresses never leaves the Pi.
localDomain: ${options.localDomain}

# Name used in greetings, Received headers and the certificate (with autoconfig.<localDomain>).
hostname: ${options.hostname}

# The account map: local users and their upstream accounts (mode 0600 when it holds credentials).
accounts: ./accounts.yaml

log:
  level: info          # fatal, error, warn, info, debug, trace, silent
  format: auto         # auto (journal under systemd, pretty on a terminal, else json), json, journal, pretty

tls:
  # PEM files. Leave both empty to use a certificate from the local CA under dataDir/tls
  # (renewed by itself; villagers install the CA once from the web page /ca).
  cert:
  key:

imap:
  listeners:
    # Plain IMAP that upgrades with STARTTLS.
    - host: 0.0.0.0
      port: 143
      security: starttls
      allowPlaintextAuth: false   # true lets clients log in without STARTTLS (trusted wired LAN only)
    # IMAP over TLS from the first byte.
    - host: 0.0.0.0
      port: 993
      security: tls
  maxMessageSize: 25MB   # largest APPEND accepted
  quota: 0               # bytes per user reported by GETQUOTAROOT; 0 = no quota

smtp:
  listeners:
    # Submission that upgrades with STARTTLS.
    - host: 0.0.0.0
      port: 587
      security: starttls
      allowPlaintextAuth: false
    # Submission over TLS from the first byte.
    - host: 0.0.0.0
      port: 465
      security: tls
  maxMessageSize: 25MB
  maxRecipients: 100

web:
  listeners:
    # Plain HTTP: Thunderbird's autoconfig files (point autoconfig.<localDomain> at this machine);
    # every other page moves to HTTPS.
    - host: 0.0.0.0
      port: 80
      security: plain
    # HTTPS with the same certificate as IMAP and SMTP: villagers log in and change their password.
    - host: 0.0.0.0
      port: 443
      security: tls

uplink:
  # When to go online by itself (cron, local time); night-time data is cheap. Empty: only \`mailmule sync\`.
  schedule: []
  #  - "30 2 * * *"
  up:                    # command that brings the link up, e.g. a script that dials the modem
  probe:                 # host:port that must answer before a run starts, e.g. imap.example.com:993
  down:                  # command that takes the link down again
  budget:
    perRun: 0            # bytes one run may spend (both ways); 0 = no cap
    perDay: 0            # bytes per day across runs; 0 = no cap

queue:
  maxAge: 10d            # undelivered after this long: fail and bounce to the sender
`;
}

export function accountsTemplate(localDomain: string): string {
    return `# The account map: who lives on this gateway and which upstream accounts they own.
# Local passwords are not kept here: set one with \`mailmule passwd NAME\`.
# This file may hold upstream credentials, so it must stay mode 0600 (owner only).
users: []
# Replace \`users: []\` above with a list like this one:
# users:
#   - name: amina                 # LAN login; amina@${localDomain} is her local address
#     displayName: Amina Njeri
#     accounts:
#       - name: gmail
#         address: amina@example.com
#         imap: { host: imap.gmail.com, port: 993, tls: implicit }
#         smtp: { host: smtp.gmail.com, port: 465, tls: implicit }
#         credentials: { password: "an app password" }
#         folders: [INBOX]
#         since: 30d
`;
}

/** Writes `content` to `file` with `mode`, refusing to replace an existing file unless `force`. */
function writeNew(file: string, content: string, mode: number, force: boolean): void {
    if (fs.existsSync(file) && !force) {
        throw new UsageError(`${file} exists; not overwriting it (use --force to replace it)`);
    }
    const tmp = `${file}.tmp-${process.pid}`;
    fs.writeFileSync(tmp, content, { mode });
    fs.chmodSync(tmp, mode);
    fs.renameSync(tmp, file);
}

export async function runInit(options: InitOptions): Promise<{ gateway: string; accounts: string; cert: string; ca: string | null; caSha256: string | null }> {
    const dir = path.resolve(options.dir);
    const gateway = path.join(dir, 'mailmule.yaml');
    const accounts = path.join(dir, 'accounts.yaml');
    // Check both before writing either, so a refusal leaves nothing half done.
    for (const file of [gateway, accounts]) {
        if (fs.existsSync(file) && !options.force) {
            throw new UsageError(`${file} exists; not overwriting it (use --force to replace it)`);
        }
    }
    fs.mkdirSync(dir, { recursive: true, mode: 0o750 });
    const dataDir = path.resolve(dir, options.dataDir);
    let owner: { uid: number; gid: number } | null = null;
    if (options.user) {
        try {
            owner = {
                uid: Number(execFileSync('id', ['-u', options.user], { encoding: 'utf8' }).trim()),
                gid: Number(execFileSync('id', ['-g', options.user], { encoding: 'utf8' }).trim())
            };
        } catch {
            throw new UsageError(`no system user "${options.user}"`);
        }
    }
    writeNew(gateway, gatewayTemplate({ ...options, dataDir }), 0o600, options.force);
    writeNew(accounts, accountsTemplate(options.localDomain), 0o600, options.force);
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o750 });
    const { ServingTls } = await import('../../tls');
    const tls = await ServingTls.open({ certFile: null, keyFile: null, dataDir, hostname: options.hostname, localDomain: options.localDomain });
    if (owner) {
        for (const file of [gateway, accounts, dataDir, ...tls.files()]) {
            fs.chownSync(file, owner.uid, owner.gid);
        }
    }
    const caPem = tls.caPem;
    return { gateway, accounts, cert: tls.pair.certFile, ca: tls.pair.caFile, caSha256: caPem ? new crypto.X509Certificate(caPem).fingerprint256 : null };
}

export function registerInit(program: Command): void {
    program
        .command('init')
        .description('write a commented starting mailmule.yaml and accounts.yaml (production ports) and create the local CA and its TLS certificate')
        .option('--dir <dir>', 'where to write the two files', '/etc/mailmule')
        .option('--data-dir <dir>', 'dataDir written into mailmule.yaml (store, messages, TLS pair)', '/var/lib/mailmule')
        .option('--hostname <name>', 'hostname for greetings and the certificate', 'mailmule.lan')
        .option('--local-domain <domain>', "the local users' mail domain", 'mailmule.lan')
        .option('--user <name>', 'give the files, dataDir, the local CA and the TLS pair to this system user (e.g. mailmule, when run as root)')
        .option('--force', 'overwrite existing files')
        .action(async (options: { dir: string; dataDir: string; hostname: string; localDomain: string; user?: string; force?: boolean }) => {
            const written = await runInit({ ...options, force: Boolean(options.force) });
            console.log(`wrote ${written.gateway} (mode 0600)`);
            console.log(`wrote ${written.accounts} (mode 0600)`);
            console.log(`certificate ${written.cert}`);
            if (written.ca) console.log(`local CA ${written.ca} (SHA-256 ${written.caSha256}): villagers install it from the web page /ca`);
            console.log(`next: add users to ${written.accounts}, then \`mailmule passwd NAME\` and \`mailmule check -c ${written.gateway}\``);
        });
}
