import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { it } from 'node:test';
import { seal, sealingKeyFromText, sealingKeyText, unseal } from './seal';

it('seals credentials that only the relay opens, for the one bundle they were sealed for', () => {
    const relay = crypto.generateKeyPairSync('x25519');
    const text = sealingKeyText(relay.publicKey);
    const sealed = seal(Buffer.from('{"password":"s3cret"}'), sealingKeyFromText(text), 'village-1', 4);
    assert.ok(!sealed.body.includes(Buffer.from('s3cret')));
    assert.equal(unseal(sealed, relay.privateKey, 'village-1', 4).toString(), '{"password":"s3cret"}');
    assert.throws(() => unseal(sealed, relay.privateKey, 'village-1', 5), /do not open/);
    assert.throws(() => unseal(sealed, crypto.generateKeyPairSync('x25519').privateKey, 'village-1', 4), /do not open/);
    const changed = { ...sealed, body: Buffer.from(sealed.body) };
    changed.body[0] ^= 1;
    assert.throws(() => unseal(changed, relay.privateKey, 'village-1', 4), /do not open/);
});
