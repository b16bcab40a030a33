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

/** `count` distinct free ports: all are held open together before any is closed, so none repeats. */
export async function freePorts(count: number): Promise<number[]> {
    const servers = await Promise.all(
        Array.from(
            { length: count },
            () =>
                new Promise<net.Server>((resolve, reject) => {
                    const server = net.createServer();
                    server.unref();
                    server.once('error', reject);
                    server.listen(0, '127.0.0.1', () => resolve(server));
                })
        )
    );
    const ports = servers.map(server => (server.address() as net.AddressInfo).port);
    await Promise.all(servers.map(server => new Promise<void>(resolve => server.close(() => resolve()))));
    return ports;
}
