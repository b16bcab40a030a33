/**
 * The Pi's online exchange with its relay (docs/relay.md, "Transfer"): the up bundle goes up,
 * resumed at the byte the relay holds after a cut; the relay does the provider work; each down
 * bundle comes back, resumed at the byte the Pi holds, and is applied (apply.ts). A transfer
 * cut at byte N goes on from N: a cut costs the bytes in flight and one request.
 *
 * TLS always; with uplink.relay.fingerprint the relay's CA (or, from older pairings, its certificate) is pinned and checked before
 * the first byte of a request is written.
 */
import crypto from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import type { Readable } from 'node:stream';
import tls from 'node:tls';
import { BundleError } from '../../bundle';
import { signRequest } from '../request-auth';
import { applyDownBundle, type ApplyContext, type DownApplyReport } from './apply';
import { exportUpBundle } from './export';
import { WireMeter } from '../../uplink/meter';
import type { PiRelayFiles } from './state';

export interface RelayEndpoint {
    url: string;
    id: string;
    key: string;
    sealKey: string;
    fingerprint: string | null;
    /** Header slimming of the mail brought down (uplink.relay.slimHeaders; absent or null: off). */
    slimHeaders?: { keepReceived: number } | null;
}

export interface ExchangeReport {
    upSeq: number;
    upBytes: number;
    messagesUp: number;
    /** The size of the down bundles fetched in this exchange (whole, wherever their transfer started). */
    downBytes: number;
    down: DownApplyReport[];
    /** Bytes that crossed the link for bundles (both ways, HTTP and TLS not counted). */
    bundleBytes: number;
    /** Requests that failed (cut, refused) and were tried again. */
    retries: number;
    /**
     * The byte offsets (> 0) from which a bundle transfer went on, in order: after a cut, or
     * at a run after the budget stopped one. A transfer that starts again from 0 is not here.
     */
    resumedFrom: { up: number[]; down: number[] };
    /** What the exchange cost on the wire (TCP, after TLS). */
    wire: { sent: number; received: number };
    /** What the budget stopped, in words (empty: nothing): it goes on at the next run. */
    waiting: string[];
}

/**
 * How many failed requests in a row, none of which moved its transfer on by a byte, one
 * exchange tolerates before it gives up (the next run goes on from where it stopped). A cut
 * after progress is not counted: a long transfer on a link that drops every minute goes on.
 */
const MAX_FAILURES = 40;
const REQUEST_TIMEOUT_MS = 120_000;
/** What one request costs on the wire beyond its payload, at most: TCP and TLS handshakes, signed headers, the answer's head. */
const REQUEST_OVERHEAD = 6 * 1024;
/** A request that could carry less payload than this is not made: the rest waits for the next run. */
const MIN_PAYLOAD = 1024;

interface Response {
    status: number;
    headers: http.IncomingHttpHeaders;
    body: http.IncomingMessage;
}

class RelayClient {
    retries = 0;
    /** Failed requests since a transfer last moved on (see MAX_FAILURES). */
    private stalled = 0;
    readonly resumedFrom: ExchangeReport['resumedFrom'] = { up: [], down: [] };

    /** What this exchange cost on the wire (TCP, after TLS), both ways. */
    readonly meter = new WireMeter();

    constructor(
        private readonly relay: RelayEndpoint,
        private readonly signingKey: import('node:crypto').KeyObject,
        /** Bytes this exchange may spend on the wire (Infinity: no cap). */
        private readonly limit: number
    ) {}

    /** What is left of the budget for the payload of one more request (its overhead taken off); 0 when no request fits. */
    room(): number {
        const left = this.limit - this.meter.total() - REQUEST_OVERHEAD;
        return left >= MIN_PAYLOAD ? left : 0;
    }

    /**
     * The TLS session of an earlier connection to the relay in this exchange, whose chain was
     * checked against the pin: every request has a connection of its own (a cut costs one
     * request), and resuming that session spares each one the relay's certificate and CA
     * (about 3 KB of every request on the slow link). A resumed session is the relay's proof
     * that it is the peer checked before, so its chain is not sent nor checked again.
     */
    private session: Buffer | undefined;

