/**
 * Proves the test fixtures work: a real Dovecot + Postfix upstream on loopback (test/support/upstream.ts)
 * and the shaping/cutting byte-counting link proxy (test/support/link-proxy.ts).
 *
 * Over 500 lines: independent checks of the fixtures sharing one upstream instance, whose start-up
 * is the expensive part.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import { startUpstream, headerValue, type Upstream } from './support/upstream';
import { startLinkProxy } from './support/link-proxy';
import { makeMessage } from './support/gateway';

let upstream: Upstream;
const ALICE = 'alice@upstream.test';
const BOB = 'bob@upstream.test';

before(async () => {
    upstream = await startUpstream();
});
after(async () => {
    await upstream?.stop();
});

/** A raw socket session: sends `lines` one by one, each after the previous tagged reply. */
function rawImapSession(port: number, lines: string[]): Promise<{ sent: number; received: number; text: string; closedEarly: boolean }> {
    return new Promise((resolve, reject) => {
        const socket = net.connect({ host: '127.0.0.1', port });
        let sent = 0;
        let received = 0;
        let text = '';
        let step = -1; // -1: waiting for the greeting
        let done = false;
        const timer = setTimeout(() => finish(new Error(`raw IMAP session timed out: ${JSON.stringify(text.slice(-300))}`)), 10_000);
        function finish(err?: Error) {
            if (done) return;
            done = true;
            clearTimeout(timer);
            socket.destroy();
            if (err) reject(err);
            else resolve({ sent, received, text, closedEarly: step < lines.length });
        }
        function next() {
            step++;
            if (step >= lines.length) return; // wait for the server to close (after LOGOUT)
            const line = Buffer.from(`${step.toString(36)}x ${lines[step]}\r\n`);
            sent += line.length;
            socket.write(line);
        }
        socket.on('data', chunk => {
            received += chunk.length;
            text += chunk.toString('latin1');
            if (step === -1 ? /^\* OK/.test(text) : new RegExp(`(^|\\r\\n)${step.toString(36)}x (OK|NO|BAD)[^\\r\\n]*\\r\\n$`).test(text)) next();
        });
        socket.on('error', () => finish());
        socket.on('close', () => finish());
    });
}

test('startup: all four ports answer, within a couple of seconds', t => {
    t.diagnostic(`startUpstream took ${upstream.startupMs} ms (imap ${upstream.imapPort}, lmtp ${upstream.lmtpPort}, submission ${upstream.submissionPort}, smtp ${upstream.smtpPort})`);
    assert.ok(upstream.startupMs < 10_000);
    assert.equal(new Set([upstream.imapPort, upstream.lmtpPort, upstream.submissionPort, upstream.smtpPort]).size, 4);
});

test('Dovecot: LOGIN and SELECT with imapflow; CONDSTORE, QRESYNC, COMPRESS=DEFLATE advertised', async () => {
    const client = await upstream.connect(ALICE, { qresync: true });
    try {
        for (const cap of ['CONDSTORE', 'QRESYNC', 'COMPRESS=DEFLATE', 'IDLE', 'UIDPLUS', 'MOVE', 'SPECIAL-USE']) {
            assert.ok(client.capabilities.has(cap), `capability ${cap} in ${[...client.capabilities.keys()].join(' ')}`);
        }
        assert.ok(client.enabled.has('QRESYNC'), 'ENABLE QRESYNC accepted');
        const mailbox = await client.mailboxOpen('INBOX');
        assert.ok(mailbox.uidValidity > 0n);
        assert.ok(typeof mailbox.highestModseq === 'bigint', 'HIGHESTMODSEQ reported');
        const list = await client.list();
        const special = new Map(list.map(m => [m.specialUse, m.path]));
        assert.equal(special.get('\\Sent'), 'Sent');
        assert.equal(special.get('\\Trash'), 'Trash');
    } finally {
        await client.logout();
    }
    // A wrong password is refused.
    const bad = new ImapFlow({ host: '127.0.0.1', port: upstream.imapPort, secure: false, auth: { user: ALICE, pass: 'nope' }, logger: false });
    bad.on('error', () => undefined);
    await assert.rejects(bad.connect());
});

