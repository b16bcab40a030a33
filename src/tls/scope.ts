/**
 * What the local CA may sign for (RFC 5280 name constraints, critical in the CA certificate): the
 * local domain and the hostname with the names under them, localhost, and private and loopback
 * addresses. A villager's phone trusts this CA, and the CA's key lives on a Pi anyone in the village
 * can pick up: with these constraints, a stolen key still cannot impersonate the provider, a bank or
 * any public site to that phone (Android, iOS, macOS, Windows, NSS and OpenSSL all enforce them).
 *
 * Deciding and reading the scope needs no X.509 library: every start and daily check asks whether
 * the machine's names are within it (a machine with a public address always has one outside), and
 * @peculiar/x509 with its ASN.1 modules is about 8 MB of RSS that only issuing needs
 * (constraints.ts writes the extension). The extension is read here with a small DER walk.
 */
import crypto from 'node:crypto';
import net from 'node:net';
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

/** One DER element: its tag, where its contents start and end. */
interface Der {
    tag: number;
    start: number;
    end: number;
}

function derAt(der: Buffer, at: number, limit: number): Der {
    if (at + 2 > limit) throw new Error('truncated DER');
    const tag = der[at];
    let length = der[at + 1];
    let start = at + 2;
    if (length & 0x80) {
        const bytes = length & 0x7f;
        if (bytes < 1 || bytes > 4 || start + bytes > limit) throw new Error('bad DER length');
        length = 0;
        for (let i = 0; i < bytes; i++) length = length * 256 + der[start + i];
        start += bytes;
    }
    if (start + length > limit) throw new Error('truncated DER');
    return { tag, start, end: start + length };
}

/** The elements inside a constructed element. */
function derChildren(der: Buffer, parent: Der): Der[] {
    const out: Der[] = [];
    for (let at = parent.start; at < parent.end;) {
        const child = derAt(der, at, parent.end);
        out.push(child);
        at = child.end;
    }
    return out;
}

/** OID 2.5.29.30 (id-ce-nameConstraints), as its DER contents. */
const NAME_CONSTRAINTS_OID = Buffer.from([0x55, 0x1d, 0x1e]);

/** The leading one bits of a subnet mask. */
function prefixLength(mask: Buffer): number {
    let bits = 0;
    for (const byte of mask) for (let bit = 7; bit >= 0 && byte & (1 << bit); bit--) bits++;
    return bits;
}

/** An iPAddress constraint (address then mask, RFC 5280 4.2.1.10) as CIDR text, as caScope writes it. */
function subnetText(bytes: Buffer): string {
    const half = bytes.length / 2;
    const address = bytes.subarray(0, half);
    const prefix = prefixLength(bytes.subarray(half));
    if (half === 4) return `${[...address].join('.')}/${prefix}`;
    const groups = [];
    for (let i = 0; i < 16; i += 2) groups.push(address.readUInt16BE(i).toString(16));
    // The longest run of zero groups becomes "::" (RFC 5952 4.2).
    let best = { at: -1, length: 0 };
    for (let i = 0; i < 8;) {
        let j = i;
        while (j < 8 && groups[j] === '0') j++;
        if (j - i > best.length && j - i > 1) best = { at: i, length: j - i };
        i = j === i ? i + 1 : j;
    }
    const text = best.at < 0 ? groups.join(':') : `${groups.slice(0, best.at).join(':')}::${groups.slice(best.at + best.length).join(':')}`;
    return `${text}/${prefix}`;
}

/** The scope written in a CA certificate; null when it has no name constraints (it may sign for anything). */
export function scopeOf(caPem: string): CaScope | null {
    const der = new crypto.X509Certificate(caPem).raw;
    const certificate = derAt(der, 0, der.length);
    const tbs = derChildren(der, certificate)[0];
    // extensions [3] EXPLICIT SEQUENCE OF Extension, the last field of TBSCertificate.
    const extensionsField = derChildren(der, tbs).find(field => field.tag === 0xa3);
    if (!extensionsField) return null;
    for (const extension of derChildren(der, derChildren(der, extensionsField)[0])) {
        const fields = derChildren(der, extension);
        const id = fields[0];
        if (id.tag !== 0x06 || !der.subarray(id.start, id.end).equals(NAME_CONSTRAINTS_OID)) continue;
        const value = fields[fields.length - 1];
        // NameConstraints ::= SEQUENCE { permittedSubtrees [0] GeneralSubtrees OPTIONAL, excludedSubtrees [1] … }
        const constraints = derAt(der, value.start, value.end);
        const scope: CaScope = { dns: [], ip: [] };
        const permitted = derChildren(der, constraints).find(field => field.tag === 0xa0);
        for (const subtree of permitted ? derChildren(der, permitted) : []) {
            const base = derChildren(der, subtree)[0];
            const bytes = der.subarray(base.start, base.end);
            // GeneralName: dNSName [2] IA5String, iPAddress [7] OCTET STRING (both implicit).
            if (base.tag === 0x82) scope.dns.push(bytes.toString('latin1').toLowerCase());
            if (base.tag === 0x87 && (bytes.length === 8 || bytes.length === 32)) scope.ip.push(subnetText(bytes));
        }
        return scope;
    }
    return null;
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
