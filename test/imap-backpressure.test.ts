/**
 * Output backpressure (issue 8, patches/ 133): a client that pipelines commands and does not read
 * its socket no longer has the server execute them all and hold every response in memory. The
 * connection reads its next command only once the client has taken the output of the one before
 * (down to the socket's high-water mark), so:
 *   1. with 3,000 `UID FETCH n (BODY.PEEK[])` of 20 KB messages written at once and nothing read,
 *      the server stops executing commands while its output is not drained (the count of
 *      commands it has started stays far below 3,000, and what it holds stays bounded); once the
 *      client reads, it gets all 3,000 tagged OKs, each once and in order;
 *   2. a client that disconnects while the server waits leaves no session behind, and none of
 *      its remaining commands runs;
 *   3. the same for the autologout timeout;
 *   4. within one command: a `FETCH 1:* (BODY.PEEK[])` of 1,000 messages goes on to its next page
 *      of 100 only once the client has taken the page before (patch 134), so the server holds
 *      about one page, not the whole answer.
 *
 * The gateway runs in this process, so the test looks at imap-core's connection for its client:
 * its command counters and its socket. Nothing waits on time: each wait polls a condition.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { Writable } from 'node:stream';
import { startGateway, makeMessage, type Gateway } from './support/gateway';
import { RawImapConnection, appendRaw } from './support/raw-imap-connection';
import { waitUntil } from './support/wait';

const MESSAGES = 20;
const PIPELINED = 3000;
const BODY_BYTES = 20 * 1024;
/** Commands the kernel's buffers (a few MB on loopback) may take before the server stops: far below PIPELINED. */
const MAX_STARTED_UNREAD = 600;

/** What the test reads of imap-core's IMAPConnection. */
interface CoreConnection {
    id: string;
    session: { commandCounters: Record<string, number> };
    writeStream: Writable;
    _socket: net.Socket;
}

let gateway: Gateway;

before(async () => {
    gateway = await startGateway({ plaintext: true });
    const setup = await RawImapConnection.session(gateway.imapPort, 'alice', 'alice-secret-pw');
    try {
        for (let n = 1; n <= MESSAGES; n++) {
            const body = Array.from({ length: BODY_BYTES / 64 }, (_, line) => `message ${n} line ${line} `.padEnd(62, 'x')).join('\r\n');
            assert.match(await appendRaw(setup, 'INBOX', makeMessage({ subject: `backpressure ${n}`, body })), /OK/);
        }
    } finally {
        setup.destroy();
    }
});

after(async () => {
    await gateway?.stop();
});

function coreConnections(target: Gateway): CoreConnection[] {
    const imap = (target.daemon as unknown as { imap: { servers: { connections: Set<CoreConnection> }[] } }).imap;
    return imap.servers.flatMap(server => [...server.connections]);
}

/** A raw client that counts tagged replies (in order) and FETCH responses; `pause()` stops it reading. */
class PipeliningClient {
    readonly socket: net.Socket;
    readonly tagged: string[] = [];
    fetches = 0;
    private rest = '';
    private readonly closed: Promise<void>;

    constructor(port: number) {
        this.socket = net.connect(port, '127.0.0.1');
        this.socket.on('error', () => {});
        this.closed = new Promise(resolve => this.socket.once('close', () => resolve()));
        this.socket.on('data', chunk => {
            const lines = (this.rest + chunk.toString('latin1')).split('\r\n');
            this.rest = lines.pop() ?? '';
            for (const line of lines) {
                if (/^\* \d+ FETCH /.test(line)) this.fetches++;
                if (/^[a-z]\d+ (OK|NO|BAD) /.test(line)) this.tagged.push(line);
            }
        });
    }

