/**
 * The relay's HTTPS face (docs/relay.md, "Transfer"). Every request names its Pi and carries
 * that Pi's signature (request-auth.ts). Transfers resume by byte offset both ways:
 *
 * - HEAD /v1/up/<seq>: how many bytes of up bundle <seq> the relay holds (Upload-Offset), and
 *   whether it has it all (Upload-Complete).
 * - PUT /v1/up/<seq> with Content-Range: bytes <from>-<to>/<total>: appends, when <from> is what
 *   the relay holds (else 409 with Upload-Offset). A cut request keeps what arrived. At <total>
 *   the bundle is verified whole (checksum, the Pi's signature) and kept, and its processing
 *   starts (PiExchange.prepare); a damaged one is dropped (422) to be sent again from 0.
 * - POST /v1/exchange/<seq>: the exchange for an uploaded up bundle (exchange.ts); answers the
 *   down bundles waiting for the Pi: {"down":[{"seq":1,"bytes":123}]}. X-Mailmule-Room: what
 *   the Pi's run may still spend on them (its budget), which decides headers first.
 *   X-Mailmule-Growing: 1: the Pi fetches a down bundle as it is written; the answer comes when
 *   the new one is started, listed with "bytes":null.
 * - GET /v1/down/<seq>, with Range: bytes=<from>-[<to>]: a down bundle from <from> (to <to>).
 *   One being written goes out as it grows (growing-bundle.ts): 206, X-Bundle-Growing: 1, no
 *   length, and its whole size in the trailer X-Bundle-Bytes once known.
 */
import fs from 'node:fs';
import type http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import type { Logger } from '../../log';
import { BundleError, verifyBundle } from '../../bundle';
import { verifyRequest } from '../request-auth';
import { PiExchange } from './exchange';
import type { RelayHome } from './home';

export interface RelayServerOptions {
    home: RelayHome;
    host: string;
    port: number;
    tls: { cert: Buffer; key: Buffer };
    logger: Logger;
    names: { hostname: string; localDomain: string };
    /** The largest up bundle accepted. */
    maxUploadBytes?: number;
}

export interface RelayServer {
    port: number;
    close(): Promise<void>;
}

class HttpError extends Error {
    constructor(
        readonly status: number,
        message: string,
        readonly headers: Record<string, string> = {}
    ) {
        super(message);
    }
}

/** Writes waiting on the disk beyond which the request is paused (bytes). */
const APPEND_HIGH_WATER = 1024 * 1024;

/**
 * Takes a PUT's body from its first byte (a request cut while it waits for its turn is
 * destroyed with what it had buffered) and appends it to `file` in the Pi's turn (`serial`),
 * at most `limit` bytes; resolves, once every byte that arrived is written, to whether the
 * request came whole. A cut request keeps all it delivered, so the Pi goes on from there: a
 * cut costs only the bytes in flight. Must be called before the handler's first await.
 */
function appendBody(req: http.IncomingMessage, file: string, range: { from: number; limit: number }, serial: PiExchange['serial']): Promise<boolean> {
    const { from, limit } = range;
    const chunks: Buffer[] = [];
    let queued = 0;
    let seen = 0;
    let failure: Error | null = null;
    let done = false;
    let wake: (() => void) | null = null;
    const poke = () => {
        const waiting = wake;
        wake = null;
        waiting?.();
    };
    req.on('data', (chunk: Buffer) => {
        if (failure) return;
        const room = limit - seen;
        seen += chunk.length;
        if (chunk.length > room) failure = new HttpError(400, 'more bytes than the Content-Range says');
        const data = chunk.subarray(0, Math.max(0, Math.min(room, chunk.length)));
        if (data.length) {
            chunks.push(data);
            queued += data.length;
        }
        if (queued > APPEND_HIGH_WATER) req.pause();
        poke();
    });
    const finish = () => {
        done = true;
        poke();
    };
    req.once('end', finish);
    req.once('close', finish);
    req.once('error', finish);
    return serial(async () => {
        const handle = await fs.promises.open(file, 'a', 0o600);
        try {
            // Checked again in the turn: a request before it may have written since.
            const held = (await handle.stat()).size;
            if (held !== from) throw new HttpError(409, `the relay holds ${held} bytes of this bundle`, { 'upload-offset': String(held) });
            for (;;) {
                const chunk = chunks.shift();
                if (chunk) {
                    await handle.write(chunk);
                    queued -= chunk.length;
                    if (queued <= APPEND_HIGH_WATER / 2 && !failure && req.isPaused()) req.resume();
                } else if (done || failure) {
                    break;
                } else {
                    await new Promise<void>(resolve => (wake = resolve));
                }
            }
        } catch (err) {
            req.destroy();
            throw err;
        } finally {
            await handle.close();
        }
        if (failure) throw failure;
        return req.complete;
    });
}