    private async socket(url: URL): Promise<tls.TLSSocket> {
        const pinned = this.relay.fingerprint?.replace(/:/g, '').toUpperCase() ?? null;
        const raw = this.meter.connect(url.hostname, Number(url.port || 443), REQUEST_TIMEOUT_MS);
        const socket = tls.connect({
            socket: raw,
            servername: net.isIP(url.hostname) ? undefined : url.hostname,
            session: this.session,
            // A pinned certificate is checked below, before anything is written.
            rejectUnauthorized: pinned === null
        });
        let checked = false;
        let ticket: Buffer | undefined;
        // TLS 1.3 sends the ticket after the handshake: kept only once the peer passed the check.
        socket.on('session', (session: Buffer) => {
            ticket = session;
            if (checked) this.session = session;
        });
        socket.setTimeout(REQUEST_TIMEOUT_MS, () => socket.destroy(new Error('the relay did not answer in time')));
        await Promise.race([once(socket, 'secureConnect'), once(raw, 'error').then(([err]) => Promise.reject(err as Error))]);
        if (pinned !== null && !socket.isSessionReused() && !chainIsPinned(socket, pinned)) {
            socket.destroy();
            throw new Error(`the relay's TLS certificate is not the one paired (fingerprint ${pinned})`);
        }
        checked = true;
        if (ticket) this.session = ticket;
        return socket;
    }

    /**
     * The exchange's requests share one kept-alive connection while it lasts (one at a time): a
     * handshake costs about 3 KB on the slow link even resumed. A cut connection is dropped and
     * the next request opens another (resuming the TLS session).
     */
    private readonly agent = Object.assign(new http.Agent({ keepAlive: true, maxSockets: 1 }), {
        createConnection: (options: { host?: string | null; port?: number | null }, done: (err: Error | null, socket?: net.Socket) => void) => {
            this.socket(new URL(`https://${options.host ?? ''}:${options.port ?? 443}`)).then(
                socket => done(null, socket),
                (err: Error) => done(err)
            );
            return undefined;
        }
    });

    /** Closes the kept-alive connection, if any. */
    close(): void {
        this.agent.destroy();
    }

    /** One signed request; `range` is the Content-Range (PUT) or Range (GET) header. */
    async request(method: string, pathname: string, range: string, body?: Readable, length?: number, extra: Record<string, string> = {}): Promise<Response> {
        const url = new URL(pathname, this.relay.url);
        const headers: Record<string, string> = { ...extra, ...signRequest(this.relay.id, this.signingKey, method, url.pathname, range) };
        if (range) headers[method === 'PUT' ? 'content-range' : 'range'] = range;
        if (length !== undefined) headers['content-length'] = String(length);
        return new Promise<Response>((resolve, reject) => {
            const req = http.request({ method, host: url.hostname, port: url.port || 443, path: url.pathname, headers, agent: this.agent }, res =>
                resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res })
            );
            req.on('error', reject);
            if (body) {
                body.on('error', err => req.destroy(err));
                body.pipe(req);
            } else {
                req.end();
            }
        });
    }

    async json(response: Response): Promise<unknown> {
        const chunks: Buffer[] = [];
        let size = 0;
        for await (const chunk of response.body as AsyncIterable<Buffer>) {
            size += chunk.length;
            if (size > 1024 * 1024) throw new Error('the relay answered more than 1 MB of JSON');
            chunks.push(chunk);
        }
        const text = Buffer.concat(chunks).toString('utf8');
        try {
            return text ? JSON.parse(text) : {};
        } catch {
            throw new Error(`the relay answered ${response.status} with something other than JSON`);
        }
    }

    /**
     * Runs `attempt` until it returns, tolerating up to MAX_FAILURES failures in a row that did
     * not move `progress` (the bytes of the transfer held by its receiver) on.
     */
    async retrying<T>(what: string, attempt: () => Promise<T>, progress: () => number = () => 0): Promise<T> {
        let before = progress();
        for (;;) {
            try {
                return await attempt();
            } catch (err) {
                if (err instanceof RelayRefusal || err instanceof BudgetSpent) throw err;
                this.retries++;
                const now = progress();
                if (now > before) this.stalled = 0;
                before = now;
                if (++this.stalled > MAX_FAILURES) throw new Error(`${what}: gave up after ${MAX_FAILURES} failed requests in a row (${(err as Error).message})`, { cause: err });
            }
        }
    }
}