    /** Logs in and selects INBOX; returns the server's connection for this client. */
    async start(target: Gateway): Promise<CoreConnection> {
        await new Promise<void>(resolve => this.socket.once('connect', () => resolve()));
        this.socket.write('l1 LOGIN alice alice-secret-pw\r\ns1 SELECT INBOX\r\n');
        await waitUntil(() => this.tagged.length === 2, 'LOGIN and SELECT answered');
        assert.deepEqual(
            this.tagged.map(line => line.split(' ')[1]),
            ['OK', 'OK']
        );
        this.tagged.length = 0;
        const connection = coreConnections(target).find(c => c._socket.remotePort === this.socket.localPort);
        assert.ok(connection, "the server's connection for this client");
        return connection;
    }

    /** Writes PIPELINED UID FETCHes in one go, having stopped reading first. */
    pipelineUnread(): void {
        this.socket.pause();
        const commands: string[] = [];
        for (let i = 1; i <= PIPELINED; i++) commands.push(`t${i} UID FETCH ${1 + (i % MESSAGES)} (BODY.PEEK[])\r\n`);
        this.socket.write(commands.join(''));
    }

    end(): Promise<void> {
        this.socket.resume();
        this.socket.end('z1 LOGOUT\r\n');
        return this.closed;
    }
}

const started = (connection: CoreConnection) => connection.session.commandCounters['UID FETCH'] ?? 0;

/** Until the connection's output is backed up; then a few round trips on another session, so the server has had every chance to go on. */
async function untilStalled(connection: CoreConnection, command = 'UID FETCH'): Promise<void> {
    await waitUntil(() => (connection.session.commandCounters[command] ?? 0) > 0 && connection._socket.writableNeedDrain, 'output backed up');
    const other = await RawImapConnection.session(gateway.imapPort, 'bob', 'bob-secret-pw');
    try {
        for (let i = 0; i < 20; i++) assert.match((await other.command('NOOP')).tagged, /OK/);
    } finally {
        other.destroy();
    }
}

test(`${PIPELINED} pipelined UID FETCHes with nothing read: the server stops executing them, then answers all in order once read`, { timeout: 120_000 }, async t => {
    const client = new PipeliningClient(gateway.imapPort);
    const connection = await client.start(gateway);
    try {
        client.pipelineUnread();
        await untilStalled(connection);
        const first = started(connection);
        t.diagnostic(`${first} started, ${connection._socket.writableLength} bytes in the socket's buffer, ${connection.writeStream.writableLength} responses in the composer`);
        assert.ok(first <= MAX_STARTED_UNREAD, `${first} commands started while the client read nothing`);
        // What the server holds for this client: at most one command's responses in the composer
        // and the socket's buffer about its high-water mark (64 KiB) plus one response.
        assert.ok(connection.writeStream.writableLength <= 3, `${connection.writeStream.writableLength} responses queued in the composer`);
        assert.ok(connection._socket.writableLength <= 64 * 1024 + 2 * BODY_BYTES, `${connection._socket.writableLength} bytes in the socket's buffer`);
        await untilStalled(connection);
        assert.equal(started(connection), first, 'no command started since');

        client.socket.resume();
        await waitUntil(() => client.tagged.length === PIPELINED, `${PIPELINED} tagged replies`, 100_000);
        const misplaced = client.tagged.findIndex((line, i) => !line.startsWith(`t${i + 1} OK `));
        assert.equal(misplaced, -1, `reply ${misplaced + 1} is "${client.tagged[misplaced]}"`);
        assert.equal(client.fetches, PIPELINED, 'one FETCH response per command');
    } finally {
        await client.end();
    }
});

test('a client that disconnects while the server waits for it to read leaves no session, and none of its commands runs after', { timeout: 60_000 }, async () => {
    const client = new PipeliningClient(gateway.imapPort);
    const connection = await client.start(gateway);
    client.pipelineUnread();
    await untilStalled(connection);
    const before = started(connection);
    client.socket.destroy();
    await waitUntil(() => !coreConnections(gateway).includes(connection), 'the session gone');
    await waitUntil(() => gateway.logLines.some(line => line.includes(`Connection closed`) && line.includes(connection.id)), 'its close logged');
    assert.equal(started(connection), before, 'no command started after the client left');
    assert.equal(connection._socket.listenerCount('drain'), 0, 'nothing waits on its socket');
});

