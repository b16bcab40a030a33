/**
 * What the local CA may sign for (RFC 5280 name constraints, critical in the CA certificate): the
 * local domain and the hostname with the names under them, localhost, and private and loopback
 * addresses. A villager's phone trusts this CA, and the CA's key lives on a Pi anyone in the village
 * can pick up: with these constraints, a stolen key still cannot impersonate the provider, a bank or
 * any public site to that phone (Android, iOS, macOS, Windows, NSS and OpenSSL all enforce them).
 */
import net from 'node:net';
import { AsnConvert } from '@peculiar/asn1-schema';
import { GeneralName, GeneralSubtree, GeneralSubtrees, NameConstraints, id_ce_nameConstraints } from '@peculiar/asn1-x509';
import { x509 } from './x509';
import type { LeafNames } from './issue';

/** DNS names (each with every name under it) and IP subnets (CIDR) a certificate from the CA may carry. */
export interface CaScope {
    dns: string[];
    ip: string[];
}

/** Private (RFC 1918, RFC 4193), carrier-grade NAT, link-local and loopback ranges: a LAN address is in one of these. */
const PRIVATE_SUBNETS = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '169.254.0.0/16', '127.0.0.0/8', 'fc00::/7', 'fe80::/10', '::1/128'];

/** The scope a new CA gets for this hostname and local domain. */
export function caScope(hostname: string, localDomain: string): CaScope {
    const dns = new Set<string>();
    for (const name of [localDomain, hostname, 'localhost']) {
        const clean = name.trim().toLowerCase();
        if (!clean || net.isIP(clean)) continue;
        if ([...dns].some(kept => clean === kept || clean.endsWith(`.${kept}`))) continue;
        dns.add(clean);
    }
    return { dns: [...dns], ip: PRIVATE_SUBNETS };
}

/** The critical nameConstraints extension that limits a CA to `scope`. */
export function nameConstraintsExtension(scope: CaScope): x509.Extension {
    const subtrees = [
        ...scope.dns.map(dNSName => new GeneralSubtree({ base: new GeneralName({ dNSName }) })),
        ...scope.ip.map(iPAddress => new GeneralSubtree({ base: new GeneralName({ iPAddress }) }))
    ];
    const value = AsnConvert.serialize(new NameConstraints({ permittedSubtrees: new GeneralSubtrees(subtrees) }));
    return new x509.Extension(id_ce_nameConstraints, true, value);
}

/** The scope written in a CA certificate; null when it has no name constraints (it may sign for anything). */
export function scopeOf(caPem: string): CaScope | null {
    const extension = new x509.X509Certificate(caPem).getExtension(id_ce_nameConstraints);
    if (!extension) return null;
    const constraints = AsnConvert.parse(extension.value, NameConstraints);
    const scope: CaScope = { dns: [], ip: [] };
    for (const subtree of constraints.permittedSubtrees ?? []) {
        if (subtree.base.dNSName !== undefined) scope.dns.push(subtree.base.dNSName.toLowerCase());
        if (subtree.base.iPAddress !== undefined) scope.ip.push(subtree.base.iPAddress);
    }
    return scope;
}

/** Splits `names` into those `scope` allows and those it does not (a certificate naming one of these would be refused whole). */
export function withinScope(names: LeafNames, scope: CaScope | null): { names: LeafNames; outside: string[] } {
    if (!scope) return { names, outside: [] };
    const subnets = new net.BlockList();
    for (const cidr of scope.ip) {
        const [address, prefix] = cidr.split('/');
        const family = net.isIPv6(address) ? 'ipv6' : 'ipv4';
        subnets.addSubnet(address, Number(prefix ?? (family === 'ipv6' ? 128 : 32)), family);
    }
    const dnsAllowed = (name: string) => scope.dns.some(base => name === base || name.endsWith(`.${base}`));
    const ipAllowed = (address: string) => subnets.check(address, net.isIPv6(address) ? 'ipv6' : 'ipv4');
    return {
        names: { dns: names.dns.filter(dnsAllowed), ip: names.ip.filter(ipAllowed) },
        outside: [...names.dns.filter(name => !dnsAllowed(name)), ...names.ip.filter(address => !ipAllowed(address))]
    };
}
