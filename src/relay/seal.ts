/**
 * Sealing the Pi's upstream credentials to its relay (docs/relay.md, "Trust"): an ephemeral
 * X25519 key agreement with the relay's sealing key, HKDF-SHA256, AES-256-GCM, the bundle's Pi id
 * and seq as associated data (a sealed record cannot be moved to another bundle). Only the relay
 * opens it, and keeps what it holds in memory for the run.
 */
import crypto from 'node:crypto';

/** DER prefix of an X25519 SubjectPublicKeyInfo; the raw 32-byte key follows it. */
const X25519_SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');
const INFO = Buffer.from('mailmule-credentials-v1');

export interface Sealed {
    meta: { scheme: 'x25519-aes256gcm'; ephemeralKey: string; nonce: string };
    body: Buffer;
}

export function sealingKeyText(key: crypto.KeyObject): string {
    return key.export({ type: 'spki', format: 'der' }).subarray(X25519_SPKI_PREFIX.length).toString('base64');
}

export function sealingKeyFromText(text: string): crypto.KeyObject {
    const raw = Buffer.from(text.trim(), 'base64');
    if (raw.length !== 32) throw new Error('expected an X25519 public key: 44 characters of base64');
    return crypto.createPublicKey({ key: Buffer.concat([X25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

function aead(shared: Buffer, ephemeralRaw: Buffer): Buffer {
    return Buffer.from(crypto.hkdfSync('sha256', shared, ephemeralRaw, INFO, 32));
}

function boundTo(pi: string, seq: number): Buffer {
    return Buffer.from(`${pi}\0${seq}`);
}

/** Seals `plain` to the relay's sealing public key, for the bundle (pi, seq). */
export function seal(plain: Buffer, relayKey: crypto.KeyObject, pi: string, seq: number): Sealed {
    const ephemeral = crypto.generateKeyPairSync('x25519');
    const ephemeralRaw = ephemeral.publicKey.export({ type: 'spki', format: 'der' }).subarray(X25519_SPKI_PREFIX.length);
    const key = aead(crypto.diffieHellman({ privateKey: ephemeral.privateKey, publicKey: relayKey }), ephemeralRaw);
    const nonce = crypto.randomBytes(12);
    const cipher = crypto.createCipheriv('aes-256-gcm', key, nonce);
    cipher.setAAD(boundTo(pi, seq));
    const body = Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
    return { meta: { scheme: 'x25519-aes256gcm', ephemeralKey: ephemeralRaw.toString('base64'), nonce: nonce.toString('base64') }, body };
}

/** Opens what seal() made; throws when it was not sealed to this key for this bundle, or was changed. */
export function unseal(sealed: Sealed, relayPrivateKey: crypto.KeyObject, pi: string, seq: number): Buffer {
    const ephemeralRaw = Buffer.from(sealed.meta.ephemeralKey, 'base64');
    const key = aead(crypto.diffieHellman({ privateKey: relayPrivateKey, publicKey: sealingKeyFromText(sealed.meta.ephemeralKey) }), ephemeralRaw);
    if (sealed.body.length < 16) throw new Error('sealed credentials: too short');
    const decipher = crypto.createDecipheriv('aes-256-gcm', key, Buffer.from(sealed.meta.nonce, 'base64'));
    decipher.setAAD(boundTo(pi, seq));
    decipher.setAuthTag(sealed.body.subarray(-16));
    try {
        return Buffer.concat([decipher.update(sealed.body.subarray(0, -16)), decipher.final()]);
    } catch (err) {
        throw new Error('sealed credentials do not open: not sealed to this relay for this bundle, or changed', { cause: err });
    }
}
