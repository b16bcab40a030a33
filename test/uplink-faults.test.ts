/**
 * The uplink over a link that keeps dying: exactly-once in both directions.
 *
 * Topology (everything on 127.0.0.1):
 *
 *     gateway uplink ──IMAP──▶ link proxy ──────────────▶ Dovecot IMAP
 *     gateway uplink ──SMTP──▶ link proxy ──▶ recorder ──▶ Postfix submission
 *
 * The recorder is a plain relay that keeps every byte Postfix received and every byte it
 * answered, per connection; with the proxy's per-connection count of what it forwarded back to
 * the gateway it tells, for each cut, whether Postfix accepted a message (a "250 … queued as")
 * whose reply never reached the gateway: the one documented duplicate window.
 *
 * Test 1 (in-process daemon): alice's upstream INBOX holds 15 seeded messages (2 KB–200 KB) and
 * five messages are queued through mailmule's SMTP (external To/Cc/Bcc recipients and
 * bob@upstream.test). Then 20 uplink runs, each with every connection cut after N bytes (up +
 * down together), N stratified log-uniform from 8 bytes (mid-greeting) to 300 KB (mid-body),
 * ascending, seeded; plus, once, a run cut a few bytes after a DATA terminator (computed from
 * an earlier transcript) so that the window really happens and is checked. After every run:
 * integrity_check, no queue entry left in 'sending', every local INBOX message is an upstream
 * message with byte-identical source and no Message-ID twice, and every message Postfix
 * accepted is one the gateway sent. Deferred entries are made due again between runs (the
 * 15-minute backoff stands for time passing). Then an uncut run and the end state:
 *   - alice's local INBOX = upstream INBOX (same Message-IDs, no duplicate, bodies identical);
 *   - every queued message delivered once per envelope recipient (catch-all copies by
 *     Message-ID + Delivered-To, bob's INBOX by Message-ID), except one extra copy per observed
 *     lost-reply window, each of which must be a cut right after the DATA terminator;
 *   - the run's meter equals what the proxies counted (uncut run).
 *
 * Test 2 (`mailmule start` as a child process): SIGKILL during the send phase (a 300 KB message
 * stuck half-way through DATA on a stalled link) and, after a restart, SIGKILL during the receive
 * phase; after each restart the interrupted entry is found recovered; a final run completes.
 * No duplicate, nothing missing, integrity_check ok.
 *
 * MAILMULE_FAULT_SEED picks another seed; MAILMULE_FAULT_LOST_REPLY=0 skips the forced window.
 *
 * Over 500 lines: the two exactly-once runs share the topology, the fault schedule and the checks
 * described above, which are most of the file.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import nodemailer from 'nodemailer';
import { startGateway, tempDir, writeConfig, type Gateway } from './support/gateway';
import { startUpstream, headerValue, type Upstream, type UpstreamMessage } from './support/upstream';
import { startLinkProxy } from './support/link-proxy';
import { runProcess, describeRun } from './support/run-process';
import { MAIN, assignFreePorts, startDaemon, type DaemonProcess } from './support/daemon-process';
import { sleep, withTimeout } from './support/wait';
import { Store, normaliseMessageId } from '../src/store';
import { lastRunAccountBytes, makeDeferredDue, messageRows, pendingRows, withStoreDb } from './support/store';
import { base64Lines, rng } from './support/fixtures/mail-corpus';

const SEED = Number(process.env.MAILMULE_FAULT_SEED ?? 20261123);
const FORCE_LOST_REPLY = process.env.MAILMULE_FAULT_LOST_REPLY !== '0';
const ALICE = 'alice@upstream.test';
const BOB = 'bob@upstream.test';
const LOCAL_PASSWORD = 'alice-fault-pw';
const CUTS = 20;
const MIN_CUT = 8;
const MAX_CUT = 300_000;

// ------------------------------------------------------------------ helpers

async function until(what: string, predicate: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!(await predicate())) {
        if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
        await sleep(20);
    }
}

/** Text that compresses like mail does, `bytes` long, in CRLF lines of ≤ 76 characters. */
function prose(random: () => number, bytes: number): string {
    const words = [
        'village',
        'water',
        'pump',
        'meeting',
        'school',
        'market',
        'harvest',
        'rain',
        'road',
        'clinic',
        'solar',
        'goats',
        'maize',
        'tomorrow',
        'please',
        'thanks',
        'report',
        'invoice',
        'the',
        'and',
        'for',
        'with',
        'we',
        'will'
    ];
    const lines: string[] = [];
    let line = '';
    let length = 0;
    while (length < bytes) {
        const word = random() < 0.1 ? Math.floor(random() * 1e9).toString(36) : words[Math.floor(random() * words.length)];
        if (line.length + word.length + 1 > 72) {
            lines.push(line);
            length += line.length + 2;
            line = '';
        }
        line += (line ? ' ' : '') + word;
    }
    if (line) lines.push(line);
    return lines.join('\r\n') + '\r\n';
}

