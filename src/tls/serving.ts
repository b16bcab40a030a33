/**
 * The TLS pair the LAN listeners serve, and the local CA behind it.
 *
 * When the admin configured no pair (`tls.cert` / `tls.key`), mailmule keeps a local certificate
 * authority under <dataDir>/tls and serves a certificate issued from it for the hostname,
 * autoconfig.<localDomain> and the machine's addresses. A villager installs the CA once (the web
 * page offers it); the serving certificate is then renewed here, from the same CA, long before it
 * expires, and clients never ask again. Files:
 *
 *   ca.pem       the CA certificate (what clients install)
 *   ca-key.pem   its private key, 0600; ca.pem is written after it, so ca.pem means "complete"
 *   cert.pem     the serving certificate followed by ca.pem (the chain a server sends)
 *   key.pem      the serving certificate's private key, 0600
 *
 * An install from before the CA had a bare self-signed cert.pem / key.pem here: they are moved
 * aside to *.self-signed and replaced (logged). A configured pair is used as it is, never touched.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { writeFileDurably } from '../files/durable';
import type { Logger } from '../log';
import type { LeafNames, PemPair } from './issue';
import { leafNames, machineAddresses, renewalReason } from './renewal';
import { caScope, scopeOf, withinScope } from './scope';

export interface TlsPair {
    key: Buffer;
    /** The serving certificate (PEM), followed by the local CA's when there is one. */
    cert: Buffer;
    certFile: string;
    keyFile: string;
    /** The local CA certificate (PEM); null when the admin's own pair is served. */
    caCert: Buffer | null;
    caFile: string | null;
}

/** The TLS directory cannot be used as it is (a CA without its key, a configured file missing). */
export class TlsError extends Error {
    override name = 'TlsError';
}

export interface ServingTlsOptions {
    /** The configured pair (`tls.cert`, `tls.key`); both null: the local CA. */
    certFile: string | null;
    keyFile: string | null;
    dataDir: string;
    hostname: string;
    localDomain: string;
    /** The machine's addresses for the certificate; read again at every check (the Pi's lease may change). */
    addresses?: () => string[];
    /** The clock (tests move it). */
    now?: () => Date;
    logger?: Logger;
}

const DAY_MS = 24 * 3600 * 1000;

function readIfExists(file: string): string | null {
    try {
        return fs.readFileSync(file, 'utf8');
    } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw err;
    }
}

/** Whether `keyPem` is the private key of the first certificate in `certPem`. */
function keyMatches(keyPem: string, certPem: string): boolean {
    try {
        const fromKey = crypto.createPublicKey(keyPem).export({ type: 'spki', format: 'der' });
        const fromCert = new crypto.X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
        return fromKey.equals(fromCert);
    } catch {
        return false;
    }
}

/** The first PEM certificate block of `pem` (cert.pem also holds the CA after the serving certificate). */
function firstCertificate(pem: string): string {
    const end = '-----END CERTIFICATE-----';
    const at = pem.indexOf(end);
    return at < 0 ? pem : pem.slice(0, at + end.length) + '\n';
}

export class ServingTls {
    private current: TlsPair;
    private readonly listeners: ((pair: TlsPair) => void)[] = [];
    private timer?: NodeJS.Timeout;
    private checking: Promise<string | null> | null = null;

    private constructor(
        private options: ServingTlsOptions,
        pair: TlsPair
    ) {
        this.current = pair;
    }

    /**
     * Loads the configured pair, or makes sure of the local CA and a good serving certificate
     * (creating, upgrading or renewing them). Rejects with TlsError when the files cannot be used.
     */
    static async open(options: ServingTlsOptions): Promise<ServingTls> {
        if (options.certFile || options.keyFile) {
            if (!options.certFile || !options.keyFile) throw new TlsError('tls.cert and tls.key go together: set both, or neither to use the local CA');
            const read = (file: string) => {
                try {
                    return fs.readFileSync(file);
                } catch (err) {
                    throw new TlsError(`cannot read ${file}: ${(err as Error).message}`, { cause: err });
                }
            };
            return new ServingTls(options, { cert: read(options.certFile), key: read(options.keyFile), certFile: options.certFile, keyFile: options.keyFile, caCert: null, caFile: null });
        }
        const tls = new ServingTls(options, { cert: Buffer.alloc(0), key: Buffer.alloc(0), certFile: '', keyFile: '', caCert: null, caFile: null });
        await tls.renewIfDue();
        return tls;
    }