test('LMTP delivery lands in the mailbox; setFlags and listMessages', async () => {
    const raw = makeMessage({ to: ALICE, subject: 'via lmtp', messageId: '<lmtp-1@example.org>', body: 'x'.repeat(2000) });
    await upstream.deliver(ALICE, raw, { from: 'carol@example.org' });
    const messages = await upstream.listMessages(ALICE, 'INBOX');
    const message = messages.find(m => headerValue(m.headers, 'Message-ID') === '<lmtp-1@example.org>');
    assert.ok(message, 'delivered message found');
    assert.equal(headerValue(message.headers, 'Delivered-To'), ALICE);
    assert.equal(headerValue(message.headers, 'Return-Path'), '<carol@example.org>');
    assert.ok(message.source.subarray(message.source.length - raw.length).equals(raw), 'original bytes kept after the added trace headers');
    assert.deepEqual(message.flags, []);

    await upstream.setFlags(ALICE, 'INBOX', message.uid, ['\\Seen', '\\Flagged', '$Forwarded']);
    const after = (await upstream.listMessages(ALICE, 'INBOX')).find(m => m.uid === message.uid)!;
    assert.deepEqual([...after.flags].sort(), ['$Forwarded', '\\Flagged', '\\Seen']);
    assert.ok(after.modseq! > message.modseq!, 'MODSEQ advanced');

    // Several recipients in one LMTP transaction; delivery is done when deliver() resolves.
    await upstream.deliver([ALICE, BOB], makeMessage({ subject: 'to both', messageId: '<lmtp-2@example.org>' }));
    for (const address of [ALICE, BOB]) {
        const copies = (await upstream.listMessages(address)).filter(x => headerValue(x.headers, 'Message-ID') === '<lmtp-2@example.org>');
        assert.equal(copies.length, 1, address);
    }
});

test('Postfix submission: AUTH required; local and external recipients, Bcc honoured, copies inspectable', async () => {
    // Without AUTH the submission port refuses to take the mail.
    const anonymous = nodemailer.createTransport({ host: '127.0.0.1', port: upstream.submissionPort, secure: false, ignoreTLS: true, connectionTimeout: 5000 });
    await assert.rejects(anonymous.sendMail({ from: ALICE, to: BOB, subject: 'no auth', text: 'x' }), /reject|Access denied|Relay|5\d\d/i);
    anonymous.close();
    const wrong = nodemailer.createTransport({ host: '127.0.0.1', port: upstream.submissionPort, secure: false, ignoreTLS: true, auth: { user: ALICE, pass: 'wrong' } });
    await assert.rejects(wrong.sendMail({ from: ALICE, to: BOB, subject: 'bad auth', text: 'x' }), /535|auth/i);
    wrong.close();

    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: upstream.submissionPort, secure: false, ignoreTLS: true, auth: { user: ALICE, pass: 'alice-pass' } });
    const info = await transport.sendMail({
        from: 'Alice <alice@upstream.test>',
        to: ['bob@upstream.test', 'Someone <someone@elsewhere.example>'],
        bcc: 'hidden@another.example',
        subject: 'Grüße über Postfix',
        messageId: '<submit-1@upstream.test>',
        headers: { 'X-Test-Header': 'kept' },
        text: 'Hello from the uplink test.'
    });
    transport.close();
    assert.deepEqual([...info.accepted].sort(), ['bob@upstream.test', 'hidden@another.example', 'someone@elsewhere.example']);

    // bob@upstream.test: delivered into Dovecot over LMTP.
    const inBob = await upstream.waitForMessages(BOB, 'INBOX', m => m.some(x => headerValue(x.headers, 'Message-ID') === '<submit-1@upstream.test>'));
    const bobCopy = inBob.find(x => headerValue(x.headers, 'Message-ID') === '<submit-1@upstream.test>')!;
    assert.equal(headerValue(bobCopy.headers, 'Delivered-To'), BOB);

    // Everything else: one copy per envelope recipient in the catch-all, recipient in Delivered-To.
    const isOurs = (m: { headers: string }) => headerValue(m.headers, 'Message-ID') === '<submit-1@upstream.test>';
    await upstream.waitForMessages(upstream.catchall.address, 'INBOX', m => m.filter(isOurs).length >= 2);
    const sent = (await upstream.sentCopies()).filter(isOurs);
    assert.deepEqual(sent.map(c => c.envelopeTo).sort(), ['hidden@another.example', 'someone@elsewhere.example']);
    assert.deepEqual(
        sent.map(c => c.envelopeFrom),
        ['alice@upstream.test', 'alice@upstream.test']
    );
    for (const copy of [...sent, bobCopy]) {
        assert.equal(headerValue(copy.headers, 'Return-Path'), '<alice@upstream.test>');
        assert.equal(headerValue(copy.headers, 'X-Test-Header'), 'kept');
        assert.equal(headerValue(copy.headers, 'From'), 'Alice <alice@upstream.test>');
        assert.match(headerValue(copy.headers, 'To') ?? '', /bob@upstream\.test.*someone@elsewhere\.example/);
        assert.match(headerValue(copy.headers, 'Subject') ?? '', /=\?UTF-8\?/i);
        assert.equal(headerValue(copy.headers, 'Bcc'), undefined, 'no Bcc header');
        assert.match(copy.headers, /by smtp\.upstream\.test \(Postfix\) with ESMTPS?A /, 'authenticated submission trace');
        assert.match(copy.source.toString(), /Hello from the uplink test\./);
        // Only the Bcc recipient's own copy names it, and only in the trace Dovecot added for it.
        const mentions = copy.headers.split(/\r?\n(?![ \t])/).filter(h => h.includes('hidden@another.example'));
        if ((copy as { envelopeTo?: string }).envelopeTo === 'hidden@another.example') {
            assert.deepEqual(
                mentions.map(h => h.split(':')[0]),
                ['Delivered-To', 'Received']
            );
        } else {
            assert.deepEqual(mentions, []);
        }
    }

    // Unknown upstream.test user: refused at RCPT by Postfix.
    const again = nodemailer.createTransport({ host: '127.0.0.1', port: upstream.submissionPort, secure: false, ignoreTLS: true, auth: { user: BOB, pass: 'bob-pass' } });
    await assert.rejects(again.sendMail({ from: BOB, to: 'nobody@upstream.test', subject: 'x', text: 'x' }), /550|Recipient address rejected|User unknown/i);
    again.close();
});