/** A message of about `size` bytes: plain text, or text plus a base64 attachment. */
function inboundMessage(random: () => number, index: number, size: number): { messageId: string; raw: Buffer } {
    const messageId = `<in-${index}.${SEED}@sender.example.org>`;
    const head = [
        `From: Sender ${index} <sender${index}@example.org>`,
        `To: Alice <${ALICE}>`,
        `Subject: inbound ${index} (${size} bytes)`,
        `Date: Mon, 23 Nov 2026 09:${String(index).padStart(2, '0')}:00 +0000`,
        `Message-ID: ${messageId}`,
        'MIME-Version: 1.0'
    ];
    let body: string;
    if (random() < 0.5) {
        head.push('Content-Type: text/plain; charset=utf-8');
        body = prose(random, Math.max(size - 400, 200));
    } else {
        const boundary = `b-${index}-${Math.floor(random() * 1e9).toString(36)}`;
        head.push(`Content-Type: multipart/mixed; boundary="${boundary}"`);
        const attachment = Buffer.alloc(Math.max(Math.floor((size - 1500) * 0.74), 64));
        for (let i = 0; i < attachment.length; i++) attachment[i] = Math.floor(random() * 256);
        body = [
            `--${boundary}`,
            'Content-Type: text/plain; charset=utf-8',
            '',
            prose(random, 600),
            `--${boundary}`,
            `Content-Type: application/octet-stream; name="scan-${index}.bin"`,
            `Content-Disposition: attachment; filename="scan-${index}.bin"`,
            'Content-Transfer-Encoding: base64',
            '',
            `${base64Lines(attachment)}\r\n--${boundary}--`,
            ''
        ].join('\r\n');
    }
    return { messageId, raw: Buffer.from(head.join('\r\n') + '\r\n\r\n' + body) };
}

/** A relay that keeps both directions of every connection (for the SMTP transcripts). */
interface RecordedConnection {
    index: number;
    up: Buffer[];
    down: Buffer[];
    closed: boolean;
}
interface Recorder {
    port: number;
    connections: RecordedConnection[];
    reset(): void;
    /** Drop every open connection (both sides), as a link that finally gives up. */
    cutAll(): void;
    close(): Promise<void>;
}

async function startRecorder(targetPort: number): Promise<Recorder> {
    let connections: RecordedConnection[] = [];
    const sockets = new Set<net.Socket>();
    const server = net.createServer({ allowHalfOpen: true }, client => {
        const record: RecordedConnection = { index: connections.length, up: [], down: [], closed: false };
        connections.push(record);
        const target = net.connect({ host: '127.0.0.1', port: targetPort, allowHalfOpen: true });
        sockets.add(client);
        sockets.add(target);
        let closed = 0;
        const onClose = (socket: net.Socket) => {
            sockets.delete(socket);
            if (++closed === 2) record.closed = true;
        };
        client.on('data', chunk => {
            record.up.push(chunk);
            target.write(chunk);
        });
        target.on('data', chunk => {
            record.down.push(chunk);
            if (!client.destroyed && client.writable) client.write(chunk);
        });
        client.on('end', () => target.end());
        target.on('end', () => client.end());
        client.on('error', () => target.destroy());
        target.on('error', () => client.destroy());
        client.on('close', () => {
            onClose(client);
            // Keep reading Postfix's answer to what it already has (it may still say 250).
            setTimeout(() => target.destroy(), 3000).unref();
        });
        target.on('close', () => {
            onClose(target);
            client.destroy();
        });
    });
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', () => resolve()));
    return {
        port: (server.address() as net.AddressInfo).port,
        get connections() {
            return connections;
        },
        reset() {
            connections = [];
        },
        cutAll() {
            for (const socket of sockets) socket.destroy();
        },
        close() {
            for (const socket of sockets) socket.destroy();
            return new Promise<void>(resolve => server.close(() => resolve()));
        }
    };
}

const QUEUED = /^250[ -]2\.0\.0 Ok: queued as \S+\r\n/gm;

