/**
 * The "courier" flavour of the test upstream (startUpstream({ flavour: 'courier' }) in upstream.ts):
 * the same Dovecot, configured to look the way Courier IMAP, many ISPs' servers and cPanel hosting
 * look to a client:
 *
 *  - one personal namespace `INBOX.` with `.` as the hierarchy delimiter
 *    (`NAMESPACE (("INBOX." ".")) NIL NIL`; folders are `INBOX.Sent`, `INBOX.Work.Projects`);
 *  - a CAPABILITY without CONDSTORE, QRESYNC, COMPRESS, SPECIAL-USE, MOVE, LIST-EXTENDED, LIST-STATUS
 *    or ESEARCH (imap_capability), so clients see no special-use attributes, no MODSEQs, no
 *    compression;
 *  - no UIDNEXT in the answer to SELECT/EXAMINE, as Courier 5 sends none: Dovecot always sends it, so
 *    the flavour's IMAP port is a small front (startUidNextFilter) that drops the untagged
 *    `* OK [UIDNEXT n]` lines from what the server says and passes everything else through,
 *    literals included, unchanged. STATUS (UIDNEXT) still answers, as on Courier.
 *
 * Courier itself cannot be installed beside dovecot-imapd on Debian (both provide the imap
 * server packages), hence this imitation. Not combined with `tls: true` (the front reads the
 * stream as plain text).
 */
import net from 'node:net';

/** Post-login CAPABILITY: what Courier IMAP 5 offers, as far as Dovecot implements it. */
export const COURIER_CAPABILITY = 'IMAP4rev1 LITERAL+ UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT THREAD=REFERENCES SORT IDLE ENABLE UTF8=ACCEPT';

/**
 * What the flavour adds at the end of dovecot.conf. Dovecot merges sections of one name, so this
 * changes the default flavour's `namespace inbox` (as Debian's conf.d files do): `INBOX.` prefix,
 * `.` delimiter, no special-use attributes, no Junk folder made for every user.
 */
export function courierConf(): string {
    return `namespace inbox {
  prefix = INBOX.
  separator = .
  mailbox Drafts {
    special_use =
  }
  mailbox Sent {
    special_use =
  }
  mailbox Trash {
    special_use =
  }
  mailbox Junk {
    special_use =
    auto = no
  }
}
imap_capability = ${COURIER_CAPABILITY}
`;
}

export interface UidNextFilter {
    port: number;
    close(): Promise<void>;
}

/** `* OK [UIDNEXT 12] Predicted next UID` (any case), the line SELECT and EXAMINE send. */
const UIDNEXT_LINE = /^\* OK \[UIDNEXT \d+\]/i;
/** A line that ends with a literal's announcement: the next n bytes are data, not lines. */
const LITERAL_AT_END = /\{(\d+)\+?\}\r\n$/;

/**
 * A TCP front on 127.0.0.1 for the IMAP server at `targetPort` that removes the untagged UIDNEXT
 * response lines from what the server sends. Client to server is passed through as it is.
 */
export async function startUidNextFilter(targetPort: number): Promise<UidNextFilter> {
    const sockets = new Set<net.Socket>();
    const server = net.createServer(client => {
        const upstream = net.connect({ host: '127.0.0.1', port: targetPort });
        sockets.add(client).add(upstream);
        let pending: Buffer = Buffer.alloc(0);
        let literal = 0;
        upstream.on('data', (chunk: Buffer) => {
            pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
            const out: Buffer[] = [];
            for (;;) {
                if (literal > 0) {
                    const take = Math.min(literal, pending.length);
                    out.push(pending.subarray(0, take));
                    pending = pending.subarray(take);
                    literal -= take;
                    if (literal > 0) break;
                }
                const end = pending.indexOf('\r\n');
                if (end < 0) break;
                const line = pending.subarray(0, end + 2);
                pending = pending.subarray(end + 2);
                const text = line.toString('latin1');
                const announced = LITERAL_AT_END.exec(text);
                if (announced) literal = Number(announced[1]);
                if (!UIDNEXT_LINE.test(text)) out.push(line);
            }
            // Backpressure: the server waits while the client has not taken what it was sent.
            if (out.length && !client.write(Buffer.concat(out))) upstream.pause();
        });
        client.on('drain', () => upstream.resume());
        const closeBoth = () => {
            client.destroy();
            upstream.destroy();
            sockets.delete(client);
            sockets.delete(upstream);
        };
        client.pipe(upstream);
        upstream.on('end', () => {
            if (pending.length) client.write(pending);
            client.end();
        });
        client.on('error', closeBoth);
        upstream.on('error', closeBoth);
        client.on('close', closeBoth);
        upstream.on('close', closeBoth);
    });
    await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', resolve);
    });
    return {
        port: (server.address() as net.AddressInfo).port,
        close: () =>
            new Promise<void>(resolve => {
                for (const socket of sockets) socket.destroy();
                server.close(() => resolve());
            })
    };
}