test('Postfix load smtpd: no AUTH needed from loopback, mail reaches the catch-all', async () => {
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: upstream.smtpPort, secure: false, ignoreTLS: true });
    await transport.sendMail({ envelope: { from: 'load@upstream.test', to: ['far@away.example'] }, raw: makeMessage({ to: 'far@away.example', messageId: '<load-1@example.org>' }) });
    transport.close();
    const messages = await upstream.waitForMessages(upstream.catchall.address, 'INBOX', m => m.some(x => headerValue(x.headers, 'Message-ID') === '<load-1@example.org>'));
    const copy = messages.find(x => headerValue(x.headers, 'Message-ID') === '<load-1@example.org>')!;
    assert.equal(headerValue(copy.headers, 'Delivered-To'), 'far@away.example');
    assert.equal(headerValue(copy.headers, 'Return-Path'), '<load@upstream.test>');
});

test('UIDVALIDITY reset keeps the messages (renumbered, and bump-only)', async () => {
    await upstream.createFolder(BOB, 'Reset/Sub');
    const client = await upstream.connect(BOB);
    try {
        for (let i = 1; i <= 3; i++) {
            await client.append('Reset/Sub', makeMessage({ subject: `reset ${i}`, messageId: `<reset-${i}@example.org>` }), i === 1 ? ['\\Seen'] : i === 2 ? ['\\Flagged', '$Forwarded'] : []);
        }
        // Expunge one in the middle so renumbering is visible (UIDs 1,3 → 1,2).
        const lock = await client.getMailboxLock('Reset/Sub');
        try {
            await client.messageDelete('2', { uid: true });
        } finally {
            lock.release();
        }
    } finally {
        await client.logout();
    }
    const summary = (messages: { uid: number; flags: string[]; headers: string }[]) =>
        messages.map(m => ({ id: headerValue(m.headers, 'Message-ID'), flags: [...m.flags].sort() })).sort((a, b) => String(a.id).localeCompare(String(b.id)));
    const before = await upstream.listMessages(BOB, 'Reset/Sub');
    assert.deepEqual(
        before.map(m => m.uid),
        [1, 3]
    );

    const renumbered = await upstream.recreateFolder(BOB, 'Reset/Sub');
    assert.notEqual(renumbered.after.uidValidity, renumbered.before.uidValidity);
    assert.equal(renumbered.after.messages, 2);
    const afterRenumber = await upstream.listMessages(BOB, 'Reset/Sub');
    assert.deepEqual(
        afterRenumber.map(m => m.uid),
        [1, 2],
        'UIDs reassigned'
    );
    assert.deepEqual(summary(afterRenumber), summary(before), 'same messages and flags');

    // IMAP sees the new UIDVALIDITY too.
    const imap = await upstream.connect(BOB);
    try {
        const box = await imap.mailboxOpen('Reset/Sub');
        assert.equal(Number(box.uidValidity), renumbered.after.uidValidity);
    } finally {
        await imap.logout();
    }

    const bumped = await upstream.recreateFolder(BOB, 'Reset/Sub', { renumber: false });
    assert.ok(bumped.after.uidValidity > bumped.before.uidValidity);
    const afterBump = await upstream.listMessages(BOB, 'Reset/Sub');
    assert.deepEqual(
        afterBump.map(m => m.uid),
        [1, 2],
        'UIDs kept'
    );
    assert.deepEqual(summary(afterBump), summary(before));

    // INBOX works the same way.
    const inboxReset = await upstream.recreateFolder(ALICE, 'INBOX');
    assert.notEqual(inboxReset.after.uidValidity, inboxReset.before.uidValidity);
    assert.equal(inboxReset.after.messages, inboxReset.before.messages);
});

