/**
 * Reading an autoconfig file as Thunderbird does, for tests: python3's XML parser (ElementTree, a
 * real parser independent of ours) turns the document into elements, then the checks of
 * Thunderbird's readFromXML.sys.mjs and Sanitizer.sys.mjs (comm-central,
 * mail/components/accountcreation/modules/) are applied in the same order: a <clientConfig>
 * root with an <emailProvider>, whose `id` is a host name; at least one <domain> host name; for
 * each server, a known type, a host name, a port in 1..65535, a <socketType> of plain, SSL or
 * STARTTLS, a known <authentication> and, for password logins, a <username>. The first usable
 * server of each kind is what Thunderbird offers; the rest are alternatives. A file Thunderbird
 * would refuse makes readAutoconfig throw with its reason.
 */
import { runProcess, describeRun } from './run-process';

export interface ReadServer {
    type: string;
    hostname: string;
    port: number;
    socketType: 'plain' | 'SSL' | 'STARTTLS';
    username: string | undefined;
    authentication: string;
}

export interface ReadConfig {
    id: string;
    domains: string[];
    incoming: ReadServer;
    incomingAlternatives: ReadServer[];
    outgoing: ReadServer;
    outgoingAlternatives: ReadServer[];
}

interface Element {
    tag: string;
    attrs: Record<string, string>;
    text: string;
    children: Element[];
}

const PARSE = `
import sys, json, xml.etree.ElementTree as ET
def walk(e):
    return {"tag": e.tag, "attrs": dict(e.attrib), "text": (e.text or "").strip(), "children": [walk(c) for c in e]}
def parse(doc):
    try:
        return walk(ET.fromstring(doc.encode("utf-8")))
    except ET.ParseError as e:
        return {"error": str(e)}
print(json.dumps([parse(doc) for doc in json.load(sys.stdin)]))
`;

/** Hostnames as Thunderbird's isLegalHostNameOrIP takes them (DNS labels or an IPv4 address). */
const HOST = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;

function hostname(value: string | undefined): string {
    if (!value || !HOST.test(value)) throw new Error(`hostname_syntax.error: ${JSON.stringify(value)}`);
    return value.toLowerCase();
}

function child(element: Element, tag: string): Element | undefined {
    return element.children.find(c => c.tag === tag);
}

function all(element: Element, tag: string): Element[] {
    return element.children.filter(c => c.tag === tag);
}

const INCOMING_AUTH = ['password-cleartext', 'plain', 'password-encrypted', 'secure', 'GSSAPI', 'NTLM', 'OAuth2'];
const OUTGOING_AUTH = ['none', 'client-IP-address', 'smtp-after-pop', ...INCOMING_AUTH];

function readServer(x: Element, types: string[], auths: string[]): ReadServer {
    const type = x.attrs.type;
    if (!types.includes(type)) throw new Error(`allowed_value.error: type ${JSON.stringify(type)}`);
    const host = hostname(child(x, 'hostname')?.text);
    const port = parseInt(child(x, 'port')?.text ?? '', 10);
    if (!(port >= 1 && port <= 65535)) throw new Error(`port out of range: ${child(x, 'port')?.text}`);
    const socketType = all(x, 'socketType')
        .map(e => e.text)
        .find((t): t is ReadServer['socketType'] => t === 'plain' || t === 'SSL' || t === 'STARTTLS');
    if (!socketType) throw new Error('need proper <socketType> in XML');
    const authentication = all(x, 'authentication')
        .map(e => e.text)
        .find(a => auths.includes(a));
    if (!authentication) throw new Error('need proper <authentication> in XML');
    const usernameElement = child(x, 'username');
    if (!usernameElement && (type !== 'smtp' || authentication.startsWith('password') || authentication === 'plain' || authentication === 'secure')) {
        throw new Error(`<${x.tag}> has no <username>`);
    }
    return { type, hostname: host, port, socketType, username: usernameElement?.text, authentication };
}

function readServers(provider: Element, tag: string, types: string[], auths: string[]): ReadServer[] {
    const servers: ReadServer[] = [];
    let lastError: unknown;
    for (const x of all(provider, tag)) {
        try {
            servers.push(readServer(x, types, auths));
        } catch (err) {
            lastError = err;
        }
    }
    if (!servers.length) throw lastError instanceof Error ? lastError : new Error(`Need proper <${tag}> in XML file`);
    return servers;
}

/**
 * Parses each document (one python3 run for all: it starts slowly on a busy machine) and applies
 * Thunderbird's checks; rejects with Thunderbird's reason when it would refuse a file.
 */
export async function readAutoconfigs(documents: string[]): Promise<ReadConfig[]> {
    return (await tryAutoconfigs(documents)).map(read => {
        if (read instanceof Error) throw read;
        return read;
    });
}

/** As readAutoconfigs, with each document's outcome on its own: its config, or why Thunderbird would refuse it. */
export async function tryAutoconfigs(documents: string[]): Promise<(ReadConfig | Error)[]> {
    const result = await runProcess('python3', ['-c', PARSE], { timeoutMs: 30_000, input: JSON.stringify(documents) });
    if (result.code !== 0) throw new Error(describeRun('python3', result));
    return (JSON.parse(result.stdout) as (Element | { error: string })[]).map(parsed => {
        if ('error' in parsed) return new Error(`not well-formed XML: ${parsed.error}`);
        try {
            return toConfig(parsed);
        } catch (err) {
            return err as Error;
        }
    });
}

export async function readAutoconfig(xml: string): Promise<ReadConfig> {
    return (await readAutoconfigs([xml]))[0];
}

function toConfig(root: Element): ReadConfig {
    const provider = root.tag === 'clientConfig' ? child(root, 'emailProvider') : undefined;
    if (!provider) throw new Error('no_emailProvider.error');
    const id = hostname(provider.attrs.id);
    const domains = all(provider, 'domain').flatMap(d => {
        try {
            return [hostname(d.text)];
        } catch {
            return [];
        }
    });
    if (!domains.length) throw new Error('need proper <domain> in XML');
    const incoming = readServers(provider, 'incomingServer', ['pop3', 'imap', 'nntp', 'exchange'], INCOMING_AUTH);
    const outgoing = readServers(provider, 'outgoingServer', ['smtp'], OUTGOING_AUTH);
    return { id, domains, incoming: incoming[0], incomingAlternatives: incoming.slice(1), outgoing: outgoing[0], outgoingAlternatives: outgoing.slice(1) };
}
