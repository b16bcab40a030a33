/**
 * The IMAP command parser and sequence sets, end to end over raw sessions: what RFC 3501's
 * grammar allows must be accepted (and answered as Dovecot answers it), what it does not allow
 * must get BAD. Each case here failed against imap-core 1.51.1 as published; the fixes are the
 * patches/@zone-eu+wildduck+1.51.1+01x+*.patch files.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import zlib from 'node:zlib';
import { startGateway, makeMessage, type Gateway } from './support/gateway';
import { RawImapConnection, appendRaw } from './support/raw-imap-connection';

const USER = 'alice';
const PASS = 'alice-secret-pw';
/** Messages in Sets; the second is expunged, so sequence numbers and UIDs differ. */
const SET_MESSAGES = 6;

let gateway: Gateway;
/** UIDs of the messages left in Sets, in sequence order. */
let setUids: number[] = [];

/** Sequence numbers (or UIDs) named by `* SEARCH` in the untagged replies. */
function searchResult(untagged: { text: string }[]): number[] {
    const line = untagged.find(r => /^\* SEARCH\b/.test(r.text));
    assert.ok(line, 'an untagged SEARCH');
    return line.text
        .replace(/^\* SEARCH\s*/, '')
        .split(/\s+/)
        .filter(Boolean)
        .map(Number);
}

/** `* n FETCH (UID u)` replies as [n, u] pairs, in the order received. */
function fetchedUids(untagged: { text: string }[]): [number, number][] {
    return untagged.flatMap(r => {
        const match = /^\* (\d+) FETCH \(UID (\d+)\)/.exec(r.text);
        return match ? [[Number(match[1]), Number(match[2])] as [number, number]] : [];
    });
}

before(async () => {
    gateway = await startGateway();
    const session = await RawImapConnection.session(gateway.imapPort, USER, PASS);
    try {
        assert.match((await session.command('CREATE Sets')).tagged, /^\S+ OK/);
        for (let n = 1; n <= SET_MESSAGES; n++) {
            assert.match(await appendRaw(session, 'Sets', makeMessage({ subject: `set ${n}` })), /^\S+ OK/);
        }
        assert.match((await session.command('SELECT Sets')).tagged, /^\S+ OK/);
        assert.match((await session.command('STORE 2 +FLAGS.SILENT (\\Deleted)')).tagged, /^\S+ OK/);
        assert.match((await session.command('EXPUNGE')).tagged, /^\S+ OK/);
        setUids = fetchedUids((await session.command('FETCH 1:* (UID)')).untagged).map(([, uid]) => uid);
        assert.equal(setUids.length, SET_MESSAGES - 1);
    } finally {
        session.destroy();
    }
});

after(async () => {
    await gateway?.stop();
});

test('sequence sets with "*" anywhere in them (RFC 3501 9, sequence-set)', async () => {
    const session = await RawImapConnection.session(gateway.imapPort, USER, PASS, 'Sets');
    try {
        const last = setUids.length;
        const uidOf = (seq: number) => setUids[seq - 1];
        const fetches: [string, number[]][] = [
            ['FETCH 1,* (UID)', [1, last]],
            ['FETCH *,1 (UID)', [1, last]],
            ['FETCH 2:3,* (UID)', [2, 3, last]],
            ['FETCH *:4 (UID)', [4, last]],
            [`UID FETCH ${uidOf(1)},* (UID)`, [1, last]]
        ];
        for (const [command, expected] of fetches) {
            const reply = await session.command(command);
            assert.match(reply.tagged, /^\S+ OK/, command);
            const got = fetchedUids(reply.untagged).sort((a, b) => a[0] - b[0]);
            assert.deepEqual(
                got,
                expected.map(seq => [seq, uidOf(seq)]),
                command
            );
        }

        // The same sets where SEARCH takes them, at the end of the line and inside parentheses.
        const searches: [string, number[]][] = [
            ['SEARCH *', [last]],
            ['SEARCH *:3', [3, 4, 5]],
            ['SEARCH 1,4,*', [1, 4, 5]],
            ['SEARCH *,2', [2, 5]],
            ['SEARCH (1:2 *)', []],
            ['SEARCH (1:2) (2,*)', [2]],
            ['SEARCH (*)', [last]],
            [`SEARCH UID ${uidOf(4)},*`, [4, last]],
            [`SEARCH (UID ${uidOf(3)}:*) 1:4`, [3, 4]]
        ];
        for (const [command, expected] of searches) {
            const reply = await session.command(command);
            assert.match(reply.tagged, /^\S+ OK/, command);
            assert.deepEqual(searchResult(reply.untagged), expected, command);
        }

        // Still BAD: sets the grammar does not allow.
        for (const command of ['FETCH 1: (UID)', 'FETCH 1,,2 (UID)', 'FETCH ** (UID)', 'FETCH *1 (UID)', 'SEARCH (1:)', 'SEARCH 2:*,']) {
            assert.match((await session.command(command)).tagged, /^\S+ BAD/, command);
        }
    } finally {
        session.destroy();
    }
});