test('link proxy: counts exactly the bytes a raw IMAP client sent and received', async () => {
    const link = await startLinkProxy({ targetPort: upstream.imapPort });
    try {
        const session = await rawImapSession(link.port, ['CAPABILITY', `LOGIN ${ALICE} alice-pass`, 'SELECT INBOX', 'UID FETCH 1:* (FLAGS BODY.PEEK[])', 'LOGOUT']);
        assert.match(session.text, /\* BYE/);
        // The proxy closes its side right after the client's socket closes; wait for that (bounded).
        const deadline = Date.now() + 2000;
        while (link.stats().active > 0 && Date.now() < deadline) await new Promise(r => setTimeout(r, 10));
        const stats = link.stats();
        assert.equal(stats.bytesUp, session.sent);
        assert.equal(stats.bytesDown, session.received);
        assert.equal(stats.connections, 1);
        assert.equal(stats.active, 0);

        // imapflow through the proxy (with COMPRESS=DEFLATE on the wire) works and is counted.
        link.reset();
        assert.deepEqual(link.stats(), { bytesUp: 0, bytesDown: 0, connections: 0, active: 0, cuts: 0, turns: 0 });
        const client = new ImapFlow({ host: '127.0.0.1', port: link.port, secure: false, auth: { user: ALICE, pass: 'alice-pass' }, logger: false });
        client.on('error', () => undefined);
        await client.connect();
        const lock = await client.getMailboxLock('INBOX');
        let fetched = 0;
        try {
            for await (const m of client.fetch('1:*', { source: true })) fetched += m.source?.length ?? 0;
        } finally {
            lock.release();
        }
        await client.logout();
        const after = link.stats();
        assert.ok(fetched > 0);
        assert.ok(after.bytesDown > 0 && after.bytesUp > 0);
        assert.equal(after.connections, 1);
    } finally {
        await link.close();
    }
});