test('a client that never reads is logged out by the autologout timeout while the server waits for it', { timeout: 60_000 }, async t => {
    const timed = await startGateway({ plaintext: true, imapExtraYaml: '  autologoutTimeout: 1' });
    t.after(() => timed.stop());
    const setup = await RawImapConnection.session(timed.imapPort, 'alice', 'alice-secret-pw');
    const body = 'y'.repeat(BODY_BYTES);
    for (let n = 1; n <= MESSAGES; n++) assert.match(await appendRaw(setup, 'INBOX', makeMessage({ subject: `timed ${n}`, body })), /OK/);
    setup.destroy();

    const client = new PipeliningClient(timed.imapPort);
    const connection = await client.start(timed);
    client.pipelineUnread();
    await waitUntil(() => started(connection) > 0 && connection._socket.writableNeedDrain, 'output backed up');
    await waitUntil(() => !coreConnections(timed).includes(connection), 'the session ended by the timeout', 10_000);
    assert.ok(started(connection) <= MAX_STARTED_UNREAD, `${started(connection)} commands started`);
    assert.ok(connection._socket.destroyed, 'its socket destroyed');
    client.socket.destroy();
});

test('one FETCH of 1,000 messages with nothing read: the server holds about one page of 100, not the whole answer', { timeout: 120_000 }, async t => {
    const store = gateway.daemon.store;
    const bob = store.users.get('bob')!.id;
    const folder = store.mailboxes.create(bob, 'Large');
    const body = 'w'.repeat(BODY_BYTES);
    for (let n = 1; n <= 1000; n++) store.messages.add(bob, folder, makeMessage({ subject: `page ${n}`, body }));

    const socket = net.connect(gateway.imapPort, '127.0.0.1');
    socket.on('error', () => {});
    await new Promise<void>(resolve => socket.once('connect', () => resolve()));
    let received = '';
    const onData = (chunk: Buffer) => (received += chunk.toString('latin1'));
    socket.on('data', onData);
    socket.write('l1 LOGIN bob bob-secret-pw\r\ns1 SELECT Large\r\n');
    await waitUntil(() => /\r\ns1 OK /.test(received), 'LOGIN and SELECT answered');
    socket.off('data', onData);
    const connection = coreConnections(gateway).find(c => c._socket.remotePort === socket.localPort)!;
    socket.pause();
    socket.write('f1 FETCH 1:* (BODY.PEEK[])\r\n');
    await untilStalled(connection, 'FETCH');
    // Responses are written in batches of 256 KB (src/imap/response-batch.ts): about 20 for a page.
    const held = connection._socket.writableLength + connection.writeStream.writableLength * 256 * 1024;
    t.diagnostic(`${connection._socket.writableLength} bytes in the socket's buffer, ${connection.writeStream.writableLength} batches in the composer`);
    assert.ok(held <= 100 * (BODY_BYTES + 1024) + 64 * 1024, `${held} bytes held for a FETCH of ${1000 * BODY_BYTES}`);

    // Counted across chunk boundaries: a match counts in the chunk where it ends.
    let tail = '\r\n';
    let fetches = 0;
    socket.on('data', (chunk: Buffer) => {
        const text = tail + chunk.toString('latin1');
        for (const match of text.matchAll(/\r\n\* \d+ FETCH /g)) if (match.index + match[0].length > tail.length) fetches++;
        tail = text.slice(-64);
        if (/\r\nf1 OK /.test(text)) socket.end('z1 LOGOUT\r\n');
    });
    const closed = new Promise<void>(resolve => socket.once('close', () => resolve()));
    socket.resume();
    await closed;
    assert.equal(fetches, 1000, 'every message answered');
});
