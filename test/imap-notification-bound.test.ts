/**
 * Untagged notifications to a session that does not read (issue 8, clause 5: every input bounded;
 * patches/ 135). Another session's changes (here STOREs of long keyword lists on every message of
 * a 1,000-message mailbox, 40 times: over 20 MB of `* n FETCH (FLAGS …)` lines) used to be written
 * to an IDLE session as they happened, and to be queued in memory for a selected session between
 * its commands, however much piled up. Now, as in Dovecot, a session holds at most about one
 * line per message of its mailbox plus a socket's high-water mark:
 *   1. an IDLE session that does not read its socket is sent nothing more while its output is
 *      backed up; the changes stay in the journal and, once it reads, it gets the newest flags of
 *      every message (coalesced, nothing lost); an honest IDLE session on the same mailbox gets
 *      them all meanwhile, and another user's session is answered throughout;
 *   2. a selected session that sends no command queues at most MAX_QUEUED_NOTIFICATIONS entries;
 *      its next command brings it up to date;
 *   3. an IDLE session that takes none of its output for `imap.outputTimeout` is disconnected, as
 *      Dovecot does after 5 minutes (patches/ 136); one that reads stays.
 *
 * The gateway runs in this process, so the test reads imap-core's connection for each client: its
 * socket, its composer (objects written, bytes not yet passed on) and its notification queue.
 * Nothing waits on time: each wait polls a condition with a deadline.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { Transform } from 'node:stream';
import { ImapFlow } from 'imapflow';
import { startGateway, makeMessage, type Gateway } from './support/gateway';
import { RawImapConnection } from './support/raw-imap-connection';
import { waitUntil, withTimeout } from './support/wait';

const MESSAGES = 1000;
const STORES = 40;
/** Nine keywords of 60 characters; each STORE sets eight of them, a different eight each time, so every message changes and its FETCH line is about 520 bytes. */
const KEYWORDS = Array.from({ length: 9 }, (_, i) => `flood${i}`.padEnd(60, 'k'));
/** The longest notification line for one message (FLAGS with eight keywords, UID, sequence number). */
const LINE_MAX = 600;
/** The socket's writableHighWaterMark: the output imap-core lets pile up before it holds notifications back. */
const HIGH_WATER_MARK = 64 * 1024;
/** What imap-core (patch 135) queues at most for a selected session between two commands (its MAX_QUEUED_NOTIFICATIONS). */
const MAX_QUEUED = 1000;

/** What the test reads of imap-core's IMAPConnection. */
interface CoreConnection {
    idling: boolean;
    writeStream: Transform;
    selected: false | { notifications: unknown[] };
    _socket: net.Socket;
}

let gateway: Gateway;

/** Alice's mailbox Flood with MESSAGES messages. */
function fillFlood(target: Gateway): void {
    const store = target.daemon.store;
    const alice = store.users.get('alice')!.id;
    const folder = store.mailboxes.create(alice, 'Flood');
    for (let n = 1; n <= MESSAGES; n++) store.messages.add(alice, folder, makeMessage({ subject: `flood ${n}` }));
}

before(async () => {
    gateway = await startGateway({ plaintext: true });
    fillFlood(gateway);
});

after(async () => {
    await gateway?.stop();
});

function coreConnections(target: Gateway): CoreConnection[] {
    const imap = (target.daemon as unknown as { imap: { servers: { connections: Set<CoreConnection> }[] } }).imap;
    return imap.servers.flatMap(server => [...server.connections]);
}

function coreConnection(socket: net.Socket, target: Gateway): CoreConnection {
    const connection = coreConnections(target).find(c => c._socket.remotePort === socket.localPort);
    assert.ok(connection, "the server's connection for this client");
    return connection;
}

/** What the server holds for one client: bytes not yet taken by the kernel, and response objects and notifications not yet written out. */
function held(connection: CoreConnection): { bytes: number; objects: number; queued: number } {
    return {
        bytes: connection._socket.writableLength + connection.writeStream.readableLength,
        objects: connection.writeStream.writableLength,
        queued: connection.selected ? connection.selected.notifications.length : 0
    };
}