/** The relay refused a request for good (not a cut): trying again would not help. */
class RelayRefusal extends Error {}

/** The run's byte budget does not allow the next request: the transfer goes on at the next run, from its byte offset. */
class BudgetSpent extends Error {}

async function expect(client: RelayClient, response: Response, ok: number[], what: string): Promise<unknown> {
    const body = await client.json(response);
    if (ok.includes(response.status)) return body;
    const message = `${what}: the relay answered ${response.status} (${(body as { error?: string }).error ?? ''})`;
    if (response.status === 401 || response.status === 404 || response.status === 413) throw new RelayRefusal(message);
    throw new Error(message);
}

/**
 * Uploads up bundle `seq` from where the relay stands. `fresh`: the bundle was written in this
 * run, so the relay holds none of it and the first PUT starts at byte 0 without asking (one round
 * trip less, up to a second on 2G); should the relay hold some after all, it answers 409 and the
 * loop asks, as it does after a cut.
 */
async function upload(client: RelayClient, seq: number, file: string, fresh: boolean): Promise<number> {
    const total = fs.statSync(file).size;
    let sent = 0;
    // What the relay said it holds: the progress that lets a cut transfer go on (see retrying).
    let held = 0;
    let ask = !fresh;
    await client.retrying(
        `uploading up bundle ${seq}`,
        async () => {
            for (;;) {
                let from = 0;
                if (ask) {
                    const head = await client.request('HEAD', `/v1/up/${seq}`, '');
                    head.body.resume();
                    if (head.status !== 200) await expect(client, head, [200], 'asking the relay where the upload stands');
                    if (head.headers['upload-complete'] === '1') return;
                    from = Number(head.headers['upload-offset'] ?? 0);
                    if (!Number.isSafeInteger(from) || from < 0 || from > total) throw new RelayRefusal(`the relay holds ${String(head.headers['upload-offset'])} bytes of a ${total}-byte bundle`);
                }
                ask = true;
                held = from;
                const length = Math.min(total - from, client.room());
                if (!length) throw new BudgetSpent(`${total - from} bytes of up bundle ${seq} wait for the next run: budget`);
                const end = from + length - 1;
                if (from > 0) client.resumedFrom.up.push(from);
                const response = await client.request('PUT', `/v1/up/${seq}`, `bytes ${from}-${end}/${total}`, fs.createReadStream(file, { start: from, end }), length);
                const answer = (await expect(client, response, [200, 201, 409, 422], `uploading up bundle ${seq}`)) as { complete?: boolean };
                if (response.status === 200 || response.status === 201) sent += length;
                if (answer.complete) return;
            }
        },
        () => held
    );
    return sent;
}

/**
 * Fetches down bundle `seq` of `bytes` bytes into `target`, going on from what a cut left in
 * `target.partial`. `bytes` null: the relay is still writing it and sends it as it grows, its
 * whole size in a trailer at the end (server/growing-bundle.ts). Returns the bytes received
 * and the bundle's size.
 */
