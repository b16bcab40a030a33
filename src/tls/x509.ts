/**
 * @peculiar/x509, ready to use: the one place it is loaded. It resolves its ASN.1 serializers
 * through tsyringe, which needs the Reflect metadata API, so reflect-metadata (installed on the
 * global Reflect) must load first; and it signs with Node's WebCrypto.
 */
import 'reflect-metadata';
import crypto from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(crypto.webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export { x509 };
