/**
 * The HTML pages: plain forms and a few lines of CSS, no script, so that they work on a cheap
 * phone's browser and weigh a few kilobytes. hono/html escapes every interpolated value.
 */
import { html } from 'hono/html';
import { LANGUAGES, stringsNamed, type Strings } from './strings';
import type { MailEndpoint } from './autoconfig';
import { formatBytes, type MineView } from './mine';

type Html = ReturnType<typeof html>;

const STYLE = `body{font-family:system-ui,sans-serif;max-width:40rem;margin:0 auto;padding:1rem;line-height:1.4;color:#222}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.5rem}
label{display:block;margin:.6rem 0 .2rem}input{font-size:1rem;padding:.4rem;width:100%;box-sizing:border-box}
button{font-size:1rem;padding:.5rem 1rem;margin-top:.8rem}
table{border-collapse:collapse}td,th{text-align:left;padding:.2rem .6rem .2rem 0;vertical-align:top}
tr.failed td{color:#a00}tr.sent td{color:#060}
.error{color:#a00}.ok{color:#060}header{display:flex;justify-content:space-between;align-items:center}
header form button{margin:0}
.chart text{fill:#444}.key i{display:inline-block;width:.8em;height:.8em;margin:0 .3em 0 .8em;vertical-align:middle}
.key i.budget{height:0;border-top:2px dashed #c00}footer{margin-top:2rem;font-size:.9rem}footer a{margin-right:1rem}`;

/** Links to the page in each other language (?lang= sets the cookie that remembers the choice). */
function languageLinks(s: Strings): Html {
    return html`<footer>${LANGUAGES.filter(code => code !== s.lang).map(code => html`<a href="?lang=${code}" hreflang="${code}" lang="${code}">${stringsNamed(code)!.languageName}</a>`)}</footer>`;
}

function layout(s: Strings, title: string, body: Html, header?: Html, refreshSeconds?: number): Html {
    return html`<!doctype html>
        <html lang="${s.lang}">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width,initial-scale=1" />
                ${refreshSeconds ? html`<meta http-equiv="refresh" content="${refreshSeconds}" />` : ''}
                <title>${title} · mailmule</title>
                <style>
                    ${STYLE}
                </style>
            </head>
            <body>
                ${header ?? ''} ${body} ${languageLinks(s)}
            </body>
        </html>`;
}

function notice(message: { kind: 'error' | 'ok'; text: string } | undefined): Html | string {
    return message ? html`<p class="${message.kind}" role="status">${message.text}</p>` : '';
}

function logoutBar(s: Strings, csrf: string, name: string): Html {
    return html`<header>
        <strong>${s.hello(name)}</strong>
        <form method="post" action="/logout"><input type="hidden" name="csrf" value="${csrf}" /><button>${s.logout}</button></form>
    </header>`;
}

export function loginPage(s: Strings, error?: string, username = ''): Html {
    return layout(
        s,
        s.loginTitle,
        html`<h1>${s.loginTitle}</h1>
            ${notice(error ? { kind: 'error', text: error } : undefined)}
            <form method="post" action="/login">
                <label for="username">${s.username}</label><input id="username" name="username" autocomplete="username" autocapitalize="none" value="${username}" required />
                <label for="password">${s.password}</label><input id="password" name="password" type="password" autocomplete="current-password" required />
                <button>${s.loginButton}</button>
            </form>
            <p><a href="/ca">${s.ca.title}</a></p>`
    );
}

export interface AccountView {
    name: string;
    csrf: string;
    addresses: string[];
    hostname: string;
    imap: MailEndpoint[];
    smtp: MailEndpoint[];
    mine: MineView;
    admin: boolean;
}

function heldPart(s: Strings, mine: MineView, csrf: string): Html | string {
    if (!mine.held.length) return '';
    return html`<h2>${s.heldTitle}</h2>
        <p>${s.heldText}</p>
        <table id="held">
            <tr>
                <th>${s.subject}</th>
                <th>${s.folder}</th>
                <th></th>
            </tr>
            ${mine.held.map(
                row =>
                    html`<tr>
                        <td>${row.subject}<br /><small>${row.account} · ${row.date}</small></td>
                        <td>${row.folder}</td>
                        <td>
                            <form method="post" action="/held">
                                <input type="hidden" name="csrf" value="${csrf}" /><input type="hidden" name="mailbox" value="${row.mailboxId}" /><input
                                    type="hidden"
                                    name="uid"
                                    value="${row.uid}"
                                /><button>${s.fetchButton}</button>
                            </form>
                        </td>
                    </tr>`
            )}
        </table>`;
}

