/**
 * The TLS pair for the LAN listeners: the admin's own (`tls.cert`, `tls.key`), or a certificate
 * issued by mailmule's local CA and renewed before it expires (serving.ts says how).
 */
export { ServingTls, TlsError, type TlsPair, type ServingTlsOptions } from './serving';
export { RENEW_BEFORE_DAYS } from './renewal';
