/**
 * A TCP proxy on 127.0.0.1 that plays the spotty 2G uplink between the code under test and a
 * loopback server: it counts the bytes each way, can cut connections after N bytes, and can
 * shape traffic (bandwidth per direction plus a fixed one-way latency per chunk).
 *
 *     const link = await startLinkProxy({ targetPort: upstream.imapPort, bandwidthBps: 256_000, latencyMs: 150 });
 *     // connect the client to 127.0.0.1:link.port …
 *     link.stats();                                  // { bytesUp, bytesDown, connections, active, cuts, turns }
 *     link.setCutAfter(4096);                        // every connection (also open ones) dies after 4 KiB total
 *     link.setCutAfter(i => (i === 0 ? 500 : null)); // only the first connection since start/reset()
 *     link.setCutAfter(i => ({ up: 30_000, down: 40_000 })); // cut once 30 KB went up or 40 KB came down
 *     link.setCutAfter(null);                        // no more cuts
 *     link.reset();                                  // zero the counters and the connection index
 *     await link.close();
 *
 * Semantics:
 *  - "up" is client → target, "down" is target → client. Bytes are counted when they are
 *    written to the far side, so with shaping the counters trail what was sent by up to
 *    bandwidth-delay.
 *  - Cut: a connection may carry at most N bytes in both directions together (a number), or at
 *    most `up` bytes client → target and `down` bytes target → client (an object: a cut at a
 *    chosen offset of an upload or a download, whatever the other direction carried; the
 *    direction that reached its limit is the connection's `cutIn`); the chunk that
 *    crosses the limit is truncated at exactly it, and once those bytes have been delivered both sockets
 *    are closed (`cutMode: 'close'`, a FIN each way), reset (`'reset'`, RST), or silently left
 *    open with nothing forwarded any more (`'blackhole'`, for timeout tests). Bytes still queued
 *    in the other direction at that moment are dropped. The rule is evaluated per connection
 *    index (0-based, counted since start or reset()); setCutAfter() also applies to open
 *    connections (one already past N is cut at once).
 *  - Turns: the times a client spoke after hearing the server since it last spoke, with
 *    nothing more from the server on its way to it (its first words after the greeting count).
 *    A client that waits for each answer before its next command has one turn per command;
 *    one that writes several commands at once, or its next command while an answer is still
 *    arriving, has one for them all. On a link with latency each turn costs a round trip, so
 *    turns are the round trips a session waited for, whatever the load on the machine.
 *  - Shaping: each direction is a link of `bandwidthBps` bits/s (serialisation: a chunk of n
 *    bytes occupies the link n*8/bps seconds, in slices of ≤ 20 ms worth), then every slice is
 *    delivered `latencyMs` later (one way; RTT = 2 × latencyMs). One timer per direction; a
 *    source socket is paused while more than `maxQueuedBytes` wait in its direction, so memory
 *    and timers stay bounded whatever the sender does.
 */
import net from 'node:net';

/** Total bytes (both directions), or bytes per direction (a direction left out is not limited). */
export type CutLimit = number | { up?: number; down?: number };

export type CutRule = CutLimit | null | ((connectionIndex: number) => CutLimit | null | undefined);

export interface LinkProxyOptions {
    targetPort: number;
    targetHost?: string;
    /** Bytes a connection may carry (up + down, or per direction) before it is cut. */
    cutAfterBytes?: CutRule;
    cutMode?: 'close' | 'reset' | 'blackhole';
    /** Bandwidth limit in bits per second, each direction (null/0: unlimited). */
    bandwidthBps?: number | null;
    /** Added one-way latency per chunk, ms. */
    latencyMs?: number;
    /** Per-direction queue bound before the source is paused (default 256 KiB). */
    maxQueuedBytes?: number;
}

export interface LinkStats {
    bytesUp: number;
    bytesDown: number;
    /** Connections accepted since start or reset(). */
    connections: number;
    /** Connections currently open. */
    active: number;
    /** Connections cut by the cut rule (or cutAll()) since start or reset(). */
    cuts: number;
    /** Client turns (round trips waited for) since start or reset(): see the header. */
    turns: number;
}

export interface LinkConnectionStats {
    index: number;
    bytesUp: number;
    bytesDown: number;
    open: boolean;
    cut: boolean;
    /** The direction whose per-direction limit cut the connection (null: not cut, or cut by the total or cutAll()). */
    cutIn: 'up' | 'down' | null;
    turns: number;
}