async function download(client: RelayClient, seq: number, bytes: number | null, target: string): Promise<{ received: number; bytes: number }> {
    const partial = `${target}.partial`;
    let received = 0;
    let total = bytes;
    const partialSize = () => fs.statSync(partial, { throwIfNoEntry: false })?.size ?? 0;
    await client.retrying(
        `downloading down bundle ${seq}`,
        async () => {
            for (;;) {
                let held = partialSize();
                if (total !== null && held > total) {
                    fs.rmSync(partial);
                    held = 0;
                }
                if (total !== null && held === total) break;
                // A slice as large as the budget allows; a cut inside it is a failed request, tried again from where it stopped.
                const length = Math.min(total === null ? Infinity : total - held, client.room());
                if (!length) throw new BudgetSpent(`${total === null ? 'the rest' : `${total - held} bytes`} of down bundle ${seq} wait for the next run: budget`);
                if (held > 0) client.resumedFrom.down.push(held);
                const response = await client.request('GET', `/v1/down/${seq}`, `bytes=${held}-${Number.isFinite(length) ? held + length - 1 : ''}`);
                if (response.status === 416) {
                    // What is held is more than the bundle written since (one the relay wrote again): from byte 0.
                    response.body.resume();
                    fs.rmSync(partial, { force: true });
                    throw new Error(`down bundle ${seq} is shorter than the ${held} bytes held`);
                }
                if (response.status !== 206 && response.status !== 200) await expect(client, response, [206], `downloading down bundle ${seq}`);
                const out = fs.createWriteStream(partial, { flags: response.status === 206 ? 'a' : 'w', mode: 0o600 });
                try {
                    for await (const chunk of response.body as AsyncIterable<Buffer>) {
                        received += chunk.length;
                        if (!out.write(chunk)) await once(out, 'drain');
                    }
                } finally {
                    out.end();
                    await once(out, 'close');
                }
                const now = partialSize();
                if (!response.body.complete) throw new Error(`down bundle ${seq} cut at byte ${now}`);
                if (response.headers['x-bundle-growing'] === '1') {
                    const told = Number(response.body.trailers['x-bundle-bytes'] ?? NaN);
                    if (Number.isSafeInteger(told) && told >= 0) total = told;
                } else if (response.status === 206) {
                    const told = Number(/\/(\d+)$/.exec(String(response.headers['content-range'] ?? ''))?.[1] ?? NaN);
                    if (Number.isSafeInteger(told)) total = told;
                    if (now < held + Number(response.headers['content-length'] ?? 0)) throw new Error(`down bundle ${seq} cut at byte ${now}`);
                } else {
                    total = now;
                }
            }
            const handle = await fs.promises.open(partial, 'r+');
            await handle.sync();
            await handle.close();
            fs.renameSync(partial, target);
        },
        partialSize
    );
    return { received, bytes: total ?? partialSize() };
}

/**
 * One exchange: the up bundle (the one a cut left, or a new one) up, the relay's work, every
 * waiting down bundle down and applied. Throws when the relay cannot be reached or refuses;
 * what was applied stays applied, and the next exchange goes on from there.
 */
export async function exchangeWithRelay(ctx: ApplyContext, files: PiRelayFiles, relay: RelayEndpoint, budgetBytes = Infinity): Promise<ExchangeReport> {
    const client = new RelayClient(relay, files.signingKey().privateKey, budgetBytes);
    fs.mkdirSync(files.dir, { recursive: true, mode: 0o700 });
    const upFile = (seq: number) => path.join(files.dir, `up-${seq}.bundle`);
    let state = files.read();
    let messagesUp = 0;
    const fresh = !state.pendingUp || !fs.existsSync(upFile(state.pendingUp));
    if (fresh) {
        const written = await exportUpBundle(ctx.store, files, relay.id, upFile(state.upSeq + 1), { sealKey: relay.sealKey, users: ctx.users, slimHeaders: relay.slimHeaders });
        messagesUp = written.messages;
        state = { ...files.read(), pendingUp: written.seq, pendingKeys: written.keys };
        files.write(state);
    }
    const seq = state.pendingUp;
    const report: ExchangeReport = {
        upSeq: seq,
        upBytes: fs.statSync(upFile(seq)).size,
        messagesUp,
        downBytes: 0,
        down: [],
        bundleBytes: 0,
        retries: 0,
        resumedFrom: client.resumedFrom,
        wire: { sent: 0, received: 0 },
        waiting: []
    };
    try {
        await transfer(ctx, files, relay, client, seq, upFile, report, fresh);
    } catch (err) {
        if (!(err instanceof BudgetSpent)) throw err;
        report.waiting.push(err.message);
    } finally {
        client.close();
    }
    report.retries = client.retries;
    report.wire = client.meter.totals();
    return report;
}