/** Mailbox names in untagged `kind` replies (LIST or LSUB), with their flags. */
function listed(untagged: { text: string }[], kind: 'LIST' | 'LSUB'): Map<string, string> {
    const result = new Map<string, string>();
    for (const { text } of untagged) {
        const match = new RegExp(`^\\* ${kind} \\(([^)]*)\\) "/" (?:"([^"]*)"|(\\S+))$`).exec(text);
        if (match) result.set(match[2] ?? match[3], match[1]);
    }
    return result;
}

test('LIST and LSUB take list-wildcards anywhere in an atom (RFC 3501 9, list-mailbox)', async () => {
    const session = await RawImapConnection.session(gateway.imapPort, USER, PASS);
    try {
        for (const name of ['Proj/a', 'Proj/b/c', 'Proj/b/d']) assert.match((await session.command(`CREATE ${name}`)).tagged, /^\S+ OK/);
        const lists: [string, string[]][] = [
            ['LIST "" Proj/%', ['Proj/a', 'Proj/b']],
            ['LIST "" Proj/*', ['Proj/a', 'Proj/b', 'Proj/b/c', 'Proj/b/d']],
            ['LIST "" *b/%', ['Proj/b/c', 'Proj/b/d']],
            ['LIST "" P%j/b', ['Proj/b']],
            ['LIST Proj/ b/%', ['Proj/b/c', 'Proj/b/d']],
            ['LIST "" %/%/c', ['Proj/b/c']],
            ['LIST "" 1,%', []]
        ];
        for (const [command, expected] of lists) {
            const reply = await session.command(command);
            assert.match(reply.tagged, /^\S+ OK/, command);
            assert.deepEqual([...listed(reply.untagged, 'LIST').keys()].sort(), expected, command);
        }
        // Every ATOM-CHAR, resp-special and wildcard in one pattern (imaptest's atoms file).
        assert.match((await session.command('LIST "" !#$&\'+,-.0123456789:;<=>?@^_`|[}%*')).tagged, /^\S+ OK/);
        // Elsewhere a wildcard is still not an atom character.
        assert.match((await session.command('SELECT Proj/%')).tagged, /^\S+ BAD/);
    } finally {
        session.destroy();
    }
});

test('CREATE does not subscribe; LSUB with % answers an unsubscribed parent as \\Noselect (RFC 3501 6.3.9)', async () => {
    const session = await RawImapConnection.session(gateway.imapPort, USER, PASS);
    try {
        for (const name of ['Subs/test', 'Subs/test2/test', 'Subs/test3/test3']) {
            assert.match((await session.command(`CREATE ${name}`)).tagged, /^\S+ OK/);
        }
        assert.deepEqual([...listed((await session.command('LSUB "" Subs/*')).untagged, 'LSUB').keys()], [], 'nothing subscribed by CREATE');
        for (const name of ['Subs/test', 'Subs/test2/test', 'Subs/test3/test3']) {
            assert.match((await session.command(`SUBSCRIBE ${name}`)).tagged, /^\S+ OK/);
        }
        const lsub = listed((await session.command('LSUB "" Subs/%')).untagged, 'LSUB');
        assert.deepEqual([...lsub.keys()].sort(), ['Subs/test', 'Subs/test2', 'Subs/test3']);
        assert.doesNotMatch(lsub.get('Subs/test')!, /\\Noselect/i);
        assert.match(lsub.get('Subs/test2')!, /\\Noselect/i, 'Subs/test2 exists but is not subscribed');
        assert.match(lsub.get('Subs/test3')!, /\\Noselect/i);
        const top = listed((await session.command('LSUB "" %')).untagged, 'LSUB');
        assert.match(top.get('Subs') ?? '', /\\Noselect/i, 'LSUB "" % names the top level');
        // "*" lists what is subscribed, and nothing else.
        const all = listed((await session.command('LSUB "" Subs/*')).untagged, 'LSUB');
        assert.deepEqual([...all.keys()].sort(), ['Subs/test', 'Subs/test2/test', 'Subs/test3/test3']);
        // Once subscribed, the parent is an ordinary entry.
        assert.match((await session.command('SUBSCRIBE Subs/test2')).tagged, /^\S+ OK/);
        const after = listed((await session.command('LSUB "" Subs/%')).untagged, 'LSUB');
        assert.doesNotMatch(after.get('Subs/test2')!, /\\Noselect/i);
    } finally {
        session.destroy();
    }
});

