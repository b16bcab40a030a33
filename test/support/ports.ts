/**
 * Free TCP ports for tests (and, through bench/support.ts, for benchmarks). Every server under
 * test listens on a port chosen at run time, never a fixed one, so runs cannot collide.
 *
 * The ports come from below the kernel's ephemeral range (net.ipv4.ip_local_port_range, 32768–60999
 * by default) when there is room there. A port the kernel picks for `listen(0)` comes from that
 * range, and so does the source port of every outgoing connection: between the probe and the
 * moment a daemon binds the port (seconds later, after `mailmule passwd` has run), another test's
 * client connection could take it, and the daemon then refused to start (EADDRINUSE, once in
 * about 90 runs of the backup test under load). Below the range only other probes compete, each
 * at a random port of several thousand.
 */
import fs from 'node:fs';
import net from 'node:net';

/** The lowest port a probe picks from, and the fewest ports the span below the ephemeral range must have to be used. */
const LOWEST_PORT = 20000;
const MIN_SPAN = 2000;
/** Random ports tried below the ephemeral range before the kernel is asked instead. */
const ATTEMPTS = 20;

/** The first port of the kernel's ephemeral range (32768 when it cannot be read). */
function ephemeralStart(): number {
    try {
        const first = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
        return Number.isInteger(first) && first > 0 ? first : 32768;
    } catch {
        return 32768;
    }
}

const SPAN_END = ephemeralStart();

/** A server listening on `port` of 127.0.0.1 (0: the kernel picks), or null when the port is taken. unref(): it never keeps the process alive. */
function listenOn(port: number): Promise<net.Server | null> {
    return new Promise((resolve, reject) => {
        const server = net.createServer();
        server.unref();
        server.once('error', (err: NodeJS.ErrnoException) => (err.code === 'EADDRINUSE' || err.code === 'EACCES' ? resolve(null) : reject(err)));
        server.listen(port, '127.0.0.1', () => resolve(server));
    });
}

/** A listening probe server: on a random port below the ephemeral range if one of ATTEMPTS is free, else on one the kernel picks. */
async function probe(): Promise<net.Server> {
    if (SPAN_END - LOWEST_PORT >= MIN_SPAN) {
        for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
            const port = LOWEST_PORT + Math.floor(Math.random() * (SPAN_END - LOWEST_PORT));
            const server = await listenOn(port);
            if (server) return server;
        }
    }
    const server = await listenOn(0);
    if (!server) throw new Error('no free port on 127.0.0.1');
    return server;
}

function portOf(server: net.Server): number {
    return (server.address() as net.AddressInfo).port;
}

function close(server: net.Server): Promise<void> {
    return new Promise(resolve => server.close(() => resolve()));
}

/** A TCP port on 127.0.0.1 that was free a moment ago: the probe's listener is closed again at once and the caller's server binds it. */
export async function freePort(): Promise<number> {
    const server = await probe();
    const port = portOf(server);
    await close(server);
    return port;
}

/** `count` distinct free ports: all are held open together before any is closed, so none repeats. */
export async function freePorts(count: number): Promise<number[]> {
    // One after another: a port held by an earlier probe is taken, so a later one cannot get it again.
    const servers: net.Server[] = [];
    for (let index = 0; index < count; index++) servers.push(await probe());
    const ports = servers.map(portOf);
    await Promise.all(servers.map(close));
    return ports;
}