/** The keywords of the `n`th STORE: all but one, a different one each time. */
const keywordsOf = (n: number) => KEYWORDS.filter((_, i) => i !== n % KEYWORDS.length);

/**
 * A raw client that keeps, per message, the FLAGS of the last FETCH it received (by sequence
 * number: nothing is expunged here); `pause()`d, it reads
 * nothing (the kernel's buffers fill, then the server's).
 */
class FlagsWatcher {
    readonly socket: net.Socket;
    /** Sequence number → FLAGS of the last FETCH for it. */
    readonly flags = new Map<number, string>();
    readonly lines: string[] = [];
    private rest = '';
    private readonly connected: Promise<void>;

    constructor(private readonly target = gateway) {
        this.socket = net.connect(target.imapPort, '127.0.0.1');
        this.connected = new Promise(resolve => this.socket.once('connect', () => resolve()));
        this.socket.on('error', () => {});
        this.socket.on('data', chunk => {
            const lines = (this.rest + chunk.toString('latin1')).split('\r\n');
            this.rest = lines.pop() ?? '';
            for (const line of lines) {
                const fetch = /^\* (\d+) FETCH .*FLAGS \(([^)]*)\)/.exec(line);
                if (fetch) {
                    this.flags.set(Number(fetch[1]), fetch[2]);
                } else if (!line.startsWith('* OK Still here')) {
                    this.lines.push(line);
                }
            }
        });
    }

    /** Logs in as alice, selects Flood and, with `idle`, starts IDLE. */
    async start(idle: boolean): Promise<CoreConnection> {
        await withTimeout(this.connected, 5000, 'connected');
        this.socket.write('l1 LOGIN alice alice-secret-pw\r\ns1 SELECT Flood\r\n');
        await waitUntil(() => this.lines.some(line => line.startsWith('s1 OK')), 'LOGIN and SELECT answered');
        if (idle) {
            this.socket.write('i1 IDLE\r\n');
            await waitUntil(() => this.lines.some(line => line.startsWith('+ ')), 'IDLE accepted');
        }
        return coreConnection(this.socket, this.target);
    }

    /** True once every message's last FETCH showed exactly `keywords`. */
    upToDate(keywords: string[]): boolean {
        const expected = keywords.join(' ');
        if (this.flags.size < MESSAGES) return false;
        for (const flags of this.flags.values())
            if (
                flags
                    .split(' ')
                    .filter(flag => !flag.startsWith('\\'))
                    .join(' ') !== expected
            )
                return false;
        return true;
    }

    async command(tag: string, text: string): Promise<string> {
        this.socket.write(`${tag} ${text}\r\n`);
        await waitUntil(() => this.lines.some(line => line.startsWith(`${tag} `)), `reply to ${tag}`, 30_000);
        return this.lines.find(line => line.startsWith(`${tag} `))!;
    }

    close(): void {
        this.socket.destroy();
    }
}

async function actor(target = gateway): Promise<ImapFlow> {
    const imap = new ImapFlow({ host: '127.0.0.1', port: target.imapPort, secure: false, doSTARTTLS: false, auth: { user: 'alice', pass: 'alice-secret-pw' }, logger: false });
    await imap.connect();
    await imap.mailboxOpen('Flood');
    return imap;
}