function minePart(s: Strings, mine: MineView, csrf: string): Html {
    return html`${heldPart(s, mine, csrf)}
        <h2>${s.outgoingTitle}</h2>
        ${
            mine.outgoing.length
                ? html`<table id="outgoing">
                      <tr>
                          <th>${s.subject}</th>
                          <th>${s.to}</th>
                          <th>${s.state}</th>
                      </tr>
                      ${mine.outgoing.map(
                          row =>
                              html`<tr class="${row.kind}">
                                  <td>${row.subject}</td>
                                  <td>${row.to}</td>
                                  <td>${row.state}</td>
                              </tr>`
                      )}
                  </table>`
                : html`<p>${s.noOutgoing}</p>`
        }
        <h2>${s.healthTitle}</h2>
        ${
            mine.health.length
                ? html`<ul id="health">
                      ${mine.health.map(row => html`<li class="${row.failing ? 'error' : ''}"><strong>${row.account}</strong>: ${row.text}</li>`)}
                  </ul>`
                : html`<p>${s.noAccounts}</p>`
        }
        ${
            mine.usage.length
                ? html`<h2>${s.usageTitle}</h2>
                      <table id="usage">
                          <tr>
                              <th>${s.account}</th>
                              <th>${s.up}</th>
                              <th>${s.down}</th>
                          </tr>
                          ${mine.usage.map(
                              row =>
                                  html`<tr>
                                      <td>${row.account}</td>
                                      <td>${formatBytes(row.up)}</td>
                                      <td>${formatBytes(row.down)}</td>
                                  </tr>`
                          )}
                      </table>`
                : ''
        }`;
}

function endpointRows(s: Strings, endpoints: MailEndpoint[]): Html[] {
    return endpoints.map(
        e =>
            html`<tr>
                <td>${s.port} ${e.port}</td>
                <td>${e.security === 'tls' ? s.sslTls : s.starttls}</td>
            </tr>`
    );
}

export function accountPage(s: Strings, view: AccountView, message?: { kind: 'error' | 'ok'; text: string }): Html {
    return layout(
        s,
        view.name,
        html`${notice(message)} ${view.admin ? html`<p><a href="/admin">${s.adminLink}</a></p>` : ''} ${minePart(s, view.mine, view.csrf)}
            <h2>${s.yourAddresses}</h2>
            <ul>
                ${view.addresses.map(a => html`<li>${a}</li>`)}
            </ul>
            <h2>${s.connectTitle}</h2>
            <p>${s.connectAuto}</p>
            <p>${s.connectManual}</p>
            <table>
                <tr>
                    <th>${s.server}</th>
                    <td colspan="2">${view.hostname}</td>
                </tr>
                <tr>
                    <th>${s.loginName}</th>
                    <td colspan="2">${view.name}</td>
                </tr>
            </table>
            <h2>${s.incoming}</h2>
            <table>
                ${endpointRows(s, view.imap)}
            </table>
            <h2>${s.outgoing}</h2>
            <table>
                ${endpointRows(s, view.smtp)}
            </table>
            <h2>${s.changePassword}</h2>
            <form method="post" action="/password">
                <input type="hidden" name="csrf" value="${view.csrf}" />
                <input type="hidden" name="username" value="${view.name}" autocomplete="username" />
                <label for="current">${s.currentPassword}</label><input id="current" name="current" type="password" autocomplete="current-password" required />
                <label for="next">${s.newPassword}</label><input id="next" name="next" type="password" autocomplete="new-password" required /> <label for="repeat">${s.repeatPassword}</label
                ><input id="repeat" name="repeat" type="password" autocomplete="new-password" required />
                <button>${s.changePassword}</button>
            </form>`,
        logoutBar(s, view.csrf, view.name)
    );
}

export function adminPage(s: Strings, view: { name: string; csrf: string }, body: Html, message?: { kind: 'error' | 'ok'; text: string }): Html {
    return layout(
        s,
        s.adminTitle,
        html`<h1>${s.adminTitle}</h1>
            ${notice(message)} ${body}
            <p><a href="/">${s.back}</a></p>`,
        logoutBar(s, view.csrf, view.name)
    );
}

/** The live run page: refreshed by the browser every `refreshSeconds` while the run goes on. */
export function syncPage(s: Strings, view: { name: string; csrf: string }, body: Html, refreshSeconds: number | undefined): Html {
    return layout(
        s,
        s.syncTitle,
        html`<h1>${s.syncTitle}</h1>
            ${body}
            <p><a href="/admin">${s.adminTitle}</a></p>`,
        logoutBar(s, view.csrf, view.name),
        refreshSeconds
    );
}

export function messagePage(s: Strings, title: string, text: string): Html {
    return layout(
        s,
        title,
        html`<p>${text}</p>
            <p><a href="/">${s.back}</a></p>`
    );
}
