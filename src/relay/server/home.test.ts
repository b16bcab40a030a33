import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { it } from 'node:test';
import { parse } from 'yaml';
import { generateSigningKey, publicKeyText } from '../../bundle';
import { RelayHome } from './home';

it("relay pair's lines load as YAML strings, whatever the Pi id looks like", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailmule-relay-home-'));
    try {
        const home = new RelayHome(dir);
        const piKey = publicKeyText(generateSigningKey().publicKey);
        // Ids the id rule allows that plain YAML would load as a boolean, null, a number or a date.
        for (const id of ['true', 'null', 'no', '1.10', '0x1F', '2026-12-03', 'village-1']) {
            home.pair(id, piKey);
            const fingerprint = '12:34:AB:CD';
            const lines = home.pairingLines(id, fingerprint);
            const loaded = parse(['relay:', ...lines.map(line => `  ${line}`)].join('\n')) as { relay: Record<string, unknown> };
            assert.deepEqual(loaded.relay, {
                id,
                key: publicKeyText(home.signing.publicKey),
                sealKey: lines
                    .find(line => line.startsWith('sealKey: '))!
                    .slice('sealKey: '.length)
                    .replace(/"/g, ''),
                fingerprint
            });
            for (const value of Object.values(loaded.relay)) assert.equal(typeof value, 'string');
        }
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
});
