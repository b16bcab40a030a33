/**
 * Loads imap-core from @zone-eu/wildduck. Servers are created with `standalone: true` (patch 110),
 * so WildDuck's error reporter, GELF and metrics are never loaded; DISABLE_WILD_CONFIG stays as a
 * guard, so that if any module ever loads wild-config it cannot read ./config from the working
 * directory (and exit on a file it cannot parse). Fixes to imap-core itself are patch files
 * (patches/, applied at install by patch-package), never changes made here at run time.
 */
process.env.DISABLE_WILD_CONFIG = 'true';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const imapCore = require('@zone-eu/wildduck/imap-core') as typeof import('@zone-eu/wildduck/imap-core');

export const IMAPServer = imapCore.IMAPServer;
export const imapHandler = imapCore.imapHandler;
