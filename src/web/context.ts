/** What the web pages need from the daemon: the store, the shared login check, the mail listeners. */
import type { Store } from '../store';
import type { LoginSource } from '../auth';
import type { Logger } from '../log';
import type { MailEndpoint } from './autoconfig';
import type { WatchedRun } from './uplink-watch';

/** What the status page may do with the daemon's uplink: start a run, and watch the latest. */
export interface WebUplink {
    /** Starts a run in the background unless one is going on or the daemon is not ready; never waits for it. */
    startRun(trigger: string): 'started' | 'busy' | 'not-ready';
    isRunning(): boolean;
    /** The latest run started in this daemon, live (UplinkWatch). */
    latest(): WatchedRun | null;
    /** uplink.budget.perDay in bytes (0: none). */
    budgetPerDay(): number;
}

/** LoginSource's limiter is the same penalty table as IMAP's and SMTP's: a failure on the web page counts there too. */
export interface WebContext extends LoginSource {
    store: Store;
    logger: Logger;
    /** The name clients connect to (the certificate's name). */
    hostname(): string;
    /** The local CA certificate (PEM) that the LAN certificate comes from; null when the admin's own pair is served. */
    localCa(): string | null;
    /** The running IMAP and SMTP listeners (ports as bound). */
    mailListeners(): { imap: MailEndpoint[]; smtp: MailEndpoint[] };
    /** The folder whose stubs the next uplink downloads whole ("Fetch full"). */
    fetchFullFolder: string;
    /** When the uplink next runs by itself (null: no schedule). */
    nextRun(): Date | null;
    verifyPassword(password: string, stored: string | null): Promise<boolean>;
    hashPassword(password: string): Promise<string>;
    uplink: WebUplink;
}