/** Up, exchange, down: what exchangeWithRelay does once the up bundle is written. */
async function transfer(
    ctx: ApplyContext,
    files: PiRelayFiles,
    relay: RelayEndpoint,
    client: RelayClient,
    seq: number,
    upFile: (seq: number) => string,
    report: ExchangeReport,
    fresh: boolean
): Promise<void> {
    report.bundleBytes += await upload(client, seq, upFile(seq), fresh);
    if (!client.room()) throw new BudgetSpent(`the exchange for up bundle ${seq} waits for the next run: budget`);

    // What the budget leaves for the down bundles: when their messages are more, the relay sends their headers first.
    const room: Record<string, string> = Number.isFinite(client.room()) ? { 'x-mailmule-room': String(client.room()) } : {};
    // X-Mailmule-Growing: the answer comes as the relay starts the down bundle, which comes down as it is written.
    const headers = { ...room, 'x-mailmule-growing': '1' };
    const answer = (await client.retrying('the exchange', async () =>
        expect(client, await client.request('POST', `/v1/exchange/${seq}`, '', undefined, undefined, headers), [200], 'the exchange')
    )) as {
        down?: { seq: number; bytes: number | null }[];
    };
    const taken = files.read();
    files.write({
        ...taken,
        pendingUp: 0,
        pendingKeys: [],
        carried: [...new Set([...taken.carried, ...taken.pendingKeys])],
        // The relay has processed this bundle: its changes, and those of earlier ones, are made.
        inFlight: taken.inFlight.filter(change => change.seq > seq)
    });
    fs.rmSync(upFile(seq), { force: true });

    for (const down of [...(answer.down ?? [])].sort((a, b) => a.seq - b.seq)) {
        if (down.seq <= files.read().downApplied) continue;
        const target = path.join(files.dir, `down-${down.seq}.bundle`);
        for (let fresh = 0; ; fresh++) {
            if (!fs.existsSync(target)) {
                const fetched = await download(client, down.seq, down.bytes, target);
                report.bundleBytes += fetched.received;
                report.downBytes += fetched.bytes;
            }
            try {
                report.down.push(await applyDownBundle(ctx, files, relay, target));
                break;
            } catch (err) {
                // Damaged on the way: fetched again from its first byte, once.
                if (!(err instanceof BundleError) || !['CHECKSUM', 'CORRUPT', 'TRUNCATED'].includes(err.code) || fresh > 0) throw err;
                fs.rmSync(target, { force: true });
            }
        }
        fs.rmSync(target, { force: true });
    }
}

/**
 * Whether the relay's certificate is the pinned one, or was issued by the pinned CA (the relay's
 * own CA, whose serving certificate is renewed every year; the signature is checked, as a chain
 * that merely names the CA proves nothing).
 */
function chainIsPinned(socket: tls.TLSSocket, pinned: string): boolean {
    const normal = (fingerprint: string | undefined) => fingerprint?.replace(/:/g, '').toUpperCase();
    const peer = socket.getPeerCertificate(true);
    if (!peer.raw) return false;
    if (normal(peer.fingerprint256) === pinned) return true;
    const issuer = peer.issuerCertificate;
    if (!issuer?.raw || normal(issuer.fingerprint256) !== pinned) return false;
    const leaf = new crypto.X509Certificate(peer.raw);
    const ca = new crypto.X509Certificate(issuer.raw);
    return leaf.checkIssued(ca) && leaf.verify(ca.publicKey) && leaf.validToDate.getTime() > Date.now();
}
