/**
 * The web pages: Thunderbird autoconfig, and (after logging in with the LAN password) each
 * villager's own page. One hono app served on the `web.listeners` of mailmule.yaml.
 */
export { WebService, type WebServiceOptions, type RunningWebListener } from './server';
export type { WebContext, WebUplink } from './context';
export { UplinkWatch, type WatchedRun } from './uplink-watch';
export type { MailEndpoint } from './autoconfig';