test(`an IDLE session that reads nothing is held to one line per message while ${STORES} STOREs change all ${MESSAGES}; it gets the newest flags once it reads`, { timeout: 300_000 }, async t => {
    const silent = new FlagsWatcher();
    const honest = new FlagsWatcher();
    const bob = await RawImapConnection.session(gateway.imapPort, 'bob', 'bob-secret-pw', 'INBOX');
    const imap = await actor();
    try {
        const connection = await silent.start(true);
        await honest.start(true);
        silent.socket.pause();

        const most = { bytes: 0, objects: 0, queued: 0 };
        const sample = () => {
            const now = held(connection);
            most.bytes = Math.max(most.bytes, now.bytes);
            most.objects = Math.max(most.objects, now.objects);
            most.queued = Math.max(most.queued, now.queued);
        };
        for (let n = 1; n <= STORES; n++) {
            assert.ok(await imap.messageFlagsSet('1:*', keywordsOf(n), { silent: true }), `STORE ${n}`);
            sample();
            // another user is answered at once throughout
            assert.match((await withTimeout(bob.command('NOOP'), 5000, `bob's NOOP after STORE ${n}`)).tagged, /OK/);
            sample();
        }
        await waitUntil(() => honest.upToDate(keywordsOf(STORES)), 'the honest IDLE session up to date', 60_000);
        sample();
        t.diagnostic(`held for the silent session at most: ${most.bytes} bytes, ${most.objects} responses in the composer, ${most.queued} queued`);
        assert.ok(most.bytes <= HIGH_WATER_MARK + MESSAGES * LINE_MAX, `${most.bytes} bytes held for a client that reads nothing`);
        assert.ok(most.objects <= MESSAGES + 16, `${most.objects} responses waiting in the composer`);
        assert.ok(connection.idling, 'still in IDLE');

        silent.socket.resume();
        await waitUntil(() => silent.upToDate(keywordsOf(STORES)), 'the silent session, reading again, up to date', 60_000);
        silent.socket.write('DONE\r\n');
        await waitUntil(() => silent.lines.some(line => line.startsWith('i1 OK')), 'IDLE ended');
        assert.match(await silent.command('n1', 'NOOP'), /^n1 OK/);
    } finally {
        await imap.logout().catch(() => {});
        bob.destroy();
        silent.close();
        honest.close();
    }
});

test(`a selected session that sends nothing queues at most ${MAX_QUEUED} notifications; its next command brings it up to date`, { timeout: 300_000 }, async t => {
    const quiet = new FlagsWatcher();
    const imap = await actor();
    try {
        const connection = await quiet.start(false);
        let most = 0;
        const rounds = 10;
        for (let n = 1; n <= rounds; n++) {
            assert.ok(await imap.messageFlagsSet('1:*', keywordsOf(STORES + n), { silent: true }), `STORE ${n}`);
            most = Math.max(most, held(connection).queued);
        }
        t.diagnostic(`at most ${most} notifications queued for ${rounds * MESSAGES} changes`);
        assert.ok(most <= MAX_QUEUED, `${most} notifications queued`);
        assert.match(await quiet.command('n1', 'NOOP'), /^n1 OK/);
        assert.ok(quiet.upToDate(keywordsOf(STORES + rounds)), 'NOOP brought every message up to date');
        assert.equal(held(connection).queued, 0, 'nothing left queued');
    } finally {
        await imap.logout().catch(() => {});
        quiet.close();
    }
});

test('an IDLE session that takes none of its output for imap.outputTimeout is disconnected; one that reads is not', { timeout: 300_000 }, async t => {
    // 3 s, not 1: the clients share the daemon's event loop here, and the reading one must not
    // look idle to it only because a STORE kept the loop busy
    const timed = await startGateway({ plaintext: true, imapExtraYaml: '  outputTimeout: 3' });
    t.after(() => timed.stop());
    fillFlood(timed);
    const silent = new FlagsWatcher(timed);
    const honest = new FlagsWatcher(timed);
    const imap = await actor(timed);
    try {
        const connection = await silent.start(true);
        const reading = await honest.start(true);
        silent.socket.pause();
        let stores = 0;
        while (coreConnections(timed).includes(connection) && stores < STORES) {
            stores++;
            assert.ok(await imap.messageFlagsSet('1:*', keywordsOf(stores), { silent: true }), `STORE ${stores}`);
        }
        await waitUntil(() => !coreConnections(timed).includes(connection), 'the silent session disconnected', 15_000);
        t.diagnostic(`disconnected after ${stores} STOREs`);
        assert.ok(connection._socket.destroyed, 'its socket destroyed');
        assert.ok(
            timed.logLines.some(line => line.includes('has not read server output')),
            'the reason logged'
        );
        await waitUntil(() => honest.upToDate(keywordsOf(stores)), 'the reading IDLE session up to date', 60_000);
        assert.ok(coreConnections(timed).includes(reading), 'the reading session still connected');
        honest.socket.write('DONE\r\n');
        await waitUntil(() => honest.lines.some(line => line.startsWith('i1 OK')), 'IDLE ended');
    } finally {
        await imap.logout().catch(() => {});
        silent.close();
        honest.close();
    }
});