export interface LinkProxy {
    port: number;
    stats(): LinkStats;
    /** Per connection since start or reset(). */
    connectionStats(): LinkConnectionStats[];
    /** Zero the counters and restart connection indexes at 0 (open connections keep running). */
    reset(): void;
    setCutAfter(rule: CutRule): void;
    setShaping(shaping: { bandwidthBps?: number | null; latencyMs?: number }): void;
    /** Cut every open connection now (link outage), with the configured cutMode. */
    cutAll(): void;
    close(): Promise<void>;
}

type Item = { kind: 'data'; data: Buffer; at: number } | { kind: 'end'; at: number } | { kind: 'cut'; at: number };

interface Limits {
    total: number | null;
    up: number | null;
    down: number | null;
}

interface Shaping {
    bandwidthBps: number | null;
    latencyMs: number;
}

/** One direction of one connection: a shaped, bounded queue from `source` into `sink`. */
class Pipe {
    private readonly queue: Item[] = [];
    private queued = 0;
    private nextFree = 0; // when the (simulated) link finishes serialising what it holds
    private lastAt = 0;
    private timer: NodeJS.Timeout | null = null;
    private pausedForQueue = false;
    private pausedForDrain = false;
    closed = false;

    constructor(
        private readonly source: net.Socket,
        private readonly sink: net.Socket,
        private readonly shaping: () => Shaping,
        private readonly maxQueued: number,
        private readonly onDelivered: (bytes: number) => void,
        private readonly onCut: () => void
    ) {
        sink.on('drain', () => {
            this.pausedForDrain = false;
            this.updateFlow();
        });
    }

    /** Accept `data` from the source (already truncated to the cut budget). */
    push(data: Buffer): void {
        if (this.closed || data.length === 0) return;
        const { bandwidthBps, latencyMs } = this.shaping();
        const now = performance.now();
        if (!bandwidthBps && !latencyMs && this.queue.length === 0) {
            this.write(data);
            return;
        }
        if (bandwidthBps) {
            // Slices of at most ~20 ms of link time, so a big chunk trickles out rather than lands at once.
            const slice = Math.max(256, Math.floor(bandwidthBps / 8 / 50));
            for (let offset = 0; offset < data.length; offset += slice) {
                const piece = data.subarray(offset, Math.min(data.length, offset + slice));
                const start = Math.max(now, this.nextFree);
                this.nextFree = start + (piece.length * 8 * 1000) / bandwidthBps;
                this.enqueue({ kind: 'data', data: piece, at: this.nextFree + latencyMs });
            }
        } else {
            this.enqueue({ kind: 'data', data, at: now + latencyMs });
        }
        this.updateFlow();
    }

    /** Nothing waits to be delivered in this direction. */
    idle(): boolean {
        return this.queue.length === 0;
    }

    /** Source ended: pass the FIN on after the data in flight. */
    end(): void {
        if (this.closed) return;
        if (this.queue.length === 0) this.sink.end();
        else this.enqueue({ kind: 'end', at: this.lastAt });
    }

    /** Cut the connection once what is already queued in this direction has been delivered. */
    cutAfterQueue(): void {
        if (this.closed) return;
        if (this.queue.length === 0) this.onCut();
        else this.enqueue({ kind: 'cut', at: this.lastAt });
    }

    stop(): void {
        this.closed = true;
        if (this.timer) clearTimeout(this.timer);
        this.timer = null;
        this.queue.length = 0;
        this.queued = 0;
    }

    private enqueue(item: Item): void {
        item.at = Math.max(item.at, this.lastAt); // never reorder
        this.lastAt = item.at;
        this.queue.push(item);
        if (item.kind === 'data') this.queued += item.data.length;
        this.schedule();
    }

    private schedule(): void {
        if (this.timer || this.closed || this.queue.length === 0) return;
        const wait = Math.max(0, this.queue[0].at - performance.now());
        this.timer = setTimeout(() => {
            this.timer = null;
            this.flush();
        }, wait);
    }

