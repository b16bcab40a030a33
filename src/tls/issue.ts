/**
 * X.509 issuance for the local certificate authority, through @peculiar/x509 on Node's WebCrypto:
 * the CA (made once, then kept) and the serving certificates it signs. Keys are ECDSA P-256, which
 * every client mailmule serves accepts (Android, iOS and macOS, Windows, Thunderbird's NSS, OpenSSL).
 */
import crypto from 'node:crypto';
import { x509 } from './x509';
import { nameConstraintsExtension } from './constraints';
import type { CaScope } from './scope';

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 24 * 3600 * 1000;
/** Back-dating: a Pi without a clock may be behind its clients by a day after a power cut. */
const BACKDATE_MS = DAY_MS;
/** The CA outlives any Pi; a new CA means every client installs it again. */
export const CA_VALIDITY_DAYS = 20 * 365;
/** Apple accepts at most 825 days for a serving certificate; renewal is automatic, so a year. */
export const LEAF_VALIDITY_DAYS = 365;

/** A certificate and its private key, both PEM. */
export interface PemPair {
    certPem: string;
    keyPem: string;
}

/** The names a serving certificate is issued for (subjectAltName entries). */
export interface LeafNames {
    dns: string[];
    ip: string[];
}

function randomSerial(): string {
    const bytes = crypto.randomBytes(16);
    bytes[0] = bytes[0] & 0x7f; // a positive INTEGER
    return bytes.toString('hex');
}

/** Keeps a distinguished-name value to characters that need no escaping in "CN=..., O=...". */
function dnValue(text: string): string {
    return text.replace(/[^A-Za-z0-9 .:_-]/g, '').slice(0, 60) || 'mailmule';
}

/** PEM ending with a line end, so that two of them can follow each other in one file. */
function pemText(pem: string): string {
    return `${pem.trimEnd()}\n`;
}

async function newKeys(): Promise<crypto.webcrypto.CryptoKeyPair> {
    return await crypto.webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']);
}

function privatePem(key: crypto.webcrypto.CryptoKey): string {
    return crypto.KeyObject.from(key).export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** Makes a new CA: CA:TRUE with no intermediates below it, for signing certificates within `scope` only. */
export async function createCa(options: { hostname: string; scope: CaScope; now: Date }): Promise<PemPair> {
    const keys = await newKeys();
    const day = options.now.toISOString().slice(0, 10);
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
        serialNumber: randomSerial(),
        // The date tells two CAs of the same Pi apart in a phone's list of installed certificates.
        name: `CN=mailmule CA ${dnValue(options.hostname)} ${day}, O=mailmule`,
        notBefore: new Date(options.now.getTime() - BACKDATE_MS),
        notAfter: new Date(options.now.getTime() + CA_VALIDITY_DAYS * DAY_MS),
        keys,
        signingAlgorithm: ALGORITHM,
        extensions: [
            new x509.BasicConstraintsExtension(true, 0, true),
            new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
            nameConstraintsExtension(options.scope),
            await x509.SubjectKeyIdentifierExtension.create(keys.publicKey)
        ]
    });
    return { certPem: pemText(cert.toString('pem')), keyPem: privatePem(keys.privateKey) };
}

/**
 * Issues a serving certificate from `ca` for `names`: CA:FALSE, serverAuth, valid
 * LEAF_VALIDITY_DAYS from `now`. The caller keeps the CA unchanged across issuances, so clients
 * that trust it trust every certificate issued here.
 */
export async function issueLeaf(ca: PemPair, names: LeafNames, now: Date): Promise<PemPair> {
    const caCert = new x509.X509Certificate(ca.certPem);
    const caKey = crypto.createPrivateKey(ca.keyPem).toCryptoKey(ALGORITHM, false, ['sign']);
    const keys = await newKeys();
    const cert = await x509.X509CertificateGenerator.create({
        serialNumber: randomSerial(),
        subject: `CN=${dnValue(names.dns[0] ?? names.ip[0] ?? 'mailmule')}, O=mailmule`,
        issuer: caCert.subject,
        notBefore: new Date(now.getTime() - BACKDATE_MS),
        notAfter: new Date(now.getTime() + LEAF_VALIDITY_DAYS * DAY_MS),
        publicKey: keys.publicKey,
        signingKey: caKey,
        signingAlgorithm: ALGORITHM,
        extensions: [
            // A leaf: isync (mbsync) treats a CA certificate as an issuer and ignores its IP entries.
            new x509.BasicConstraintsExtension(false, undefined, true),
            new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
            new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
            new x509.SubjectAlternativeNameExtension([...names.dns.map(value => ({ type: 'dns' as const, value })), ...names.ip.map(value => ({ type: 'ip' as const, value }))]),
            await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
            await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey)
        ]
    });
    return { certPem: pemText(cert.toString('pem')), keyPem: privatePem(keys.privateKey) };
}
