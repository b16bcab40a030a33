/**
 * Counts what the uplink really costs: bytes on the TCP socket each way, after TLS and
 * compression, for every connection opened during a run. The budget is checked against it.
 */
import net from 'node:net';
import tls from 'node:tls';

export interface WireCounts {
    sent: number;
    received: number;
}

export class WireMeter {
    private readonly sockets = new Set<net.Socket>();
    private closedSent = 0;
    private closedReceived = 0;

    /** Opens a plain TCP connection whose bytes count towards this meter. */
    connect(host: string, port: number, timeoutMs: number): net.Socket {
        const socket = net.connect({ host, port });
        socket.setTimeout(timeoutMs);
        this.track(socket);
        return socket;
    }

    track(socket: net.Socket): void {
        this.sockets.add(socket);
        socket.once('close', () => {
            this.closedSent += socket.bytesWritten;
            this.closedReceived += socket.bytesRead;
            this.sockets.delete(socket);
        });
    }

    totals(): WireCounts {
        let sent = this.closedSent;
        let received = this.closedReceived;
        for (const socket of this.sockets) {
            sent += socket.bytesWritten;
            received += socket.bytesRead;
        }
        return { sent, received };
    }

    total(): number {
        const counts = this.totals();
        return counts.sent + counts.received;
    }
}

/** A child meter: counts one account's connections and also feeds the run's meter. */
export class AccountMeter extends WireMeter {
    constructor(private readonly parent: WireMeter) {
        super();
    }

    override track(socket: net.Socket): void {
        super.track(socket);
        this.parent.track(socket);
    }
}

/**
 * A counted TCP connection opened before it is needed (while the receive modules load), for
 * imapTransport(): the handshake and the server's greeting cross the link meanwhile. A failure
 * before it is taken is not an error of its own: imapTransport() then opens another.
 */
export function openEarly(meter: WireMeter, host: string, port: number, timeoutMs: number): net.Socket {
    const socket = meter.connect(host, port, timeoutMs);
    socket.on('error', () => undefined);
    return socket;
}

/**
 * An imapflow `transport` whose sockets are counted by `meter`: TLS (implicit or after
 * STARTTLS) runs over the counted TCP socket, so the meter sees encrypted, compressed bytes.
 * `early`: a connection from openEarly() to the same server, taken by the first connect.
 */
export function imapTransport(meter: WireMeter, timeoutMs: number, early: net.Socket | null = null) {
    return {
        connect(options: { host: string; port: number; secure: boolean; servername?: string; tls?: tls.ConnectionOptions }, onConnect: () => void) {
            const taken = early && !early.destroyed ? early : null;
            early = null;
            const raw = taken ?? meter.connect(options.host, options.port, timeoutMs);
            if (!options.secure) {
                // Already connected: imapflow still expects the callback after connect() returns.
                if (raw.connecting) raw.once('connect', onConnect);
                else process.nextTick(onConnect);
                return raw;
            }
            const secure = tls.connect({ ...(options.tls ?? {}), socket: raw, servername: options.servername ?? (net.isIP(options.host) ? undefined : options.host) }, onConnect);
            return secure;
        },
        upgrade(socket: net.Socket, options: { host: string; servername?: string; tls?: tls.ConnectionOptions }, onSecure: () => void) {
            return tls.connect({ ...(options.tls ?? {}), socket, servername: options.servername ?? (net.isIP(options.host) ? undefined : options.host) }, onSecure);
        }
    };
}