interface SmtpSessionFacts {
    /** Message-IDs of the messages Postfix accepted on this connection, in order. */
    accepted: string[];
    /** Accepted by Postfix but the gateway never got the whole reply: the duplicate window. */
    lostReply: string | null;
    /** The bytes Postfix received end exactly with a DATA terminator. */
    endsAtTerminator: boolean;
    /** Message-IDs whose DATA started, in order. */
    started: string[];
    cut: boolean;
    forwardedDown: number;
    /** With a lost reply: how many bytes of that final reply reached the gateway. */
    replyBytesSeen: number;
}

function dataMessageIds(up: string): string[] {
    // Each DATA body holds one Message-ID header; nothing else in our transcripts looks like one.
    return [...up.matchAll(/^Message-ID:\s*(<[^>\r\n]+>)/gim)].map(m => normaliseMessageId(m[1]));
}

function analyseSmtp(record: RecordedConnection, proxy: { bytesDown: number; cut: boolean }): SmtpSessionFacts {
    const up = Buffer.concat(record.up).toString('latin1');
    const down = Buffer.concat(record.down);
    const everything = down.toString('latin1');
    const forwarded = down.subarray(0, proxy.bytesDown).toString('latin1');
    const queuedAll = everything.match(QUEUED)?.length ?? 0;
    const queuedForwarded = forwarded.match(QUEUED)?.length ?? 0;
    const started = dataMessageIds(up);
    const accepted = started.slice(0, queuedAll);
    const lastReplyAt = [...everything.matchAll(QUEUED)].pop()?.index ?? 0;
    return {
        accepted,
        lostReply: queuedAll > queuedForwarded ? accepted[accepted.length - 1] : null,
        endsAtTerminator: up.endsWith('\r\n.\r\n'),
        started,
        cut: proxy.cut,
        forwardedDown: proxy.bytesDown,
        replyBytesSeen: Math.max(0, proxy.bytesDown - lastReplyAt)
    };
}

/** The DATA bytes nodemailer sends for `raw`: dot-stuffed, CRLF, terminator. */
function dataBytes(raw: Buffer): number {
    const text = raw.toString('latin1');
    const stuffed = text.replace(/(^|\r\n)\./g, '$1..');
    return Buffer.byteLength(stuffed, 'latin1') + (stuffed.endsWith('\r\n') ? 3 : 5);
}

interface LocalMessage {
    uid: number;
    messageId: string | null;
    raw: Buffer;
}

function localMessages(gateway: Gateway, user: string, mailbox: string): LocalMessage[] {
    const store = gateway.daemon.store;
    const box = store.mailboxes.get(store.users.get(user)!.id, mailbox);
    if (!box) return [];
    return messageRows(store, box.id).map(row => ({ uid: row.uid, messageId: row.messageId, raw: store.messages.readRaw(row.blobHash) }));
}

function upstreamById(messages: UpstreamMessage[]): Map<string, UpstreamMessage> {
    const map = new Map<string, UpstreamMessage>();
    for (const message of messages) {
        const id = headerValue(message.headers, 'Message-ID');
        assert.ok(id, `upstream uid ${message.uid} has a Message-ID`);
        assert.ok(!map.has(normaliseMessageId(id)), `upstream has ${id} once`);
        map.set(normaliseMessageId(id), message);
    }
    return map;
}

/** Local INBOX ⊆ upstream, byte-identical, no Message-ID twice. Returns the local ids. */
function checkLocalSubset(local: LocalMessage[], upstream: Map<string, UpstreamMessage>, when: string): Set<string> {
    const seen = new Set<string>();
    for (const message of local) {
        assert.ok(message.messageId, `${when}: local uid ${message.uid} has a Message-ID`);
        assert.ok(!seen.has(message.messageId), `${when}: ${message.messageId} is in the local INBOX twice`);
        seen.add(message.messageId);
        const original = upstream.get(message.messageId);
        assert.ok(original, `${when}: local ${message.messageId} is not an upstream message`);
        assert.ok(message.raw.equals(original.source), `${when}: local ${message.messageId} (${message.raw.length} bytes) differs from upstream's source (${original.source.length} bytes)`);
    }
    return seen;
}

/** Copies delivered so far, keyed "<message-id> recipient". */
async function deliveredCopies(upstream: Upstream): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    const add = (key: string) => counts.set(key, (counts.get(key) ?? 0) + 1);
    for (const copy of await upstream.sentCopies()) {
        const id = headerValue(copy.headers, 'Message-ID');
        if (id) add(`${normaliseMessageId(id)} ${copy.envelopeTo.toLowerCase()}`);
    }
    for (const copy of await upstream.listMessages(BOB)) {
        const id = headerValue(copy.headers, 'Message-ID');
        assert.equal(headerValue(copy.headers, 'Delivered-To')?.toLowerCase(), BOB);
        if (id) add(`${normaliseMessageId(id)} ${BOB}`);
    }
    return counts;
}

