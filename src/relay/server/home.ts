/**
 * A relay's directory: its own keys (relay-key.pem signs down bundles, seal-key.pem opens the
 * credentials Pis seal to it; both 0600), its TLS certificate (tls/), and one directory per
 * paired Pi (pis/<id>/): the Pi's public key (pi.json), its bundles both ways, its state, and its
 * own mailmule store. Pis are kept apart by directory and by key: a request or a bundle names a
 * Pi, and is accepted only with that Pi's signature.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { loadOrCreateSigningKey, publicKeyFromText, publicKeyText, type SigningKey } from '../../bundle';
import { sealingKeyText } from '../seal';
import { writeFileDurably } from '../../files/durable';
import { PiStateStore } from './pi-state';

const PI_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const piFileSchema = z.object({ key: z.string(), pairedAt: z.number() }).strict();

export interface PairedPi {
    id: string;
    key: crypto.KeyObject;
    dir: string;
}

export class RelayHome {
    readonly signing: SigningKey;
    readonly sealing: { privateKey: crypto.KeyObject; publicKey: crypto.KeyObject };

    constructor(readonly dir: string) {
        fs.mkdirSync(path.join(dir, 'pis'), { recursive: true, mode: 0o700 });
        this.signing = loadOrCreateSigningKey(path.join(dir, 'relay-key.pem'));
        this.sealing = loadOrCreateSealingKey(path.join(dir, 'seal-key.pem'));
    }

    /** Registers (or re-keys) a Pi; what the Pi's uplink.relay needs is `pairingLines`. */
    pair(id: string, piKeyText: string): PairedPi {
        if (!PI_ID.test(id)) throw new Error(`"${id}" cannot be a Pi id: letters, digits, ".", "_" and "-", at most 64`);
        const key = publicKeyFromText(piKeyText);
        const dir = path.join(this.dir, 'pis', id);
        fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
        writeFileDurably(path.join(dir, 'pi.json'), JSON.stringify({ key: publicKeyText(key), pairedAt: Date.now() }) + '\n');
        return { id, key, dir };
    }

    /** The paired Pi `id`, or null. */
    pi(id: string): PairedPi | null {
        if (!PI_ID.test(id)) return null;
        const dir = path.join(this.dir, 'pis', id);
        let text: string;
        try {
            text = fs.readFileSync(path.join(dir, 'pi.json'), 'utf8');
        } catch (err) {
            if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
            throw err;
        }
        const record = piFileSchema.parse(JSON.parse(text));
        return { id, key: publicKeyFromText(record.key), dir };
    }

    /**
     * Opens every paired Pi's state once (integrity_check, pi-state.ts), as the relay starts: a
     * damaged one stops the start with what to do, before any Pi is served.
     */
    checkPiStates(): number {
        let checked = 0;
        for (const id of fs.readdirSync(path.join(this.dir, 'pis')).sort()) {
            const pi = this.pi(id);
            if (!pi) continue;
            new PiStateStore(pi.dir).close();
            checked++;
        }
        return checked;
    }

    /**
     * The lines of the Pi's uplink.relay (besides url), for the admin to paste. Every value is
     * double-quoted (JSON's quoting is YAML's): a Pi id such as `true`, `null` or `1.10` would
     * otherwise load as a boolean, null or number, and a key could start with a YAML indicator.
     */
    pairingLines(id: string, tlsFingerprint: string | null): string[] {
        const values: [string, string][] = [
            ['id', id],
            ['key', publicKeyText(this.signing.publicKey)],
            ['sealKey', sealingKeyText(this.sealing.publicKey)],
            ...(tlsFingerprint ? [['fingerprint', tlsFingerprint] as [string, string]] : [])
        ];
        return values.map(([name, value]) => `${name}: ${JSON.stringify(value)}`);
    }
}

function loadOrCreateSealingKey(file: string): { privateKey: crypto.KeyObject; publicKey: crypto.KeyObject } {
    if (!fs.existsSync(file)) {
        const pair = crypto.generateKeyPairSync('x25519');
        writeFileDurably(file, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }), { flag: 'wx' });
        return pair;
    }
    const privateKey = crypto.createPrivateKey(fs.readFileSync(file, 'utf8'));
    if (privateKey.asymmetricKeyType !== 'x25519') throw new Error(`${file}: not an X25519 key`);
    return { privateKey, publicKey: crypto.createPublicKey(privateKey) };
}
