/**
 * Free TCP ports for tests (and, through bench/support.ts, for benchmarks). Every server under
 * test listens on a port chosen at run time, never a fixed one, so runs cannot collide.
 */
import net from 'node:net';

/**
 * A TCP port on 127.0.0.1 that was free a moment ago: the kernel picks it, the listener is closed
 * again at once and the caller's server binds it. unref(): a pending probe never keeps the
 * process alive.
 */
export function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const server = net.createServer();
        server.unref();
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => {
            const { port } = server.address() as net.AddressInfo;
            server.close(() => resolve(port));
        });
    });
}