test('NIL in a flag list is the keyword NIL, as Dovecot has it (RFC 3501 9, flag-keyword = atom)', async () => {
    const session = await RawImapConnection.session(gateway.imapPort, USER, PASS);
    try {
        assert.match((await session.command('CREATE NilBox')).tagged, /^\S+ OK/);
        assert.match(await appendRaw(session, 'NilBox', makeMessage({ subject: 'nil' })), /^\S+ OK/);
        // APPEND with (NIL) used to end the process (a TypeError reading null.value).
        assert.match(await appendRaw(session, 'NilBox', makeMessage({ subject: 'nil 2' }), 'NIL \\Seen'), /^\S+ OK/);
        assert.match((await session.command('SELECT NilBox')).tagged, /^\S+ OK/);
        const flagsOf = async (seq: number) => {
            const reply = await session.command(`FETCH ${seq} (FLAGS)`);
            assert.match(reply.tagged, /^\S+ OK/);
            const match = reply.untagged.map(r => /^\* \d+ FETCH \(FLAGS \(([^)]*)\)\)/.exec(r.text)).find(Boolean);
            assert.ok(match, `FLAGS of ${seq}`);
            // \Recent is this session's, not stored (RFC 3501 2.3.2): only the stored flags count here.
            return match[1]
                .split(' ')
                .filter(flag => flag && flag !== '\\Recent')
                .sort();
        };
        assert.deepEqual(await flagsOf(2), ['NIL', '\\Seen']);
        assert.match((await session.command('STORE 1 +FLAGS NIL')).tagged, /^\S+ OK/);
        assert.deepEqual(await flagsOf(1), ['NIL']);
        assert.match((await session.command('UID STORE 1:* -FLAGS (nil)')).tagged, /^\S+ OK/);
        assert.deepEqual(await flagsOf(1), []);
        assert.deepEqual(await flagsOf(2), ['\\Seen']);
        assert.match((await session.command('STORE 1 FLAGS (NIL \\Flagged)')).tagged, /^\S+ OK/);
        assert.deepEqual(await flagsOf(1), ['NIL', '\\Flagged']);
    } finally {
        session.destroy();
    }
});

test('sequence number or UID 0 is BAD, never read as message 1 (RFC 3501 9, nz-number)', async () => {
    const session = await RawImapConnection.session(gateway.imapPort, USER, PASS, 'Sets');
    try {
        for (const command of [
            'FETCH 0 (UID)',
            'FETCH 1:0 (UID)',
            'FETCH 0:* (UID)',
            'UID FETCH 0 (UID)',
            'FETCH 1,00 (UID)',
            'SEARCH 0',
            'UID STORE 0 +FLAGS (\\Flagged)',
            'UID EXPUNGE 0',
            'COPY 0 INBOX'
        ]) {
            const reply = await session.command(command);
            assert.match(reply.tagged, /^\S+ BAD/, command);
            assert.ok(!reply.untagged.some(r => /^\* \d+ (FETCH|EXPUNGE)/.test(r.text)), `${command}: nothing done`);
        }
        // Leading zeros on a non-zero number are tolerated, as Dovecot does.
        assert.deepEqual(fetchedUids((await session.command('FETCH 01 (UID)')).untagged), [[1, setUids[0]]]);
        assert.equal(fetchedUids((await session.command('FETCH 1:* (UID)')).untagged).length, setUids.length, 'nothing expunged');
    } finally {
        session.destroy();
    }
});

