/**
 * Self-signed certificates made with openssl, as an admin (or mailmule before its local CA) would
 * make them: for tests that need a pair src/tls did not issue.
 */
import { execFileSync } from 'node:child_process';

export interface OpensslPairOptions {
    /** Where the PEM files go. */
    certFile: string;
    keyFile: string;
    /** e.g. "/CN=mailmule.test/O=mailmule" */
    subject: string;
    /** subjectAltName entries, e.g. ["DNS:mailmule.test", "IP:127.0.0.1"]. */
    altNames: string[];
    days: number;
    /** basicConstraints=critical,CA:FALSE: a leaf, as src/tls made before the local CA. */
    leaf?: boolean;
}

/** Writes a P-256 self-signed pair with `openssl req -x509`; throws when openssl fails. */
export function makeOpensslPair(options: OpensslPairOptions): void {
    const args = ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', options.keyFile, '-out', options.certFile];
    args.push('-days', String(options.days), '-subj', options.subject, '-addext', `subjectAltName=${options.altNames.join(',')}`);
    if (options.leaf) args.push('-addext', 'basicConstraints=critical,CA:FALSE');
    execFileSync('openssl', args, { stdio: 'ignore', timeout: 10_000 });
}