test('link proxy: cuts a connection at exactly N bytes; per-connection rules; reset', async () => {
    await upstream.deliver(ALICE, makeMessage({ subject: 'big', body: 'y'.repeat(60_000) }));
    const link = await startLinkProxy({ targetPort: upstream.imapPort, cutAfterBytes: 700 });
    try {
        const cut = await rawImapSession(link.port, [`LOGIN ${ALICE} alice-pass`, 'SELECT INBOX', 'UID FETCH 1:* (BODY.PEEK[])', 'LOGOUT']);
        assert.ok(cut.closedEarly, 'client saw the connection close before finishing');
        // The client got exactly what the proxy let through; what it wrote after the cut point was dropped.
        const stats = link.stats();
        assert.equal(stats.bytesUp + stats.bytesDown, 700);
        assert.equal(stats.bytesDown, cut.received);
        assert.ok(stats.bytesUp <= cut.sent);
        assert.equal(stats.connections, 1);
        assert.equal(stats.cuts, 1);

        // imapflow sees a closed connection in the middle of a big FETCH.
        link.reset();
        link.setCutAfter(3000);
        const client = new ImapFlow({ host: '127.0.0.1', port: link.port, secure: false, auth: { user: ALICE, pass: 'alice-pass' }, logger: false, disableCompression: true });
        client.on('error', () => undefined);
        await client.connect();
        const closed = new Promise<void>(resolve => client.once('close', () => resolve()));
        await assert.rejects(
            (async () => {
                const lock = await client.getMailboxLock('INBOX');
                try {
                    for await (const _ of client.fetch('1:*', { source: true })) void _;
                } finally {
                    lock.release();
                }
            })()
        );
        await closed;
        assert.equal(link.stats().bytesUp + link.stats().bytesDown, 3000);

        // Per connection index: only the first connection after reset() is cut.
        link.reset();
        link.setCutAfter(i => (i === 0 ? 100 : null));
        const first = await rawImapSession(link.port, [`LOGIN ${ALICE} alice-pass`, 'LOGOUT']);
        assert.ok(first.closedEarly);
        assert.equal(link.stats().bytesDown, first.received);
        assert.equal(link.stats().bytesUp + link.stats().bytesDown, 100);
        const second = await rawImapSession(link.port, [`LOGIN ${ALICE} alice-pass`, 'LOGOUT']);
        assert.ok(!second.closedEarly);
        assert.match(second.text, /OK Logout completed/);
        assert.deepEqual(
            link.connectionStats().map(c => c.cut),
            [true, false]
        );

        // setCutAfter(null): no more cuts.
        link.setCutAfter(null);
        link.reset();
        const free = await rawImapSession(link.port, [`LOGIN ${ALICE} alice-pass`, 'SELECT INBOX', 'UID FETCH 1:* (BODY.PEEK[])', 'LOGOUT']);
        assert.ok(!free.closedEarly);
        assert.ok(free.received > 60_000);
    } finally {
        await link.close();
    }
});

test('link proxy: shaping slows 100 KB each way to about the configured rate, adds latency', async () => {
    const size = 100 * 1024;
    // First byte of a connection: 'P' ping → 'p'; 'D' download → 100 KB then FIN; 'U' upload → 'done' after 100 KB.
    const server = net.createServer(socket => {
        let mode = '';
        let received = 0;
        socket.on('error', () => undefined);
        socket.on('data', chunk => {
            if (!mode) {
                mode = String.fromCharCode(chunk[0]);
                chunk = chunk.subarray(1);
                if (mode === 'D') socket.end(Buffer.alloc(size, 0x62));
            }
            if (mode === 'P') socket.write('p');
            if (mode === 'U') {
                received += chunk.length;
                if (received >= size) socket.end('done');
            }
        });
    });
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
    const bandwidthBps = 800_000; // 100 KB ≈ 1.02 s each way
    const latencyMs = 150; // 300 ms RTT
    const link = await startLinkProxy({ targetPort: (server.address() as net.AddressInfo).port, bandwidthBps, latencyMs });
    const open = async () => {
        const socket = net.connect({ host: '127.0.0.1', port: link.port });
        await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
        return socket;
    };
    const readAll = (socket: net.Socket) =>
        new Promise<number>(resolve => {
            let n = 0;
            socket.on('data', chunk => (n += chunk.length));
            socket.on('end', () => resolve(n));
        });
    try {
        // Latency: one small round trip costs at least 2 × latencyMs.
        const ping = await open();
        let t0 = performance.now();
        ping.write('P');
        await new Promise(resolve => ping.once('data', resolve));
        const rtt = performance.now() - t0;
        ping.destroy();
        assert.ok(rtt >= 2 * latencyMs - 5 && rtt < 2 * latencyMs + 1000, `RTT ${rtt.toFixed(0)} ms`);

        // Download and upload 100 KB at once, on two connections (each direction is its own link).
        const [down, up] = await Promise.all([open(), open()]);
        t0 = performance.now();
        const timed = <T>(p: Promise<T>) => p.then(value => ({ value, seconds: (performance.now() - t0) / 1000 }));
        const downloaded = timed(readAll(down));
        const uploaded = timed(readAll(up));
        down.write('D');
        up.write('U');
        up.write(Buffer.alloc(size, 0x61));
        const [d, u] = await Promise.all([downloaded, uploaded]);
        const expected = (size * 8) / bandwidthBps;
        assert.equal(d.value, size);
        assert.equal(u.value, 4);
        for (const [what, seconds] of [
            ['download', d.seconds],
            ['upload', u.seconds]
        ] as const) {
            assert.ok(seconds >= 0.85 * expected, `${what} took ${seconds.toFixed(2)} s, expected ≈ ${expected.toFixed(2)} s`);
            assert.ok(seconds < expected + 3, `${what} not absurdly slow: ${seconds.toFixed(2)} s`);
        }
        const stats = link.stats();
        assert.equal(stats.bytesUp, 1 + 1 + 1 + size);
        assert.equal(stats.bytesDown, 1 + size + 4);
        assert.equal(stats.connections, 3);
    } finally {
        await link.close();
        server.close();
    }
});

