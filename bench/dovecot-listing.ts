/**
 * A session that makes Dovecot build the index and cache of an INBOX the way a mail client's
 * listing does (SELECT, UID FETCH 1:* (FLAGS), the header-fields fetch of bench:imap), for
 * bench/disk.ts and bench/disk-writes.ts.
 */
import { MeteredImapClient } from './metered-imap-client';
import { HOST } from './support';

const HEADER_FIELDS = 'From To Cc Subject Date Message-ID References Content-Type';

export async function dovecotListing(port: number, user: string, password: string): Promise<void> {
    const { client } = await MeteredImapClient.connect(HOST, port, 10000);
    try {
        // On a loaded machine Dovecot's auth process can answer "Temporary authentication failure" at first.
        for (let attempt = 1; ; attempt++) {
            const login = await client.command(`LOGIN ${user} "${password}"`, { timeoutMs: 60000 });
            if (login.status === 'OK') break;
            if (attempt === 10) throw new Error(`dovecot LOGIN: ${login.line}`);
        }
        for (const command of ['SELECT INBOX', 'UID FETCH 1:* (FLAGS)', `UID FETCH 1:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (${HEADER_FIELDS})])`]) {
            const result = await client.command(command, { timeoutMs: 600000 });
            if (result.status !== 'OK') throw new Error(`dovecot ${command}: ${result.line}`);
        }
        await client.command('LOGOUT', { timeoutMs: 10000 });
    } finally {
        await client.close();
    }
}