function accountYaml(imapPort: number, smtpPort: number): string {
    return [
        `      - address: ${ALICE}`,
        `        imap: { host: 127.0.0.1, port: ${imapPort}, tls: none }`,
        `        smtp: { host: 127.0.0.1, port: ${smtpPort}, tls: none }`,
        '        credentials: { password: alice-pass }',
        '        folders: [INBOX]'
    ].join('\n');
}

interface Outgoing {
    messageId: string;
    to: string[];
    cc: string[];
    bcc: string[];
    size: number;
}

const OUTGOING: Omit<Outgoing, 'messageId'>[] = [
    { to: ['carol@example.org'], cc: [], bcc: [], size: 3_000 },
    { to: [BOB], cc: ['dave@example.net'], bcc: [], size: 22_000 },
    { to: ['erin@example.org'], cc: [], bcc: ['frank@example.com'], size: 48_000 },
    { to: [BOB], cc: [], bcc: [], size: 9_000 },
    { to: ['grace@example.org', 'heidi@example.net'], cc: [], bcc: [], size: 110_000 }
];

function envelopeOf(message: Outgoing): string[] {
    return [...message.to, ...message.cc, ...message.bcc].map(a => a.toLowerCase());
}

async function submit(smtpPort: number, user: string, password: string, messages: Outgoing[], random: () => number): Promise<void> {
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: smtpPort, secure: false, ignoreTLS: true, auth: { user, pass: password } });
    try {
        for (const [i, message] of messages.entries()) {
            await transport.sendMail({
                from: ALICE,
                to: message.to,
                cc: message.cc.length ? message.cc : undefined,
                bcc: message.bcc.length ? message.bcc : undefined,
                subject: `outgoing ${i} (${message.size} bytes)`,
                messageId: message.messageId,
                date: new Date('2026-11-23T10:00:00Z'),
                text: prose(random, message.size)
            });
        }
    } finally {
        transport.close();
    }
}

// ------------------------------------------------------------------ shared upstream

let upstream: Upstream;
before(async () => {
    upstream = await startUpstream();
});
after(async () => {
    await upstream?.stop();
});

// ------------------------------------------------------------------ test 1