test('link proxy: reset and blackhole cut modes, cutAll, setCutAfter on an open connection', async () => {
    const echo = net.createServer(socket => {
        socket.on('error', () => undefined);
        socket.pipe(socket);
    });
    await new Promise<void>(resolve => echo.listen(0, '127.0.0.1', resolve));
    const targetPort = (echo.address() as net.AddressInfo).port;
    const connect = async (port: number) => {
        const socket = net.connect({ host: '127.0.0.1', port });
        socket.on('error', () => undefined);
        await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
        return socket;
    };
    const outcome = (socket: net.Socket, waitMs: number) =>
        new Promise<string>(resolve => {
            const timer = setTimeout(() => resolve('still open'), waitMs);
            socket.once('error', (err: NodeJS.ErrnoException) => {
                clearTimeout(timer);
                resolve(err.code ?? 'error');
            });
            socket.once('close', () => {
                clearTimeout(timer);
                resolve('closed');
            });
        });
    const echoed = (socket: net.Socket, text: string) =>
        new Promise<string>(resolve => {
            let got = '';
            const onData = (chunk: Buffer) => {
                got += chunk.toString();
                if (got.length >= text.length) {
                    socket.off('data', onData);
                    resolve(got);
                }
            };
            socket.on('data', onData);
            socket.write(text);
        });
    try {
        // reset: the client gets an RST.
        const reset = await startLinkProxy({ targetPort, cutMode: 'reset', cutAfterBytes: 10 });
        const a = await connect(reset.port);
        const aResult = outcome(a, 3000);
        a.write('0123456789abcdef');
        assert.equal(await aResult, 'ECONNRESET');
        await reset.close();

        // blackhole: nothing more is forwarded, but the connection stays open (until cutAll() or close()).
        const hole = await startLinkProxy({ targetPort, cutMode: 'blackhole' });
        const b = await connect(hole.port);
        assert.equal(await echoed(b, 'hello'), 'hello');
        hole.setCutAfter(12); // applies to the open connection: 10 bytes so far, 2 to go
        let received = '';
        b.on('data', chunk => (received += chunk.toString()));
        b.write('abcdef');
        assert.equal(await outcome(b, 300), 'still open');
        assert.equal(received, '');
        assert.deepEqual({ up: hole.stats().bytesUp, down: hole.stats().bytesDown, cuts: hole.stats().cuts }, { up: 7, down: 5, cuts: 1 });
        await hole.close();
        assert.equal(await outcome(b, 2000), 'closed');

        // cutAll(): a link outage for every open connection.
        const outage = await startLinkProxy({ targetPort });
        const c1 = await connect(outage.port);
        const c2 = await connect(outage.port);
        assert.equal(await echoed(c1, 'one'), 'one');
        assert.equal(await echoed(c2, 'two'), 'two');
        const closed = Promise.all([outcome(c1, 2000), outcome(c2, 2000)]);
        outage.cutAll();
        assert.deepEqual(await closed, ['closed', 'closed']);
        assert.equal(outage.stats().cuts, 2);
        const c3 = await connect(outage.port);
        assert.equal(await echoed(c3, 'three'), 'three', 'new connections work after the outage');
        c3.destroy();
        await outage.close();

        // A limit per direction: the download is cut after 10 bytes down, however many went up
        // (a total of 10 would have cut at the first echo); the upload after 8 bytes up.
        const perDirection = await startLinkProxy({ targetPort, cutAfterBytes: index => (index === 0 ? { down: 10 } : { up: 8 }) });
        const d = await connect(perDirection.port);
        let echoedBack = '';
        d.on('data', chunk => (echoedBack += chunk.toString()));
        const dClosed = outcome(d, 2000);
        d.write('hello');
        d.write('0123456789');
        assert.equal(await dClosed, 'closed');
        assert.equal(echoedBack, 'hello01234');
        const e = await connect(perDirection.port);
        assert.equal(await echoed(e, 'hello'), 'hello');
        const eClosed = outcome(e, 2000);
        e.write('abcdef');
        assert.equal(await eClosed, 'closed');
        assert.deepEqual(
            perDirection.connectionStats().map(connection => ({ up: connection.bytesUp, down: connection.bytesDown, cutIn: connection.cutIn })),
            [
                { up: 15, down: 10, cutIn: 'down' },
                { up: 8, down: 5, cutIn: 'up' }
            ]
        );
        await perDirection.close();
    } finally {
        echo.close();
    }
});

