/**
 * The local CA for villagers' devices, reachable without logging in and over plain HTTP too (a
 * device that does not trust the CA yet cannot be asked to get it over HTTPS): the page /ca with
 * the SHA-256 fingerprint and the install steps per system, and the certificate itself as DER
 * (.crt, the type Android and Windows install), PEM (.pem: Linux, Thunderbird) and an
 * Apple configuration profile (.mobileconfig: iPhone, iPad, Mac).
 */
import crypto from 'node:crypto';
import { Hono } from 'hono';
import { html } from 'hono/html';
import type { WebContext } from './context';
import { stringsFor, type Strings } from './strings';

/** Served without login and without the redirect to HTTPS. */
export const CA_PATHS: ReadonlySet<string> = new Set(['/ca', '/ca.crt', '/ca.pem', '/ca.mobileconfig']);

const FILE_NAME = 'mailmule-ca';

/** A DER certificate as lines of base64, 64 characters each (PEM and plist <data> alike). */
function base64Lines(der: Buffer): string[] {
    return der.toString('base64').match(/.{1,64}/g) ?? [];
}

/** "AB:CD:..." → a UUID-shaped string: the same CA always gives the same profile identity, so installing it again replaces it. */
function uuidFrom(fingerprint: string, salt: string): string {
    const hex = crypto.createHash('sha256').update(salt).update(fingerprint).digest('hex');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`.toUpperCase();
}

function xmlEscape(text: string): string {
    return text.replace(/[<>&"']/g, ch => `&#${ch.charCodeAt(0)};`);
}

/**
 * An unsigned configuration profile with one com.apple.security.root payload: iOS and macOS
 * install it as a CA (iOS then needs full trust turned on in Certificate Trust Settings).
 */
export function mobileconfig(cert: crypto.X509Certificate, description: string): string {
    const name = /CN=([^\n]+)/.exec(cert.subject)?.[1] ?? 'mailmule CA';
    const fingerprint = cert.fingerprint256;
    const id = `mailmule.ca.${fingerprint.replace(/:/g, '').slice(0, 16).toLowerCase()}`;
    const data = base64Lines(cert.raw).join('\n');
    return `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
    <key>PayloadContent</key>
    <array>
        <dict>
            <key>PayloadCertificateFileName</key>
            <string>${FILE_NAME}.cer</string>
            <key>PayloadContent</key>
            <data>
${data}
            </data>
            <key>PayloadDescription</key>
            <string>${xmlEscape(description)}</string>
            <key>PayloadDisplayName</key>
            <string>${xmlEscape(name)}</string>
            <key>PayloadIdentifier</key>
            <string>${id}.root</string>
            <key>PayloadType</key>
            <string>com.apple.security.root</string>
            <key>PayloadUUID</key>
            <string>${uuidFrom(fingerprint, 'root')}</string>
            <key>PayloadVersion</key>
            <integer>1</integer>
        </dict>
    </array>
    <key>PayloadDescription</key>
    <string>${xmlEscape(description)}</string>
    <key>PayloadDisplayName</key>
    <string>${xmlEscape(name)}</string>
    <key>PayloadIdentifier</key>
    <string>${id}</string>
    <key>PayloadRemovalDisallowed</key>
    <false/>
    <key>PayloadType</key>
    <string>Configuration</string>
    <key>PayloadUUID</key>
    <string>${uuidFrom(fingerprint, 'profile')}</string>
    <key>PayloadVersion</key>
    <integer>1</integer>
</dict>
</plist>
`;
}

const STYLE = `body{font-family:system-ui,sans-serif;max-width:40rem;margin:0 auto;padding:1rem;line-height:1.4;color:#222}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.5rem}h3{font-size:1rem;margin:1rem 0 .2rem}
code{overflow-wrap:anywhere}.fp{font-family:monospace;overflow-wrap:anywhere}li{margin:.3rem 0}`;

function caPage(s: Strings, hostname: string, cert: crypto.X509Certificate | null): ReturnType<typeof html> {
    const t = s.ca;
    const body = cert
        ? html`<p>${t.intro(hostname)}</p>
              <h2>${t.downloads}</h2>
              <ul>
                  <li><a href="/ca.crt" download="${FILE_NAME}.crt">${t.crt}</a></li>
                  <li><a href="/ca.pem" download="${FILE_NAME}.pem">${t.pem}</a></li>
                  <li><a href="/ca.mobileconfig">${t.mobileconfig}</a></li>
              </ul>
              <p>${t.fingerprint}:<br /><span class="fp" id="fingerprint">${cert.fingerprint256}</span></p>
              <p>${t.fingerprintCheck}</p>
              <h2>${t.stepsTitle}</h2>
              ${t.steps.map(
                  step =>
                      html`<h3>${step.system}</h3>
                          <p>${step.text}${step.command ? html`<br /><code>${step.command}</code>` : ''}</p>`
              )}`
        : html`<p>${t.none}</p>`;
    return html`<!doctype html>
        <html lang="${s.lang}">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width,initial-scale=1" />
                <title>${t.title} · mailmule</title>
                <style>
                    ${STYLE}
                </style>
            </head>
            <body>
                <h1>${t.title}</h1>
                ${body}
            </body>
        </html>`;
}

/** The routes of CA_PATHS; mount before anything that needs a session. */
export function caRoutes(ctx: Pick<WebContext, 'hostname' | 'localCa'>): Hono {
    const app = new Hono();
    const current = (): crypto.X509Certificate | null => {
        const pem = ctx.localCa();
        return pem ? new crypto.X509Certificate(pem) : null;
    };
    const download = (type: string, extension: string, body: (cert: crypto.X509Certificate, s: Strings) => string | Uint8Array<ArrayBuffer>) =>
        app.get(`/ca.${extension}`, c => {
            const cert = current();
            if (!cert) return c.text('no local CA: this gateway serves a certificate the administrator provided\n', 404);
            return c.body(body(cert, stringsFor(c.req.header('accept-language'))), 200, {
                'Content-Type': type,
                'Content-Disposition': `attachment; filename="${FILE_NAME}.${extension}"`,
                'Cache-Control': 'no-cache'
            });
        });
    download('application/x-x509-ca-cert', 'crt', cert => new Uint8Array(cert.raw));
    download('application/x-pem-file', 'pem', cert => cert.toString());
    download('application/x-apple-aspen-config', 'mobileconfig', (cert, s) => mobileconfig(cert, s.ca.profileDescription));
    app.get('/ca', c => c.html(caPage(stringsFor(c.req.header('accept-language')), ctx.hostname(), current())));
    return app;
}