test('uplink over a link cut after N bytes (20 seeded N, then uncut): every message home once, every outgoing message out once', { timeout: 120_000 }, async t => {
    const random = rng(SEED);
    const started = Date.now();

    // Upstream INBOX: 15 messages, 2 KB–200 KB log-uniform.
    for (let i = 0; i < 15; i++) {
        const size = Math.round(2048 * Math.pow(100, random()));
        await upstream.deliver(ALICE, inboundMessage(random, i, size).raw);
    }
    const upstreamInbox = upstreamById(await upstream.listMessages(ALICE));
    assert.equal(upstreamInbox.size, 15);

    const recorder = await startRecorder(upstream.submissionPort);
    const imapLink = await startLinkProxy({ targetPort: upstream.imapPort });
    const smtpLink = await startLinkProxy({ targetPort: recorder.port });
    let gateway: Gateway | null = null;
    try {
        gateway = await startGateway({ users: [{ name: 'alice', password: LOCAL_PASSWORD, accountsYaml: accountYaml(imapLink.port, smtpLink.port) }] });
        const store = gateway.daemon.store;

        const outgoing: Outgoing[] = OUTGOING.map((m, i) => ({ ...m, messageId: `<out-${i}.${SEED}@mailmule.test>` }));
        await submit(gateway.smtpPort, 'alice', LOCAL_PASSWORD, outgoing, random);
        assert.equal(store.queue.counts().queued, outgoing.length, 'all five queued');
        const blobOf = new Map(store.queue.list().map(entry => [normaliseMessageId(entry.messageId!), store.messages.readRaw(entry.blobHash)]));
        // Nothing is exchanged with the provider before the first run.
        assert.equal(smtpLink.stats().connections + imapLink.stats().connections, 0);

        // Ground truth, over all runs: what Postfix accepted, and the lost replies.
        const acceptedByPostfix = new Map<string, number>();
        const lostReplies: { run: string; cut: number; messageId: string; endsAtTerminator: boolean; replyBytesSeen: number }[] = [];
        let forced: { cut: number; messageId: string } | null = null;
        const runLog: string[] = [];

        // 20 cut points, one per log-uniform stratum between MIN_CUT and MAX_CUT, ascending.
        const ratio = Math.log(MAX_CUT / MIN_CUT);
        const cuts = Array.from({ length: CUTS }, (_, i) => Math.round(MIN_CUT * Math.exp(ratio * ((i + random()) / CUTS))));
        const plan: { label: string; cut: number | null }[] = cuts.map((cut, i) => ({ label: `cut ${i + 1}/${CUTS}`, cut }));

        const doRun = async (label: string, cut: number | null) => {
            imapLink.reset();
            smtpLink.reset();
            recorder.reset();
            imapLink.setCutAfter(cut);
            smtpLink.setCutAfter(cut);
            const report = await withTimeout(gateway!.daemon.uplink!.run({ trigger: `fault test ${label}` }), 60_000, `uplink run ${label}`);
            // Postfix answers (or not) what it got; the recorder keeps reading until it closes.
            await until(`recorder connections closed (${label})`, () => recorder.connections.every(c => c.closed), 5000);
            await until(`proxy connections closed (${label})`, () => imapLink.stats().active + smtpLink.stats().active === 0, 5000);
            const account = report.accounts.find(a => a.account === ALICE);
            const proxyConnections = smtpLink.connectionStats();
            assert.equal(recorder.connections.length, proxyConnections.length, `${label}: one recorded connection per proxied one`);
            const sessions = recorder.connections.map((record, i) => analyseSmtp(record, proxyConnections[i]));
            for (const session of sessions) {
                for (const id of session.accepted) acceptedByPostfix.set(id, (acceptedByPostfix.get(id) ?? 0) + 1);
                if (session.lostReply)
                    lostReplies.push({ run: label, cut: cut ?? Infinity, messageId: session.lostReply, endsAtTerminator: session.endsAtTerminator, replyBytesSeen: session.replyBytesSeen });
            }
            runLog.push(
                `${label.padEnd(16)} N=${String(cut ?? '∞').padStart(6)}: ${report.status}; imap ${imapLink.stats().connections} conn ${imapLink.stats().cuts} cut, smtp ${smtpLink.stats().connections} conn ${smtpLink.stats().cuts} cut; ` +
                    `received ${account?.messagesReceived ?? 0}, sent ${account?.messagesSent ?? 0}; postfix accepted ${sessions.reduce((n, s) => n + s.accepted.length, 0)}` +
                    (sessions.some(s => s.lostReply) ? ' (250 LOST IN TRANSIT)' : '')
            );

            // ---- invariants after every run ----
            assert.equal(store.integrityCheck(), 'ok', `${label}: integrity_check`);
            const counts = store.queue.counts();
            assert.equal(counts.sending, 0, `${label}: no queue entry left in 'sending'`);
            assert.equal(counts.failed, 0, `${label}: a cut link never fails a message for good`);
            checkLocalSubset(localMessages(gateway!, 'alice', 'INBOX'), upstreamInbox, label);
            const pending = pendingRows(store, ALICE);
            for (const row of pending) assert.ok(upstreamInbox.has(row.messageId!), `${label}: pending ${row.messageId} is upstream`);
            for (const entry of store.queue.list()) {
                const id = normaliseMessageId(entry.messageId!);
                const envelope = envelopeOf(outgoing.find(m => normaliseMessageId(m.messageId) === id)!);
                assert.deepEqual(entry.recipients.map(r => r.address.toLowerCase()).sort(), [...envelope].sort(), `${label}: ${id} keeps its whole envelope`);
                const sentHere = entry.recipients.filter(r => r.state === 'sent').length;
                // A recipient recorded as sent was accepted by Postfix at least once.
                if (sentHere) assert.ok((acceptedByPostfix.get(id) ?? 0) >= 1, `${label}: ${id} recorded sent but Postfix never accepted it`);
                // Postfix accepted it more often than the window allows: a real duplicate.
                const windows = lostReplies.filter(l => l.messageId === id).length;
                assert.ok((acceptedByPostfix.get(id) ?? 0) <= 1 + windows, `${label}: ${id} accepted ${acceptedByPostfix.get(id)} times with ${windows} lost replies`);
            }
            // Simulated time: the 15-minute backoff has passed.
            makeDeferredDue(store);
            return sessions;
        };

        for (let i = 0; i < plan.length; i++) {
            const sessions = await doRun(plan[i].label, plan[i].cut);
            // The forced window: a session cut inside the DATA of its first and only message tells
            // where that message's terminator ends; the next session starts the same way.
            if (FORCE_LOST_REPLY && !forced && sessions.length === 1) {
                const session = sessions[0];
                const record = recorder.connections[0];
                if (session.cut && session.started.length === 1 && session.accepted.length === 0) {
                    const up = Buffer.concat(record.up).toString('latin1');
                    const bodyStart = up.indexOf('DATA\r\n') + 'DATA\r\n'.length;
                    const down = Buffer.concat(record.down).subarray(0, session.forwardedDown).toString('latin1');
                    if (bodyStart > 6 && /^354 /m.test(down)) {
                        const id = session.started[0];
                        const cut = bodyStart + dataBytes(blobOf.get(id)!) + session.forwardedDown + 4;
                        forced = { cut, messageId: id };
                        plan.splice(i + 1, 0, { label: 'forced window', cut });
                    }
                }
            }
        }
        await doRun('uncut', null);
        const meterCheck = lastRunAccountBytes(gateway.daemon.store);
        const link = { up: imapLink.stats().bytesUp + smtpLink.stats().bytesUp, down: imapLink.stats().bytesDown + smtpLink.stats().bytesDown };

        // ---- end state ----
        const local = localMessages(gateway, 'alice', 'INBOX');
        const localIds = checkLocalSubset(local, upstreamInbox, 'end');
        assert.equal(local.length, upstreamInbox.size, 'as many local messages as upstream');
        assert.deepEqual([...localIds].sort(), [...upstreamInbox.keys()].sort(), 'the same Message-IDs');
        assert.equal(pendingRows(store).length, 0, 'nothing left pending');
        for (const entry of store.queue.list()) {
            assert.equal(entry.state, 'sent', `${entry.messageId} sent`);
            assert.ok(entry.recipients.every(r => r.state === 'sent'));
        }
        assert.equal(store.integrityCheck(), 'ok');

        // Copies upstream: wait until Postfix has delivered what it accepted.
        const expected = new Map<string, number>();
        for (const message of outgoing) {
            const id = normaliseMessageId(message.messageId);
            const windows = lostReplies.filter(l => l.messageId === id).length;
            for (const rcpt of envelopeOf(message)) expected.set(`${id} ${rcpt}`, 1 + windows);
        }
        const total = [...expected.values()].reduce((a, b) => a + b, 0);
        let copies = new Map<string, number>();
        await until(
            'Postfix delivered every accepted copy',
            async () => {
                copies = await deliveredCopies(upstream);
                return [...copies.values()].reduce((a, b) => a + b, 0) >= total;
            },
            20_000
        );
        await sleep(300);
        copies = await deliveredCopies(upstream);
        for (const [key, count] of expected) assert.equal(copies.get(key) ?? 0, count, `copies of ${key}`);
        for (const key of copies.keys()) assert.ok(expected.has(key), `unexpected copy ${key}`);
        for (const message of outgoing) {
            const id = normaliseMessageId(message.messageId);
            assert.equal(acceptedByPostfix.get(id), 1 + lostReplies.filter(l => l.messageId === id).length, `Postfix accepted ${id} once, plus once per lost reply`);
        }
        for (const lost of lostReplies) {
            assert.ok(lost.endsAtTerminator, `lost reply in ${lost.run} (N=${lost.cut}): the cut fell right after the DATA terminator of ${lost.messageId}`);
        }
        if (forced)
            assert.ok(
                lostReplies.some(l => l.run === 'forced window'),
                `the forced cut (N=${forced.cut}) lost the final 250 of ${forced.messageId}`
            );

        // The uncut run: the uplink's own meter saw what crossed the link.
        assert.ok(meterCheck);
        assert.equal(meterCheck.bytesSent, link.up, 'meter: bytes sent = link proxy bytes up (uncut run)');
        assert.equal(meterCheck.bytesReceived, link.down, 'meter: bytes received = link proxy bytes down (uncut run)');

        t.diagnostic(`seed ${SEED}; cut points ${cuts.join(', ')}`);
        for (const line of runLog) t.diagnostic(line);
        t.diagnostic(
            `lost final 250 (duplicate window): ${lostReplies.length ? lostReplies.map(l => `${l.run} N=${l.cut} ${l.messageId} (cut right after the DATA terminator: ${l.endsAtTerminator}; ${l.replyBytesSeen} bytes of Postfix's "250 2.0.0 Ok: queued as …" reached the gateway)`).join('; ') : 'none'}`
        );
        t.diagnostic(`copies delivered: ${[...copies.entries()].map(([k, v]) => `${k}×${v}`).join(', ')}`);
        t.diagnostic(`elapsed ${Date.now() - started} ms`);
    } finally {
        await gateway?.stop();
        await imapLink.close();
        await smtpLink.close();
        await recorder.close();
    }
});

// ------------------------------------------------------------------ test 2

function sync(configFile: string): { done: Promise<{ code: number | null; stdout: string; stderr: string }> } {
    return { done: runProcess(process.execPath, [MAIN, 'sync', '-c', configFile], { timeoutMs: 60_000, cwd: path.dirname(configFile) }) };
}

test('SIGKILL of the daemon mid-send and mid-receive: after restarts, nothing twice, nothing missing, sending entries recovered', { timeout: 90_000 }, async t => {
    const random = rng(SEED + 1);
    const KATE = 'kate-local';
    // Its own upstream instance (alice again), so the two tests are independent.
    const up = await startUpstream();
    const imapLink = await startLinkProxy({ targetPort: up.imapPort });
    const recorder = await startRecorder(up.submissionPort);
    const smtpLink = await startLinkProxy({ targetPort: recorder.port, cutMode: 'blackhole' });
    const dir = tempDir('mailmule-fault-kill-');
    let daemon: DaemonProcess | null = null;
    try {
        // 30 inbound messages, 20–200 KB (about 3 MB: the receive phase lasts a few seconds shaped).
        for (let i = 0; i < 30; i++) await up.deliver(ALICE, inboundMessage(random, 100 + i, Math.round(20_000 * Math.pow(10, random()))).raw);
        const upstreamInbox = upstreamById(await up.listMessages(ALICE));

        const { configFile } = writeConfig(dir, { users: [{ name: KATE, password: LOCAL_PASSWORD, accountsYaml: accountYaml(imapLink.port, smtpLink.port) }] });
        const smtpPort = (await assignFreePorts(configFile))[2];
        const dataDir = path.join(dir, 'data');
        const passwd = spawnSync(process.execPath, [MAIN, 'passwd', KATE, '-c', configFile], { input: `${LOCAL_PASSWORD}\n`, timeout: 30_000, encoding: 'utf8' });
        assert.equal(passwd.status, 0, `mailmule passwd: ${passwd.stdout}${passwd.stderr}`);

        daemon = await startDaemon(configFile);
        const outgoing: Outgoing[] = [
            { messageId: `<kill-small.${SEED}@mailmule.test>`, to: ['carol@example.org', BOB], cc: [], bcc: [], size: 4_000 },
            { messageId: `<kill-big.${SEED}@mailmule.test>`, to: ['dave@example.net'], cc: [], bcc: ['erin@example.org'], size: 300_000 }
        ];
        await submit(smtpPort, KATE, LOCAL_PASSWORD, outgoing, random);

        // ---- kill 1: while the 300 KB message is going through DATA ----
        // The link stalls 150 KB into the session (blackhole: nothing more reaches Postfix), the
        // daemon waits for the end of its DATA with the entry in 'sending', and is killed there.
        // (Killed on a live link instead, the kernel would still deliver whatever the process had
        // already written, possibly the whole message: then Postfix accepts it and the 250 is
        // lost with the process, the same window as a reply lost in transit.)
        smtpLink.setCutAfter(i => (i === 0 ? 150_000 : null));
        const run1 = sync(configFile);
        await until('the link stalls 150 KB into the session', () => smtpLink.stats().cuts === 1, 30_000);
        await until(
            "the big message is in 'sending'",
            () => withStoreDb(dataDir, db => (db.prepare('SELECT state FROM queue WHERE message_id = ?').get(normaliseMessageId(outgoing[1].messageId)) as { state: string }).state) === 'sending',
            10_000
        );
        await daemon.kill9();
        // The stalled link finally drops: Postfix sees the session end in the middle of DATA.
        recorder.cutAll();
        smtpLink.setCutAfter(null);
        const r1 = await run1.done;
        assert.notEqual(r1.code, 0, 'the sync client sees the daemon die');
        await until('the killed session is over at the provider too', () => recorder.connections.every(c => c.closed), 10_000);
        const killedSession = analyseSmtp(recorder.connections[0], smtpLink.connectionStats()[0]);
        assert.deepEqual(killedSession.accepted, [normaliseMessageId(outgoing[0].messageId)], 'Postfix accepted the small message only: the big one was cut short');
        assert.equal(killedSession.lostReply, null);
        const afterKill1 = withStoreDb(dataDir, db => db.prepare('SELECT message_id, state FROM queue ORDER BY id').all() as { message_id: string; state: string }[]);
        assert.deepEqual(
            afterKill1.map(r => r.state),
            ['sent', 'sending'],
            `after the kill: the small message sent, the big one left in 'sending' (${JSON.stringify(afterKill1)})`
        );

        // ---- restart: the interrupted send is recovered, and goes out in the next run ----
        daemon = await startDaemon(configFile);
        const recovered = withStoreDb(
            dataDir,
            db =>
                db.prepare('SELECT state, last_error, next_attempt_at FROM queue WHERE message_id = ?').get(normaliseMessageId(outgoing[1].messageId)) as {
                    state: string;
                    last_error: string;
                    next_attempt_at: number | null;
                }
        );
        assert.equal(recovered.state, 'deferred', 'recovered at start-up');
        assert.match(recovered.last_error, /interrupted/);
        assert.ok(!recovered.next_attempt_at || recovered.next_attempt_at <= Date.now(), 'due at once');

        // ---- kill 2: in the receive phase, a third of the way through the bodies ----
        imapLink.setShaping({ bandwidthBps: 8_000_000, latencyMs: 5 });
        imapLink.reset();
        const run2 = sync(configFile);
        const homeCount = () =>
            withStoreDb(
                dataDir,
                db => (db.prepare('SELECT COUNT(*) AS n FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id WHERE b.path = ? AND m.upstream_uid IS NOT NULL').get('INBOX') as { n: number }).n
            );
        await until('a third of the messages are home', () => homeCount() >= 10, 30_000);
        await daemon.kill9();
        await run2.done;
        const afterKill2 = withStoreDb(dataDir, db => ({
            queue: db.prepare('SELECT state FROM queue ORDER BY id').all() as { state: string }[],
            local: homeCount()
        }));
        assert.deepEqual(
            afterKill2.queue.map(r => r.state),
            ['sent', 'sent'],
            'the recovered message went out before the receive phase'
        );
        assert.ok(afterKill2.local > 0 && afterKill2.local < upstreamInbox.size, `killed mid-receive (${afterKill2.local} of ${upstreamInbox.size} home)`);
        imapLink.setShaping({ bandwidthBps: null, latencyMs: 0 });

        // ---- restart, final run ----
        daemon = await startDaemon(configFile);
        const r3 = await sync(configFile).done;
        assert.equal(r3.code, 0, describeRun('mailmule sync', { ...r3, signal: null, ms: 0, timedOut: false }));
        await daemon.stop();
        daemon = null;

        // The store, with the daemon gone.
        const store = new Store({ dataDir });
        try {
            assert.equal(store.integrityCheck(), 'ok');
            const box = store.mailboxes.get(store.users.get(KATE)!.id, 'INBOX')!;
            const rows = messageRows(store, box.id).map(row => ({ messageId: row.messageId!, blobHash: row.blobHash }));
            const ids = rows.map(r => r.messageId).sort();
            assert.equal(new Set(ids).size, ids.length, 'no Message-ID twice in the local INBOX');
            assert.deepEqual(ids, [...upstreamInbox.keys()].sort(), 'the local INBOX holds exactly the upstream messages');
            for (const row of rows) assert.ok(store.messages.readRaw(row.blobHash).equals(upstreamInbox.get(row.messageId)!.source), `${row.messageId} byte-identical`);
            const queue = store.queue.list();
            assert.deepEqual(
                queue.map(e => e.state),
                ['sent', 'sent'],
                'the queue is all sent'
            );
            assert.ok(queue.every(e => e.recipients.every(r => r.state === 'sent')));
            assert.equal(pendingRows(store).length, 0, 'nothing pending');
        } finally {
            store.close();
        }

        // Delivered exactly once per envelope recipient.
        const expected = outgoing.flatMap(m => envelopeOf(m).map(r => `${normaliseMessageId(m.messageId)} ${r}`));
        let copies = new Map<string, number>();
        await until(
            'Postfix delivered both messages',
            async () => {
                copies = await deliveredCopies(up);
                return expected.every(key => copies.has(key));
            },
            20_000
        );
        await sleep(300);
        copies = await deliveredCopies(up);
        for (const key of expected) assert.equal(copies.get(key), 1, `one copy of ${key}`);
        assert.equal(copies.size, expected.length, 'no other copies');
        t.diagnostic(
            `kill 1: queue ${JSON.stringify(afterKill1)}; kill 2: ${afterKill2.local}/${upstreamInbox.size} messages home; final: all ${upstreamInbox.size} home, ${expected.length} copies delivered once`
        );
    } finally {
        if (daemon) await daemon.kill9().catch(() => undefined);
        await imapLink.close();
        await smtpLink.close();
        await recorder.close();
        await up.stop();
        fs.rmSync(dir, { recursive: true, force: true });
    }
});