test('TLS option: STARTTLS and implicit TLS on IMAP and submission with the self-signed certificate', async () => {
    const tlsUpstream = await startUpstream({ tls: true });
    try {
        assert.ok(tlsUpstream.certPem && tlsUpstream.imapsPort && tlsUpstream.submissionsPort);
        for (const [port, secure] of [
            [tlsUpstream.imapPort, false],
            [tlsUpstream.imapsPort, true]
        ] as const) {
            const client = new ImapFlow({ host: '127.0.0.1', port, secure, auth: { user: ALICE, pass: 'alice-pass' }, logger: false, tls: { ca: [tlsUpstream.certPem] } });
            client.on('error', () => undefined);
            await client.connect();
            assert.ok((client as unknown as { socket: { encrypted?: boolean } }).socket.encrypted, `IMAP on ${port} encrypted`);
            await client.logout();
        }
        for (const [port, secure] of [
            [tlsUpstream.submissionPort, false],
            [tlsUpstream.submissionsPort, true]
        ] as const) {
            const transport = nodemailer.createTransport({ host: '127.0.0.1', port, secure, requireTLS: !secure, tls: { ca: [tlsUpstream.certPem] }, auth: { user: ALICE, pass: 'alice-pass' } });
            await transport.sendMail({ from: ALICE, to: BOB, subject: `tls ${port}`, text: 'x' });
            transport.close();
        }
        const messages = await tlsUpstream.waitForMessages(BOB, 'INBOX', 2);
        for (const m of messages) assert.match(m.headers, /with ESMTPSA/, 'submitted over TLS with AUTH');
    } finally {
        await tlsUpstream.stop();
    }
    await tlsUpstream.stop(); // safe twice
});

test('OAuth2: XOAUTH2 and OAUTHBEARER through an introspection endpoint (IMAP and submission)', async () => {
    const oauthUpstream = await startUpstream({ oauth2: true });
    try {
        const oauth = oauthUpstream.oauth!;
        // The uplink's way: exchange the refresh token at the token URL.
        const response = await fetch(oauth.tokenUrl, {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: oauth.refreshTokenFor(ALICE), client_id: oauth.clientId })
        });
        const { access_token: accessToken } = (await response.json()) as { access_token: string };
        assert.ok(accessToken);

        // IMAP: imapflow prefers AUTHENTICATE OAUTHBEARER.
        const client = new ImapFlow({ host: '127.0.0.1', port: oauthUpstream.imapPort, secure: false, auth: { user: ALICE, accessToken }, logger: false });
        client.on('error', () => undefined);
        await client.connect();
        await client.mailboxOpen('INBOX');
        await client.logout();

        // IMAP: AUTHENTICATE XOAUTH2 by hand.
        const xoauth2 = Buffer.from(`user=${ALICE}\x01auth=Bearer ${accessToken}\x01\x01`).toString('base64');
        const raw = await rawImapSession(oauthUpstream.imapPort, ['CAPABILITY', `AUTHENTICATE XOAUTH2 ${xoauth2}`, 'LOGOUT']);
        assert.match(raw.text, /AUTH=XOAUTH2/);
        assert.match(raw.text, /AUTH=OAUTHBEARER/);
        assert.match(raw.text, /1x OK .*Logged in/);

        // Submission: nodemailer AUTH XOAUTH2 through Postfix → Dovecot SASL → introspection.
        const transport = nodemailer.createTransport({ host: '127.0.0.1', port: oauthUpstream.submissionPort, secure: false, ignoreTLS: true, auth: { type: 'OAuth2', user: ALICE, accessToken } });
        await transport.sendMail({ from: ALICE, to: 'friend@elsewhere.example', subject: 'oauth', text: 'sent with XOAUTH2', messageId: '<oauth-1@upstream.test>' });
        transport.close();
        const copies = await oauthUpstream.waitForMessages(oauthUpstream.catchall.address, 'INBOX', 1);
        assert.equal(headerValue(copies[0].headers, 'Delivered-To'), 'friend@elsewhere.example');

        // Passwords still work; revoked or foreign tokens do not.
        const byPassword = await oauthUpstream.connect(BOB);
        await byPassword.logout();
        oauth.revokeAccessTokens();
        const revoked = new ImapFlow({ host: '127.0.0.1', port: oauthUpstream.imapPort, secure: false, auth: { user: ALICE, accessToken }, logger: false });
        revoked.on('error', () => undefined);
        await assert.rejects(revoked.connect());
        const bobToken = oauth.issueAccessToken(BOB);
        const foreign = new ImapFlow({ host: '127.0.0.1', port: oauthUpstream.imapPort, secure: false, auth: { user: ALICE, accessToken: bobToken }, logger: false });
        foreign.on('error', () => undefined);
        await assert.rejects(foreign.connect());
        // The passwd-file passdb is limited to PLAIN/LOGIN, so a password is no access token.
        const passwordAsToken = new ImapFlow({ host: '127.0.0.1', port: oauthUpstream.imapPort, secure: false, auth: { user: ALICE, accessToken: 'alice-pass' }, logger: false });
        passwordAsToken.on('error', () => undefined);
        await assert.rejects(passwordAsToken.connect());
        assert.ok(oauth.stats().introspections >= 4);
        assert.equal(oauth.stats().tokenRequests, 1);
    } finally {
        await oauthUpstream.stop();
    }
});