    /** The pair to serve now. */
    get pair(): TlsPair {
        return this.current;
    }

    /** The local CA certificate as PEM, or null when the admin's own pair is served. */
    get caPem(): string | null {
        return this.current.caCert?.toString('utf8') ?? null;
    }

    /** Every file of the local CA directory (for `mailmule init --user` to hand over); none for a configured pair. */
    files(): string[] {
        if (!this.current.caFile) return [];
        const dir = this.dir();
        return [dir, ...['ca.pem', 'ca-key.pem', 'cert.pem', 'key.pem'].map(name => path.join(dir, name))];
    }

    /** Called with the new pair after each renewal; the listeners swap their secure context. */
    onRenewed(listener: (pair: TlsPair) => void): void {
        this.listeners.push(listener);
    }

    /** New hostname or local domain (a reload): the next check issues for them. */
    setNames(names: { hostname: string; localDomain: string }): void {
        this.options = { ...this.options, ...names };
    }

    /** Checks every `intervalMs` (a day) whether the serving certificate needs renewing; open() has checked already. */
    startTimer(intervalMs = DAY_MS): void {
        this.stopTimer();
        this.timer = setInterval(
            () => void this.renewIfDue().catch(err => this.options.logger?.error({ err: { message: (err as Error).message } }, 'could not renew the TLS certificate')),
            intervalMs
        );
        this.timer.unref();
    }

    stopTimer(): void {
        if (this.timer) clearInterval(this.timer);
        this.timer = undefined;
    }

    /**
     * Makes sure of the local CA and issues a new serving certificate from it when the current one
     * expires within RENEW_BEFORE_DAYS, does not name the machine, or is missing or damaged.
     * Resolves with the reason when it issued one (listeners are told), null otherwise; a
     * configured pair is never renewed. Checks do not overlap.
     */
    renewIfDue(): Promise<string | null> {
        if (this.options.certFile) return Promise.resolve(null);
        this.checking ??= this.check().finally(() => (this.checking = null));
        return this.checking;
    }

    private dir(): string {
        return path.join(this.options.dataDir, 'tls');
    }

