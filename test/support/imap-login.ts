/**
 * Whether a user name and password open an IMAP session: imapflow over implicit TLS on loopback,
 * logged out at once. For tests that check which password IMAP accepts after a change elsewhere.
 */
import { ImapFlow } from 'imapflow';

/** Logs in on `port` (implicit TLS, the test gateway's certificate not checked) and out again; false when refused. */
export function imapLoginSucceeds(port: number, user: string, pass: string): Promise<boolean> {
    const imap = new ImapFlow({ host: '127.0.0.1', port, secure: true, auth: { user, pass }, logger: false, tls: { rejectUnauthorized: false } });
    imap.on('error', () => undefined);
    return imap.connect().then(
        async () => {
            await imap.logout();
            return true;
        },
        () => false
    );
}
