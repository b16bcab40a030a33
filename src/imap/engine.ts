/**
 * Loads imap-core from @zone-eu/wildduck without its side effects: wild-config would read
 * ./config from the working directory (and exit on a file it cannot parse), and lib/errors.js
 * would print every BAD command to stderr. Fixes to imap-core itself are patch files
 * (patches/, applied at install by patch-package), never changes made here at run time.
 */
process.env.DISABLE_WILD_CONFIG = 'true';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const errors = require('@zone-eu/wildduck/lib/errors') as { setGelf(gelf: { emit(...args: unknown[]): void }): void };
errors.setGelf({ emit() {} });

// eslint-disable-next-line @typescript-eslint/no-require-imports
const imapCore = require('@zone-eu/wildduck/imap-core') as typeof import('@zone-eu/wildduck/imap-core');

export const IMAPServer = imapCore.IMAPServer;
export const imapHandler = imapCore.imapHandler;