    private flush(): void {
        const now = performance.now() + 1; // timers fire with ms granularity
        while (!this.closed && this.queue.length > 0 && this.queue[0].at <= now) {
            const item = this.queue.shift()!;
            if (item.kind === 'data') {
                this.queued -= item.data.length;
                this.write(item.data);
            } else if (item.kind === 'end') {
                this.sink.end();
            } else {
                this.onCut();
                return;
            }
        }
        this.updateFlow();
        this.schedule();
    }

    private write(data: Buffer): void {
        if (this.sink.destroyed) return;
        this.onDelivered(data.length);
        if (!this.sink.write(data)) this.pausedForDrain = true;
        this.updateFlow();
    }

    private updateFlow(): void {
        if (this.closed) return;
        this.pausedForQueue = this.queued > this.maxQueued;
        if (this.pausedForQueue || this.pausedForDrain) this.source.pause();
        else this.source.resume();
    }
}

export async function startLinkProxy(options: LinkProxyOptions): Promise<LinkProxy> {
    const targetHost = options.targetHost ?? '127.0.0.1';
    const cutMode = options.cutMode ?? 'close';
    const maxQueued = options.maxQueuedBytes ?? 256 * 1024;
    let rule: CutRule = options.cutAfterBytes ?? null;
    let shaping: Shaping = { bandwidthBps: options.bandwidthBps || null, latencyMs: Math.max(0, options.latencyMs ?? 0) };
    let totals = { bytesUp: 0, bytesDown: 0, connections: 0, cuts: 0, turns: 0 };
    let perConnection: LinkConnectionStats[] = [];

    interface Conn {
        stats: LinkConnectionStats;
        limits: Limits; // what the cut rule allows this connection (absolute byte counts)
        accepted: { total: number; up: number; down: number }; // bytes taken in so far
        cutting: boolean; // a limit reached: ignore further input, cut once delivered
        cut(): void;
        applyRule(): void;
        destroy(reset?: boolean): void;
    }
    const open = new Set<Conn>();

    const evaluate = (index: number): Limits => {
        const value = typeof rule === 'function' ? rule(index) : rule;
        const bound = (bytes: number | undefined) => (bytes === undefined ? null : Math.max(0, Math.floor(bytes)));
        if (value === null || value === undefined) return { total: null, up: null, down: null };
        if (typeof value === 'number') return { total: bound(value), up: null, down: null };
        return { total: null, up: bound(value.up), down: bound(value.down) };
    };
    /** Bytes `conn` may still take in `direction` (null: unlimited). */
    const room = (conn: Conn, direction: 'up' | 'down'): number | null => {
        const left = [conn.limits.total === null ? null : conn.limits.total - conn.accepted.total, conn.limits[direction] === null ? null : conn.limits[direction] - conn.accepted[direction]];
        const bounded = left.filter((bytes): bytes is number => bytes !== null);
        return bounded.length ? Math.min(...bounded) : null;
    };

    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, client => {
        const index = totals.connections++;
        const stats: LinkConnectionStats = { index, bytesUp: 0, bytesDown: 0, open: true, cut: false, cutIn: null, turns: 0 };
        // Whether the client has been delivered something since it last spoke (a turn is due).
        let heard = false;
        perConnection.push(stats);
        const target = net.connect({ host: targetHost, port: options.targetPort, allowHalfOpen: true });
        target.pause();
        client.setNoDelay(true);
        target.setNoDelay(true);
        let finished = false;

        const conn: Conn = {
            stats,
            limits: { total: null, up: null, down: null },
            accepted: { total: 0, up: 0, down: 0 },
            cutting: false,
            cut() {
                if (finished || stats.cut) return;
                stats.cut = true;
                totals.cuts++;
                up.stop();
                down.stop();
                if (cutMode === 'reset') return conn.destroy(true);
                // Whatever still arrives is read and dropped (take() ignores it while cutting).
                client.resume();
                target.resume();
                if (cutMode === 'blackhole') return; // both stay open, nothing is forwarded
                // 'close': FIN both ways once what was already written has been flushed, then destroy.
                let pending = 2;
                const timer = setTimeout(() => conn.destroy(), 1000);
                const flushed = () => {
                    if (--pending === 0) {
                        clearTimeout(timer);
                        conn.destroy();
                    }
                };
                for (const socket of [client, target]) {
                    if (socket.writableFinished || socket.destroyed) flushed();
                    else {
                        socket.once('finish', flushed);
                        socket.end();
                    }
                }
            },
            applyRule() {
                conn.limits = evaluate(index);
                const spent = (['up', 'down'] as const).find(direction => (room(conn, direction) ?? 1) <= 0);
                if (spent && !conn.cutting) {
                    conn.cutting = true;
                    if (conn.limits[spent] !== null && conn.accepted[spent] >= conn.limits[spent]) stats.cutIn = spent;
                    conn.cut();
                }
            },
            destroy(reset = false) {
                if (finished) return;
                finished = true;
                stats.open = false;
                open.delete(conn);
                up.stop();
                down.stop();
                if (reset) {
                    client.resetAndDestroy();
                    target.resetAndDestroy();
                } else {
                    client.destroy();
                    target.destroy();
                }
            }
        };
        open.add(conn);

        const up = new Pipe(
            client,
            target,
            () => shaping,
            maxQueued,
            n => {
                stats.bytesUp += n;
                totals.bytesUp += n;
            },
            () => conn.cut()
        );
        const down = new Pipe(
            target,
            client,
            () => shaping,
            maxQueued,
            n => {
                stats.bytesDown += n;
                totals.bytesDown += n;
                heard = true;
            },
            () => conn.cut()
        );

        const take = (pipe: Pipe, direction: 'up' | 'down', chunk: Buffer) => {
            if (conn.cutting || finished) return;
            let data = chunk;
            const left = room(conn, direction);
            if (left !== null && data.length >= left) {
                data = data.subarray(0, left);
                conn.cutting = true;
                if (conn.limits[direction] !== null && conn.accepted[direction] + data.length >= conn.limits[direction]) stats.cutIn = direction;
            }
            conn.accepted.total += data.length;
            conn.accepted[direction] += data.length;
            pipe.push(data);
            if (conn.cutting) {
                client.pause();
                target.pause();
                pipe.cutAfterQueue();
            }
        };

        // A FIN is passed on after the data queued before it; once both directions are done the
        // sockets close by themselves (allowHalfOpen) and 'close' below tidies up.
        const ended = (pipe: Pipe) => {
            if (conn.cutting || finished) return;
            pipe.end();
        };
        client.on('data', chunk => {
            if (heard && down.idle()) {
                heard = false;
                stats.turns++;
                totals.turns++;
            }
            take(up, 'up', chunk);
        });
        target.on('data', chunk => take(down, 'down', chunk));
        client.on('end', () => ended(up));
        target.on('end', () => ended(down));
        // An error (or RST) on either side tears the pair down at once. A clean close of one side
        // only stops the pipe into it: the other direction still delivers what it has queued
        // (shaping) and then its FIN; the pair is finished when both sockets are closed.
        let closedSockets = 0;
        const closed = (into: Pipe, hadError: boolean) => {
            if (hadError || conn.cutting) return conn.destroy();
            into.stop();
            if (++closedSockets === 2) conn.destroy();
        };
        client.on('close', hadError => closed(down, hadError));
        target.on('close', hadError => closed(up, hadError));
        client.on('error', () => conn.destroy());
        target.on('error', () => conn.destroy());
        target.once('connect', () => {
            conn.applyRule();
            if (!finished && !conn.cutting) {
                client.resume();
                target.resume();
            }
        });
    });
    server.on('error', () => undefined);

    await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve());
    });
    const port = (server.address() as net.AddressInfo).port;

    return {
        port,
        stats: () => ({ ...totals, active: open.size }),
        connectionStats: () => perConnection.map(c => ({ ...c })),
        reset() {
            totals = { bytesUp: 0, bytesDown: 0, connections: 0, cuts: 0, turns: 0 };
            perConnection = [];
            // Open connections keep their index for the cut rule and count into the new totals.
        },
        setCutAfter(next) {
            rule = next;
            for (const conn of [...open]) if (!conn.cutting) conn.applyRule();
        },
        setShaping(next) {
            shaping = {
                bandwidthBps: next.bandwidthBps === undefined ? shaping.bandwidthBps : next.bandwidthBps || null,
                latencyMs: next.latencyMs === undefined ? shaping.latencyMs : Math.max(0, next.latencyMs)
            };
        },
        cutAll() {
            for (const conn of [...open]) {
                conn.cutting = true;
                conn.cut();
            }
        },
        close() {
            for (const conn of [...open]) conn.destroy();
            return new Promise<void>(resolve => server.close(() => resolve()));
        }
    };
}
