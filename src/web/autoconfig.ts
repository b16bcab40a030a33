/**
 * Thunderbird's autoconfig file (clientConfig 1.1), which Thunderbird and Thunderbird for Android
 * (K-9) fetch from `autoconfig.<domain>/mail/config-v1.1.xml?emailaddress=…` and
 * `<domain>/.well-known/autoconfig/mail/config-v1.1.xml`.
 *
 * Thunderbird's reader (comm-central, mail/components/accountcreation/modules/readFromXML.sys.mjs,
 * with Sanitizer.sys.mjs) refuses a file unless: the root is <clientConfig> holding an
 * <emailProvider> whose `id` is a host name; at least one <domain> is a host name; each
 * <incomingServer type="imap"> and <outgoingServer type="smtp"> has a host name, a port in
 * 1..65535, a <socketType> of plain, SSL or STARTTLS, an <authentication> it knows, and (for
 * password logins) a <username>. The first usable server of each kind is the one offered; the
 * others become alternatives. It is served as text/xml: FetchHTTP.sys.mjs parses only an
 * XML content type as XML.
 */

export interface MailEndpoint {
    port: number;
    security: 'starttls' | 'tls';
}

export interface AutoconfigInput {
    /** The name clients connect to (the certificate's name). */
    hostname: string;
    localDomain: string;
    /** The address the client asked about (lower-cased). */
    address: string;
    /** The local user name that address logs in as. */
    username: string;
    imap: readonly MailEndpoint[];
    smtp: readonly MailEndpoint[];
}

const HOST_NAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/** A name Thunderbird's Sanitizer.hostname accepts (letters, digits, dash and dot labels). */
export function isHostName(value: string): boolean {
    return HOST_NAME.test(value);
}

export function escapeXml(value: string): string {
    return value.replace(/[<>&"']/g, ch => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[ch]!);
}

/** TLS from the first byte first (what the README recommends), then STARTTLS; each port once. */
function ordered(endpoints: readonly MailEndpoint[]): MailEndpoint[] {
    const seen = new Set<number>();
    return [...endpoints.filter(e => e.security === 'tls'), ...endpoints.filter(e => e.security === 'starttls')].filter(e => !seen.has(e.port) && Boolean(seen.add(e.port)));
}

function server(tag: 'incomingServer' | 'outgoingServer', type: 'imap' | 'smtp', input: AutoconfigInput, endpoint: MailEndpoint): string {
    return [
        `    <${tag} type="${type}">`,
        `      <hostname>${escapeXml(input.hostname)}</hostname>`,
        `      <port>${endpoint.port}</port>`,
        `      <socketType>${endpoint.security === 'tls' ? 'SSL' : 'STARTTLS'}</socketType>`,
        `      <username>${escapeXml(input.username)}</username>`,
        '      <authentication>password-cleartext</authentication>',
        `    </${tag}>`
    ].join('\n');
}

/**
 * The file for one address, or null when there is nothing a client could use (no host name
 * Thunderbird accepts, or no IMAP or no SMTP listener).
 */
export function autoconfigXml(input: AutoconfigInput): string | null {
    const imap = ordered(input.imap);
    const smtp = ordered(input.smtp);
    if (!isHostName(input.hostname) || !imap.length || !smtp.length) return null;
    const localDomain = input.localDomain.toLowerCase();
    const addressDomain = input.address.slice(input.address.lastIndexOf('@') + 1).toLowerCase();
    const domains = [...new Set([addressDomain, localDomain])].filter(isHostName);
    const id = isHostName(localDomain) ? localDomain : input.hostname.toLowerCase();
    return [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<clientConfig version="1.1">',
        `  <emailProvider id="${escapeXml(id)}">`,
        ...domains.map(domain => `    <domain>${escapeXml(domain)}</domain>`),
        `    <displayName>mailmule (${escapeXml(localDomain)})</displayName>`,
        '    <displayShortName>mailmule</displayShortName>',
        ...imap.map(endpoint => server('incomingServer', 'imap', input, endpoint)),
        ...smtp.map(endpoint => server('outgoingServer', 'smtp', input, endpoint)),
        '  </emailProvider>',
        '</clientConfig>',
        ''
    ].join('\n');
}