test('LOGOUT after COMPRESS DEFLATE: the BYE and the tagged OK arrive before the close (RFC 4978)', async () => {
    const socket = net.connect({ host: '127.0.0.1', port: gateway.imapPort });
    socket.on('error', () => undefined);
    const inflate = zlib.createInflateRaw();
    const deflate = zlib.createDeflateRaw();
    let plain = '';
    let compressed = false;
    let text = '';
    const closed = new Promise<void>(resolve => socket.once('close', () => resolve()));
    const waitFor = (pattern: RegExp, what: string) =>
        new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}: ${JSON.stringify(text.slice(-300))}`)), 10_000);
            const check = () => {
                if (pattern.test(text)) {
                    clearTimeout(timer);
                    resolve();
                } else setTimeout(check, 5);
            };
            check();
        });
    socket.on('data', chunk => {
        if (compressed) inflate.write(chunk);
        else text += plain = chunk.toString('latin1');
    });
    inflate.on('data', chunk => (text += chunk.toString('latin1')));
    try {
        await waitFor(/^\* OK/, 'greeting');
        socket.write(`A1 LOGIN ${USER} ${PASS}\r\n`);
        await waitFor(/A1 OK/, 'login');
        socket.write('A2 COMPRESS DEFLATE\r\n');
        await waitFor(/A2 OK/, 'COMPRESS');
        assert.ok(plain.length > 0);
        compressed = true;
        deflate.on('data', chunk => socket.write(chunk));
        deflate.write('A3 NOOP\r\n');
        deflate.flush();
        await waitFor(/A3 OK/, 'NOOP over COMPRESS');
        deflate.write('A4 LOGOUT\r\n');
        deflate.flush();
        await closed;
        // Whatever zlib still held when the server closed is delivered by now.
        await new Promise<void>(resolve => inflate.flush(() => setImmediate(resolve)));
        assert.match(text, /\* BYE[^\r]*\r\nA4 OK/, 'BYE and tagged OK before the close');
    } finally {
        socket.destroy();
    }
});

test('LITERAL+: non-synchronizing literals {n+} wherever a literal is allowed (RFC 7888)', async () => {
    const session = await RawImapConnection.connect(gateway.imapPort);
    try {
        const capability = await session.command('CAPABILITY');
        assert.ok(
            capability.untagged.some(r => /^\* CAPABILITY .*\bLITERAL\+/.test(r.text)),
            'LITERAL+ offered before login'
        );
        // Several non-synchronizing literals in one command, sent in one write: no "+" is awaited or sent.
        const from = session.responses.length;
        const message = makeMessage({ subject: 'literal plus' });
        session.write(`L1 LOGIN {${USER.length}+}\r\n${USER} {${PASS.length}+}\r\n${PASS}\r\n`);
        session.write('L2 CREATE {7+}\r\nLitPlus\r\n');
        session.write(Buffer.concat([Buffer.from(`L3 APPEND {7+}\r\nLitPlus (\\Flagged) {${message.length}+}\r\n`), message, Buffer.from('\r\n')]));
        session.write('L4 SELECT {7+}\r\nLitPlus\r\n');
        session.write('L5 SEARCH SUBJECT {12+}\r\nliteral plus HEADER {10+}\r\nMessage-ID {0+}\r\n\r\n');
        session.write('L6 FETCH 1 (FLAGS BODY.PEEK[HEADER.FIELDS ({7+}\r\nSubject)])\r\n');
        const done = await session.waitFor(r => r.text.startsWith('L6 '), 'the last of the pipelined commands', undefined, from);
        const replies = session.responses.slice(from);
        assert.ok(!replies.some(r => r.text.startsWith('+')), 'no continuation request for {n+}');
        for (const tag of ['L1', 'L2', 'L3', 'L4', 'L5']) {
            assert.match(replies.find(r => r.text.startsWith(`${tag} `))?.text ?? '', /^\S+ OK/, tag);
        }
        assert.match(done.text, /^L6 OK/);
        assert.ok(
            replies.some(r => r.text === '* SEARCH 1'),
            'SEARCH with literal arguments'
        );
        const fetch = replies.find(r => /^\* 1 FETCH/.test(r.text));
        assert.ok(fetch && /\\Flagged/.test(fetch.text), 'APPEND flags');
        assert.match(fetch.literals[fetch.literals.length - 1].toString(), /^Subject: literal plus\r\n/);
        // The stored message is byte for byte what was sent.
        const body = await session.command('FETCH 1 BODY.PEEK[]');
        assert.ok(body.untagged.find(r => /^\* 1 FETCH/.test(r.text))?.literals[0].equals(message), 'APPEND {n+} stored the bytes');
        // Synchronizing literals still get their "+".
        const sync = session.responses.length;
        session.write('S1 STATUS {7}\r\n');
        await session.waitFor(r => r.text.startsWith('+'), 'continuation for {7}', undefined, sync);
        session.write('LitPlus (MESSAGES)\r\n');
        assert.match((await session.waitFor(r => r.text.startsWith('S1 '), 'STATUS', undefined, sync)).text, /^S1 OK/);
    } finally {
        session.destroy();
    }
});

test('LITERAL+: a non-synchronizing literal over the limit gets BAD [TOOBIG] and the connection closes, its bytes never read as commands (RFC 7888 4)', async () => {
    for (const [what, head, size] of [
        ['APPEND over the message limit', 'APPEND LitPlus', 30_000_000],
        ['SEARCH literal over 1 KiB', 'SEARCH TEXT', 3000]
    ] as const) {
        const session = await RawImapConnection.session(gateway.imapPort, USER, PASS, 'LitPlus');
        const witness = await RawImapConnection.session(gateway.imapPort, USER, PASS);
        try {
            const from = session.responses.length;
            // The "literal" is made of commands: none of them may run.
            const payload = Buffer.from('X1 DELETE LitPlus\r\n'.repeat(Math.ceil(Math.min(size, 64 * 1024) / 19)));
            session.write(Buffer.concat([Buffer.from(`B1 ${head} {${size}+}\r\n`), payload]));
            const reply = await session.waitFor(r => /^(B1|X1) /.test(r.text), `reply to the oversized ${what}`, undefined, from);
            assert.match(reply.text, /^B1 BAD \[TOOBIG\]/, what);
            await session.waitClosed();
            assert.ok(!session.responses.some(r => r.text.startsWith('X1 ')), `${what}: literal bytes not read as commands`);
            const status = await witness.command('STATUS LitPlus (MESSAGES)');
            assert.match(status.tagged, /^\S+ OK/, `${what}: the mailbox is still there`);
        } finally {
            session.destroy();
            witness.destroy();
        }
    }
});

test('a zero-length literal {0} does not make the next literal end early (imap-stream)', async () => {
    const session = await RawImapConnection.session(gateway.imapPort, USER, PASS);
    try {
        assert.match((await session.command('CREATE ZeroLit')).tagged, /^\S+ OK/);
        // Synchronizing: {0}, then a literal with CRLFs in it, sent after its "+".
        let from = session.responses.length;
        session.write('Z1 STATUS ZeroLit (MESSAGES) \r\n');
        await session.waitFor(r => r.text.startsWith('Z1 '), 'Z1', undefined, from);
        from = session.responses.length;
        session.write('Z2 LIST {0}\r\n');
        await session.waitFor(r => r.text.startsWith('+'), 'continuation for {0}', undefined, from);
        session.write(' ""\r\n');
        await session.waitFor(r => r.text.startsWith('Z2 OK'), 'Z2', undefined, from);
        const message = makeMessage({ subject: 'after a zero-length literal', body: 'line one\r\nline two\r\n' });
        assert.match(await appendRaw(session, 'ZeroLit', message), /^\S+ OK/, 'APPEND after {0}');
        // Non-synchronizing, pipelined in one write.
        from = session.responses.length;
        session.write(Buffer.concat([Buffer.from(`Z3 LIST {0+}\r\n ""\r\nZ4 APPEND ZeroLit {${message.length}+}\r\n`), message, Buffer.from('\r\nZ5 NOOP\r\n')]));
        await session.waitFor(r => r.text.startsWith('Z5 '), 'Z5', undefined, from);
        for (const tag of ['Z3', 'Z4', 'Z5']) {
            assert.match(session.responses.slice(from).find(r => r.text.startsWith(`${tag} `))?.text ?? '', /^\S+ OK/, tag);
        }
        const status = await session.command('STATUS ZeroLit (MESSAGES)');
        assert.ok(
            status.untagged.some(r => /MESSAGES 2/.test(r.text)),
            'both APPENDs stored'
        );
    } finally {
        session.destroy();
    }
});
