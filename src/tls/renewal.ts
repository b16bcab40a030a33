/**
 * Which names the serving certificate must carry, and whether the one on disk is still good:
 * pure decisions, kept apart from files and timers so that they are tested with any clock.
 */
import crypto from 'node:crypto';
import net from 'node:net';
import os from 'node:os';
import type { LeafNames } from './issue';

/** Renew when fewer days than this remain: a Pi that is off for weeks still renews in time. */
export const RENEW_BEFORE_DAYS = 30;
const DAY_MS = 24 * 3600 * 1000;

/** Lower case, and only the characters a DNS name may hold (the config checks these names already). */
function dnsName(name: string): string {
    return name
        .trim()
        .toLowerCase()
        .replace(/[^a-z0-9.-]/g, '');
}

/**
 * The machine's own addresses: IPv4 and IPv6 of every interface except link-local IPv6 ones
 * (a certificate cannot name their zone). Loopback addresses are always added by leafNames.
 */
export function machineAddresses(interfaces: NodeJS.Dict<os.NetworkInterfaceInfo[]> = os.networkInterfaces()): string[] {
    const out: string[] = [];
    for (const list of Object.values(interfaces)) {
        for (const info of list ?? []) {
            if (info.family === 'IPv6' && /^fe[89ab]/i.test(info.address)) continue;
            out.push(info.address);
        }
    }
    return out;
}

/**
 * The subjectAltName entries of the serving certificate: the hostname (first: it is also the
 * subject's CN), autoconfig.<localDomain> (Thunderbird's autoconfig over HTTPS), localhost, and the
 * machine's addresses with loopback. A hostname that is an address goes with the addresses.
 */
export function leafNames(options: { hostname: string; localDomain: string; addresses: string[] }): LeafNames {
    const dns = new Set<string>();
    const ip = new Set<string>();
    const hostname = options.hostname.trim().toLowerCase();
    if (net.isIP(hostname)) ip.add(hostname);
    else if (dnsName(hostname)) dns.add(dnsName(hostname));
    if (dnsName(options.localDomain)) dns.add(`autoconfig.${dnsName(options.localDomain)}`);
    dns.add('localhost');
    for (const address of ['127.0.0.1', '::1', ...options.addresses]) {
        if (net.isIP(address)) ip.add(address.toLowerCase());
    }
    return { dns: [...dns], ip: [...ip] };
}

/**
 * Why `leafPem` must be issued again, or null while it is good: signed by `caPem`, valid at `now`
 * with more than RENEW_BEFORE_DAYS left, and naming every entry of `names` (a renamed host or a
 * new address of the Pi gets a new certificate from the same CA, which clients already trust).
 */
export function renewalReason(leafPem: string, caPem: string, names: LeafNames, now: Date): string | null {
    let leaf: crypto.X509Certificate;
    try {
        leaf = new crypto.X509Certificate(leafPem);
    } catch {
        return 'the serving certificate cannot be read';
    }
    const ca = new crypto.X509Certificate(caPem);
    if (!leaf.checkIssued(ca) || !leaf.verify(ca.publicKey)) return 'the serving certificate is not from the local CA';
    if (leaf.validFromDate.getTime() > now.getTime()) return `the serving certificate is valid only from ${leaf.validFromDate.toISOString()} (the clock went back?)`;
    const left = leaf.validToDate.getTime() - now.getTime();
    if (left <= 0) return `the serving certificate expired on ${leaf.validToDate.toISOString()}`;
    if (left < RENEW_BEFORE_DAYS * DAY_MS) return `the serving certificate expires on ${leaf.validToDate.toISOString()}, in less than ${RENEW_BEFORE_DAYS} days`;
    for (const name of names.dns) {
        if (leaf.checkHost(name, { subject: 'never', wildcards: false }) === undefined) return `the serving certificate does not name ${name}`;
    }
    for (const address of names.ip) {
        if (leaf.checkIP(address) === undefined) return `the serving certificate does not name ${address}`;
    }
    return null;
}