    private async check(): Promise<string | null> {
        const now = (this.options.now ?? (() => new Date()))();
        const dir = this.dir();
        fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
        const file = (name: string) => path.join(dir, name);
        const ca = await this.loadOrCreateCa(now);
        let names = leafNames({ hostname: this.options.hostname, localDomain: this.options.localDomain, addresses: (this.options.addresses ?? machineAddresses)() });
        let reason = this.reissueReason(ca, names, now);
        if (reason !== null) {
            // A name outside the CA's scope would make clients refuse the whole certificate: leave it out.
            const within = withinScope(names, scopeOf(ca.certPem));
            // A DNS name is the admin's choice (the hostname): outside the scope, it needs their action.
            // A public address of the machine is never in any CA's scope, by design (name
            // constraints keep a stolen CA key to the LAN); clients reach the Pi by name or LAN address.
            const outsideNames = within.outside.filter(name => net.isIP(name) === 0);
            const outsideAddresses = within.outside.filter(name => net.isIP(name) !== 0);
            if (outsideNames.length) {
                this.options.logger?.warn(
                    { outside: outsideNames, ca: file('ca.pem') },
                    'the local CA may not sign for these names (only for the names it was made with and private addresses): clients using them get a warning; remove ca.pem and ca-key.pem to make a CA for the new names, then every device installs it again'
                );
            }
            if (outsideAddresses.length) {
                this.options.logger?.info({ outside: outsideAddresses }, 'public addresses of this machine are left off the certificate: the local CA signs for private addresses only');
            }
            if (within.outside.length) {
                names = within.names;
                reason = this.reissueReason(ca, names, now);
            }
        }
        const changed = reason !== null || !this.current.cert.length;
        if (reason !== null) {
            // The X.509 library loads only here and in loadOrCreateCa (about 8 MB of RSS and as long
            // as the IMAP server's modules): most starts and daily checks find the certificate good.
            const { issueLeaf } = await import('./issue');
            const leaf = await issueLeaf(ca, names, now);
            // The key first: a crash between the two leaves a mismatch, which the next start reissues.
            writeFileDurably(file('key.pem'), leaf.keyPem, { mode: 0o600 });
            writeFileDurably(file('cert.pem'), leaf.certPem + ca.certPem, { mode: 0o644 });
            this.options.logger?.info({ reason, cert: file('cert.pem'), names: [...names.dns, ...names.ip] }, 'issued a TLS certificate from the local CA');
        }
        if (changed) {
            this.current = {
                cert: fs.readFileSync(file('cert.pem')),
                key: fs.readFileSync(file('key.pem')),
                certFile: file('cert.pem'),
                keyFile: file('key.pem'),
                caCert: Buffer.from(ca.certPem),
                caFile: file('ca.pem')
            };
        }
        if (reason !== null) for (const listener of this.listeners) listener(this.current);
        return reason;
    }

    /** Why the serving certificate on disk must be issued again for `names`, or null while it is good. */
    private reissueReason(ca: PemPair, names: LeafNames, now: Date): string | null {
        const certPem = readIfExists(path.join(this.dir(), 'cert.pem'));
        const keyPem = readIfExists(path.join(this.dir(), 'key.pem'));
        if (certPem === null || keyPem === null) return 'there is no serving certificate yet';
        if (!keyMatches(keyPem, certPem)) return 'key.pem is not the key of cert.pem';
        return renewalReason(firstCertificate(certPem), ca.certPem, names, now);
    }

    /** The local CA: read, or made when there is none (moving a self-signed pair from before aside). */
    private async loadOrCreateCa(now: Date): Promise<PemPair> {
        const file = (name: string) => path.join(this.dir(), name);
        const certPem = readIfExists(file('ca.pem'));
        if (certPem !== null) {
            const keyPem = readIfExists(file('ca-key.pem'));
            if (keyPem === null || !keyMatches(keyPem, certPem)) {
                throw new TlsError(
                    `${file('ca.pem')} has no matching private key in ${file('ca-key.pem')}: restore ca-key.pem from a backup, or remove ca.pem to make a new CA (every client must then install the new one)`
                );
            }
            return { certPem, keyPem };
        }
        // cert.pem without ca.pem: the self-signed pair of an install from before the local CA.
        if (fs.existsSync(file('cert.pem'))) {
            for (const name of ['cert.pem', 'key.pem']) {
                if (fs.existsSync(file(name))) fs.renameSync(file(name), file(`${name}.self-signed`));
            }
            this.options.logger?.warn(
                { kept: file('cert.pem.self-signed') },
                'replaced the self-signed TLS certificate with one from a new local CA: mail apps ask once more; install the CA from the web page /ca to stop the questions'
            );
        }
        const { createCa } = await import('./issue');
        const ca = await createCa({ hostname: this.options.hostname, scope: caScope(this.options.hostname, this.options.localDomain), now });
        writeFileDurably(file('ca-key.pem'), ca.keyPem, { mode: 0o600 });
        writeFileDurably(file('ca.pem'), ca.certPem, { mode: 0o644 });
        this.options.logger?.info({ ca: file('ca.pem'), sha256: new crypto.X509Certificate(ca.certPem).fingerprint256 }, 'created the local certificate authority');
        return ca;
    }
}
