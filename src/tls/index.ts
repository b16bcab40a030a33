/**
 * The TLS pair for the LAN listeners. When the admin configured none, a self-signed pair is
 * generated once with openssl (present on Debian and Raspberry Pi OS through ca-certificates)
 * and kept under <dataDir>/tls, so clients see the same certificate after every restart and
 * only have to accept it once.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';

export interface TlsPair {
    key: Buffer;
    cert: Buffer;
    certFile: string;
    keyFile: string;
    generated: boolean;
}

export function loadOrCreateTlsPair(options: { certFile: string | null; keyFile: string | null; dataDir: string; hostname: string }): TlsPair {
    if (options.certFile && options.keyFile) {
        return {
            cert: fs.readFileSync(options.certFile),
            key: fs.readFileSync(options.keyFile),
            certFile: options.certFile,
            keyFile: options.keyFile,
            generated: false
        };
    }
    const dir = path.join(options.dataDir, 'tls');
    const certFile = path.join(dir, 'cert.pem');
    const keyFile = path.join(dir, 'key.pem');
    let generated = false;
    if (!fs.existsSync(certFile) || !fs.existsSync(keyFile)) {
        fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
        const tmpKey = `${keyFile}.tmp`;
        const tmpCert = `${certFile}.tmp`;
        const host = options.hostname.replace(/[^A-Za-z0-9.-]/g, '') || 'mailmule.lan';
        execFileSync(
            'openssl',
            [
                'req',
                '-x509',
                '-newkey',
                'ec',
                '-pkeyopt',
                'ec_paramgen_curve:prime256v1',
                '-nodes',
                '-keyout',
                tmpKey,
                '-out',
                tmpCert,
                '-days',
                '3650',
                '-subj',
                `/CN=${host}/O=mailmule`,
                '-addext',
                `subjectAltName=DNS:${host},DNS:localhost,IP:127.0.0.1`,
                // A leaf, not a CA: isync treats a CA certificate as an issuer, checks the host name
                // and ignores IP entries, so mbsync refused it when the Pi was reached by address.
                '-addext',
                'basicConstraints=critical,CA:FALSE'
            ],
            { stdio: ['ignore', 'ignore', 'pipe'] }
        );
        fs.chmodSync(tmpKey, 0o600);
        fs.renameSync(tmpKey, keyFile);
        fs.renameSync(tmpCert, certFile);
        generated = true;
    }
    return { cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile), certFile, keyFile, generated };
}