test("'courier' flavour: INBOX. namespace with '.', no CONDSTORE/QRESYNC/COMPRESS/SPECIAL-USE/MOVE, no UIDNEXT in SELECT, literals untouched", async () => {
    const courier = await startUpstream({ flavour: 'courier' });
    try {
        // A message whose body holds the very line the front drops from what the server says.
        const raw = makeMessage({ to: ALICE, subject: 'literal', messageId: '<courier-1@example.org>', body: '* OK [UIDNEXT 99] Predicted next UID\r\nmore' });
        await courier.deliver(ALICE, raw);
        await courier.createFolder(ALICE, 'INBOX.Work.Projects');
        const session = await rawImapSession(courier.imapPort, [
            `LOGIN ${ALICE} alice-pass`,
            'CAPABILITY',
            'NAMESPACE',
            'LIST "" "*"',
            'STATUS INBOX (UIDNEXT MESSAGES)',
            'SELECT INBOX',
            'FETCH 1 BODY.PEEK[]',
            'LOGOUT'
        ]);
        const capability = /^\* CAPABILITY (.*)$/m.exec(session.text)![1].split(' ');
        for (const absent of ['CONDSTORE', 'QRESYNC', 'COMPRESS=DEFLATE', 'SPECIAL-USE', 'MOVE', 'LIST-EXTENDED', 'LIST-STATUS']) assert.ok(!capability.includes(absent), `no ${absent}`);
        assert.match(session.text, /^\* NAMESPACE \(\("INBOX\." "\."\)\) NIL NIL\r$/m);
        assert.match(session.text, /^\* LIST \([^)]*\) "\." INBOX\.Work\.Projects\r$/m);
        assert.doesNotMatch(session.text, /^\* LIST \([^)]*\\(Sent|Trash|Drafts|Junk)/m, 'no special-use attributes');
        assert.match(session.text, /^\* STATUS INBOX \(MESSAGES 1 UIDNEXT 2\)\r$/m, 'STATUS still tells UIDNEXT');
        // What the server said between STATUS's tagged OK (4x) and SELECT's (5x).
        const select = session.text.slice(session.text.indexOf('\r\n4x '), session.text.indexOf('\r\n5x '));
        assert.match(select, /\[UIDVALIDITY \d+\]/);
        assert.doesNotMatch(select, /UIDNEXT/, 'SELECT says no UIDNEXT');
        assert.ok(session.text.includes('* OK [UIDNEXT 99] Predicted next UID\r\nmore'), 'the same line inside a literal is passed through');
    } finally {
        await courier.stop();
    }
});
