/**
 * Binding a listening socket, and what a failed bind becomes.
 *
 * The daemon runs all of its listeners or none (`mailmule start` exits when one cannot bind), so
 * a failure must say, in words an admin can act on, which listener and why: "port 1587 on
 * 0.0.0.0 is already in use", not `listen EADDRINUSE`.
 */
import type net from 'node:net';

/** A listener could not be bound. `reason` is the cause in words; `code` the system's (EADDRINUSE, ...). */
export class ListenError extends Error {
    override name = 'ListenError';

    constructor(
        /** Which listener, e.g. "the SMTP starttls listener", "the control socket". */
        readonly listener: string,
        /** host:port, or a socket path. */
        readonly address: string,
        readonly reason: string,
        readonly code: string | undefined,
        options?: { cause?: unknown }
    ) {
        super(`cannot start ${listener}: ${reason}${code ? ` [${code}]` : ''}`, options);
    }
}

/** Why `host` `port` could not be bound, in words. */
export function bindFailureReason(host: string, port: number, err: NodeJS.ErrnoException): string {
    switch (err.code) {
        case 'EADDRINUSE':
            return `port ${port} on ${host} is already in use; another program (or another mailmule) listens there`;
        case 'EACCES':
            return port < 1024 ? `port ${port} on ${host} needs privileges: ports below 1024 need root or CAP_NET_BIND_SERVICE` : `port ${port} on ${host}: permission denied`;
        case 'EADDRNOTAVAIL':
            return `${host} is not an address of this machine`;
        case 'EAFNOSUPPORT':
            return `${host}: this machine does not support that address family (IPv6 disabled?)`;
        case 'ENOTFOUND':
        case 'EAI_AGAIN':
        case 'EAI_FAIL':
        case 'EAI_NONAME':
            return `the host name ${host} could not be resolved`;
        default:
            return `port ${port} on ${host}: ${err.message}`;
    }
}

/**
 * Binds `server` (the net.Server under imap-core's IMAPServer or smtp-server's SMTPServer: both
 * libraries' listen() is this same call) and resolves with the bound port; rejects with a
 * ListenError naming `listener`.
 */
export function bind(server: net.Server, listener: string, host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
        const onError = (err: NodeJS.ErrnoException) => reject(new ListenError(listener, `${host}:${port}`, bindFailureReason(host, port, err), err.code, { cause: err }));
        server.once('error', onError);
        server.listen(port, host, () => {
            server.off('error', onError);
            const address = server.address();
            resolve(address && typeof address === 'object' ? address.port : port);
        });
    });
}