export async function startRelayServer(options: RelayServerOptions): Promise<RelayServer> {
    const exchanges = new Map<string, PiExchange>();
    const maxUpload = options.maxUploadBytes ?? 2 * 1024 ** 3;

    function exchangeFor(req: http.IncomingMessage, path: string): PiExchange {
        const id = String(req.headers['x-mailmule-pi'] ?? '');
        const pi = options.home.pi(id);
        const range = String(req.headers['content-range'] ?? req.headers.range ?? '');
        if (!pi || !verifyRequest(pi.key, req.method ?? '', path, range, String(req.headers['x-mailmule-time'] ?? ''), String(req.headers['x-mailmule-signature'] ?? ''))) {
            throw new HttpError(401, 'not a paired Pi, or a bad or stale signature');
        }
        let exchange = exchanges.get(pi.id);
        if (!exchange) {
            exchange = new PiExchange(options.home, pi, options.logger, options.names);
            exchanges.set(pi.id, exchange);
        }
        return exchange;
    }

    async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
        const url = new URL(req.url ?? '/', 'https://relay');
        const match = /^\/v1\/(up|exchange|down)\/(\d{1,15})$/.exec(url.pathname);
        if (!match) throw new HttpError(404, 'no such resource');
        const [, what, seqText] = match;
        const seq = Number(seqText);
        const exchange = exchangeFor(req, url.pathname);
        const partial = `${exchange.upFile(seq)}.partial`;

        if (what === 'up' && req.method === 'HEAD') {
            // After the PUTs before it: one cut on the way may still be writing what it delivered.
            const { complete, offset } = await exchange.serial(() => {
                const complete = exchange.processed(seq) || fs.existsSync(exchange.upFile(seq));
                return Promise.resolve({ complete, offset: complete ? 0 : (fs.statSync(partial, { throwIfNoEntry: false })?.size ?? 0) });
            });
            // content-length: without it the answer to a HEAD closes the connection, which the Pi keeps alive for its next request.
            res.writeHead(200, { 'content-length': '0', 'upload-offset': String(offset), 'upload-complete': complete ? '1' : '0' }).end();
            return;
        }
        if (what === 'up' && req.method === 'PUT') {
            if (exchange.processed(seq) || fs.existsSync(exchange.upFile(seq))) {
                res.writeHead(200, { 'content-type': 'application/json', 'upload-complete': '1' }).end('{"complete":true}');
                return;
            }
            const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(String(req.headers['content-range'] ?? ''));
            if (!range) throw new HttpError(400, 'Content-Range: bytes <from>-<to>/<total> is required');
            const [from, to, total] = range.slice(1).map(Number);
            if (total > maxUpload) throw new HttpError(413, `an up bundle of ${total} bytes; at most ${maxUpload}`);
            if (to < from || to >= total) throw new HttpError(400, 'a Content-Range that does not fit its total');
            const held = fs.statSync(partial, { throwIfNoEntry: false })?.size ?? 0;
            if (from !== held) throw new HttpError(409, `the relay holds ${held} bytes of this bundle`, { 'upload-offset': String(held) });
            // A cut upload keeps what arrived; the Pi asks (HEAD) where to go on from.
            if (!(await appendBody(req, partial, { from, limit: to - from + 1 }, fn => exchange.serial(fn)))) {
                res.destroy();
                return;
            }
            const size = fs.statSync(partial).size;
            if (size < total) {
                res.writeHead(200, { 'content-type': 'application/json', 'upload-offset': String(size), 'upload-complete': '0' }).end(JSON.stringify({ complete: false, offset: size }));
                return;
            }
            try {
                const { header } = await verifyBundle(partial, { signer: exchange.pi.key });
                if (header.direction !== 'up' || header.pi !== exchange.pi.id || header.seq !== seq)
                    throw new BundleError('MALFORMED', `this is ${header.direction} bundle ${header.seq} of "${header.pi}"`);
            } catch (err) {
                fs.rmSync(partial, { force: true });
                if (err instanceof BundleError) throw new HttpError(422, err.message, { 'x-bundle-error': err.code });
                throw err;
            }
            fs.renameSync(partial, exchange.upFile(seq));
            res.writeHead(201, { 'content-type': 'application/json', 'upload-complete': '1' }).end('{"complete":true}');
            // The provider work starts now, not when the Pi's request for the exchange comes a round trip later.
            exchange
                .prepare(seq)
                .catch((err: Error) => options.logger.warn({ pi: exchange.pi.id, up: seq, err: { message: err.message } }, 'processing the up bundle failed; its exchange tries again'));
            return;
        }
        if (what === 'exchange' && req.method === 'POST') {
            const room = Number(req.headers['x-mailmule-room'] ?? NaN);
            const growing = req.headers['x-mailmule-growing'] === '1';
            const down = await exchange.exchange(seq, { ...(Number.isSafeInteger(room) && room >= 0 ? { room } : {}), growing });
            res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ down }));
            return;
        }
        if (what === 'down' && req.method === 'GET') {
            const building = exchange.building(seq);
            if (building) {
                const range = /^bytes=(\d+)-(\d*)$/.exec(String(req.headers.range ?? ''));
                await building.send(res, range ? Number(range[1]) : 0, range?.[2] ? Number(range[2]) : Infinity);
                return;
            }
            const file = exchange.downFile(seq);
            const stat = fs.statSync(file, { throwIfNoEntry: false });
            if (!stat) throw new HttpError(404, `no down bundle ${seq} waits`);
            const range = /^bytes=(\d+)-(\d*)$/.exec(String(req.headers.range ?? ''));
            const from = range ? Number(range[1]) : 0;
            const end = range?.[2] ? Math.min(Number(range[2]), stat.size - 1) : stat.size - 1;
            if (from > stat.size || end < from - 1) throw new HttpError(416, `the bundle has ${stat.size} bytes`);
            res.writeHead(range ? 206 : 200, {
                'content-type': 'application/octet-stream',
                'content-length': String(end - from + 1),
                ...(range ? { 'content-range': `bytes ${from}-${end}/${stat.size}` } : {})
            });
            if (end < from) {
                res.end();
                return;
            }
            await pipeline(fs.createReadStream(file, { start: from, end }), res);
            return;
        }
        throw new HttpError(405, 'method not allowed');
    }

    const server = https.createServer({ cert: options.tls.cert, key: options.tls.key }, (req, res) => {
        handle(req, res).catch((err: Error) => {
            const status = err instanceof HttpError ? err.status : 500;
            if (status === 500) options.logger.error({ err: { message: err.message } }, 'relay request failed');
            if (res.headersSent) {
                res.destroy();
                return;
            }
            res.writeHead(status, { 'content-type': 'application/json', ...(err instanceof HttpError ? err.headers : {}) }).end(JSON.stringify({ error: err.message }));
        });
    });
    server.requestTimeout = 0;
    await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(options.port, options.host, () => resolve());
    });
    // The provider work's modules (exchange.ts loads them when first needed) are loaded now, while
    // the relay waits for its first Pi, rather than in the first exchange, between its upload and its answer.
    setImmediate(() => {
        /* eslint-disable @typescript-eslint/no-require-imports */
        require('../../uplink/send');
        require('../../uplink/receive');
        /* eslint-enable @typescript-eslint/no-require-imports */
    });
    return {
        port: (server.address() as AddressInfo).port,
        close: () =>
            new Promise<void>(resolve => {
                server.closeAllConnections();
                server.close(() => {
                    for (const exchange of exchanges.values()) exchange.close();
                    resolve();
                });
            })
    };
}
