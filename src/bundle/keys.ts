/**
 * The Ed25519 keys that sign bundles: a Pi's and its relay's. A private key lives in a PEM file
 * (0600) of its owner's data directory; a public key travels as text (base64 of its 32 raw
 * bytes), which is what `mailmule relay pair` shows and takes.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { SIGNATURE_CONTEXT } from './format';

/** DER prefix of an Ed25519 SubjectPublicKeyInfo; the raw 32-byte key follows it. */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export interface SigningKey {
    privateKey: crypto.KeyObject;
    publicKey: crypto.KeyObject;
}

export function generateSigningKey(): SigningKey {
    return crypto.generateKeyPairSync('ed25519');
}

/** The public key as text: base64 of its 32 raw bytes. */
export function publicKeyText(key: crypto.KeyObject): string {
    const der = key.export({ type: 'spki', format: 'der' });
    return der.subarray(ED25519_SPKI_PREFIX.length).toString('base64');
}

/** A public key from its text form; throws a clear error when it is not one. */
export function publicKeyFromText(text: string): crypto.KeyObject {
    const raw = Buffer.from(text.trim(), 'base64');
    if (raw.length !== 32 || raw.toString('base64') !== text.trim()) throw new Error('expected an Ed25519 public key: 44 characters of base64');
    return crypto.createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

/**
 * The signing key in `file`, created (0600, fsync'd) when there is none. A file that is not an
 * Ed25519 private key is an error, never replaced.
 */
export function loadOrCreateSigningKey(file: string): SigningKey {
    let pem: string;
    try {
        pem = fs.readFileSync(file, 'utf8');
    } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        const key = generateSigningKey();
        fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
        const fd = fs.openSync(file, 'wx', 0o600);
        try {
            fs.writeSync(fd, key.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
            fs.fsyncSync(fd);
        } finally {
            fs.closeSync(fd);
        }
        return key;
    }
    let privateKey: crypto.KeyObject;
    try {
        privateKey = crypto.createPrivateKey(pem);
    } catch (err) {
        throw new Error(`${file}: not a private key (${(err as Error).message})`, { cause: err });
    }
    if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error(`${file}: not an Ed25519 key`);
    return { privateKey, publicKey: crypto.createPublicKey(privateKey) };
}

/** The signature a bundle's trailer carries for its sha256 `digest`. */
export function signDigest(digest: Buffer, key: crypto.KeyObject): Buffer {
    return crypto.sign(null, Buffer.concat([SIGNATURE_CONTEXT, digest]), key);
}

export function verifyDigest(digest: Buffer, signature: Buffer, key: crypto.KeyObject): boolean {
    return crypto.verify(null, Buffer.concat([SIGNATURE_CONTEXT, digest]), key, signature);
}
