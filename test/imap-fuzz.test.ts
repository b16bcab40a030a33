/**
 * Protocol fuzzer: many concurrent raw sessions send random and mutated IMAP commands (sequence
 * sets, nesting, literals, charsets, partials, every command in every state, garbage bytes)
 * while a watcher session keeps doing FETCH and NOOP. The daemon must answer everything (or
 * close that one connection), keep answering the watcher, accept a fresh login at the end and
 * leave a store that passes `PRAGMA integrity_check`.
 *
 * Seeded: the seed is printed; rerun one with FUZZ_SEED=<n>. FUZZ_COMMANDS sets the total.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, makeMessage, type Gateway } from './support/gateway';
import { RawImapConnection, appendRaw } from './support/raw-imap-connection';
import { Rng, generateCommand, generateGarbage, type FuzzCommand, type SessionState } from './support/fuzz-commands';

const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const TOTAL_COMMANDS = Number(process.env.FUZZ_COMMANDS ?? 10_000);
const WORKERS = 20;
const RUN_LIMIT_MS = 60_000;
/** Longest a single command may wait for its answer: the server must never leave one hanging. */
const REPLY_TIMEOUT_MS = 10_000;
/** Longest the watcher may wait for any one answer while the fuzzers run. */
const WATCHER_LIMIT_MS = 3_000;

const FUZZ_USER = 'alice';
const FUZZ_PASS = 'alice-secret-pw';
const WATCH_USER = 'bob';
const WATCH_PASS = 'bob-secret-pw';

let gateway: Gateway;

before(async () => {
    console.log(`imap-fuzz: seed ${SEED} (rerun with FUZZ_SEED=${SEED})`);
    // 20 concurrent sessions of one user from one address: over the default limit of 10 (which has
    // its own test in imap-bounds), so the limit is raised here; the fuzzer is about what they send.
    gateway = await startGateway({ imapExtraYaml: '  maxConnectionsPerUserAddress: 100' });
    const setup = await RawImapConnection.session(gateway.imapPort, FUZZ_USER, FUZZ_PASS);
    for (let n = 1; n <= 6; n++) {
        await appendRaw(setup, n % 2 ? 'INBOX' : 'Archive', makeMessage({ subject: `fuzz ${n}`, body: `Body ${n}\r\n`.repeat(n * 3) }));
    }
    const multipart = Buffer.from(
        [
            'From: a@example.org',
            'To: b@example.org',
            'Subject: =?UTF-8?B?w6TDtsO8?=',
            'MIME-Version: 1.0',
            'Content-Type: multipart/mixed; boundary="b1"',
            '',
            '--b1',
            'Content-Type: text/plain; charset=utf-8',
            '',
            'hello',
            '--b1',
            'Content-Type: message/rfc822',
            '',
            'Subject: inner',
            'Content-Type: multipart/alternative; boundary="b2"',
            '',
            '--b2',
            'Content-Type: text/plain',
            '',
            'inner text',
            '--b2--',
            '--b1--',
            ''
        ].join('\r\n')
    );
    await appendRaw(setup, 'INBOX', multipart);
    setup.destroy();
    const watch = await RawImapConnection.session(gateway.imapPort, WATCH_USER, WATCH_PASS);
    for (let n = 1; n <= 3; n++) await appendRaw(watch, 'INBOX', makeMessage({ subject: `watched ${n}` }));
    watch.destroy();
});

after(async () => {
    await gateway?.stop();
});

interface Tally {
    commands: number;
    answered: number;
    /** The server closed the connection (LOGOUT, BYE after too many errors, ...). */
    closedByServer: number;
    sessions: number;
    problems: string[];
}

/**
 * Sends one command, feeding its literals when the server asks for them, and waits for the
 * tagged answer. Returns 'answered', 'closed' (the server hung up) or 'abandoned' (we hung up
 * on purpose, e.g. after COMPRESS or STARTTLS succeeded).
 */
async function send(connection: RawImapConnection, command: FuzzCommand, rng: Rng): Promise<'answered' | 'closed' | 'abandoned'> {
    const tag = connection.nextTag();
    let from = connection.responses.length;
    const parts = command.parts;
    let index = 0;
    const writePart = (prefix: string): void => {
        const part = parts[index++];
        connection.write(Buffer.from(`${prefix}${typeof part === 'string' ? part : part.head}\r\n`, 'latin1'));
    };
    writePart(`${tag} `);
    for (;;) {
        let reply;
        try {
            // An untagged BAD answers a line the server could not read a tag and command from.
            reply = await connection.waitFor(r => r.text.startsWith(`${tag} `) || r.text.startsWith('+') || r.text.startsWith('* BAD'), `reply to ${tag} ${command.name}`, REPLY_TIMEOUT_MS, from);
        } catch (err) {
            if (connection.closed) return 'closed';
            throw new Error(`${(err as Error).message}\ncommand: ${command.describe()}`, { cause: err });
        }
        from = connection.responses.indexOf(reply) + 1;
        if (reply.text.startsWith(`${tag} `) || reply.text.startsWith('* BAD')) {
            // After COMPRESS or STARTTLS (however mutated) the stream changes: hang up.
            if (/^\S+ OK/.test(reply.text) && (command.upgrades || /DEFLATE active|TLS/i.test(reply.text))) return 'abandoned';
            return 'answered';
        }
        // A continuation request: the data the server asked for.
        const previous = parts[index - 1];
        if (previous && typeof previous !== 'string') {
            // The server accepted an announcement we never meant to honour (an oversize literal): hang up.
            if (!previous.literal.data) return 'abandoned';
            const next = parts[index++];
            const rest = next === undefined ? '\r\n' : `${typeof next === 'string' ? next : next.head}\r\n`;
            connection.write(Buffer.concat([previous.literal.data, Buffer.from(rest, 'latin1')]));
        } else if (command.name === 'IDLE') {
            // While idling, the server must cope with whatever comes before DONE.
            if (rng.chance(0.3)) connection.write(generateGarbage(rng, 80));
            connection.write('DONE\r\n');
        } else if (command.name.startsWith('AUTHENTICATE')) {
            connection.write(rng.chance(0.5) ? '*\r\n' : `${rng.pick(['!!!!', Buffer.from('\0alice\0alice-secret-pw').toString('base64')])}\r\n`);
        } else {
            return 'abandoned';
        }
    }
}

/** One fuzzing session: connect, reach a random state, then send a burst of random commands. */
async function fuzzSession(rng: Rng, tally: Tally, budget: () => boolean): Promise<void> {
    const connection = await RawImapConnection.connect(gateway.imapPort);
    tally.sessions++;
    try {
        let state: SessionState = 'not-authenticated';
        const target = rng.pick<SessionState>(['not-authenticated', 'authenticated', 'selected', 'selected', 'selected']);
        if (target !== 'not-authenticated') {
            const login = await connection.command(`LOGIN ${FUZZ_USER} ${FUZZ_PASS}`, REPLY_TIMEOUT_MS);
            assert.match(login.tagged, /^\S+ OK/);
            state = 'authenticated';
            if (target === 'selected') {
                const select = await connection.command(`${rng.pick(['SELECT', 'EXAMINE'])} ${rng.pick(['INBOX', 'Archive'])}${rng.chance(0.3) ? ' (CONDSTORE)' : ''}`, REPLY_TIMEOUT_MS);
                if (/^\S+ OK/.test(select.tagged)) state = 'selected';
            }
        }
        const burst = rng.int(5, 80);
        for (let n = 0; n < burst && budget(); n++) {
            const command = generateCommand(rng, state);
            tally.commands++;
            const outcome = await send(connection, command, rng);
            if (outcome === 'answered') tally.answered++;
            if (outcome === 'closed') {
                tally.closedByServer++;
                return;
            }
            if (outcome === 'abandoned') return;
            // Follow the state the server is likely in; a wrong guess is itself fuzzing.
            if (command.name === 'LOGOUT') return;
            const last = connection.responses[connection.responses.length - 1]?.text ?? '';
            if (/^\S+ OK/.test(last)) {
                if (/^(SELECT|EXAMINE)$/.test(command.name)) state = 'selected';
                if (/^(CLOSE|UNSELECT)$/.test(command.name)) state = 'authenticated';
                if (/^(LOGIN|AUTHENTICATE)/.test(command.name)) state = 'authenticated';
            } else if (/^(SELECT|EXAMINE)$/.test(command.name) && /^\S+ NO/.test(last)) {
                state = 'authenticated';
            }
            // Keep memory of finished sessions small.
            connection.responses.splice(0, connection.responses.length);
        }
    } finally {
        connection.destroy();
    }
}

test(`fuzz: ${TOTAL_COMMANDS} random commands over ${WORKERS} concurrent sessions`, { timeout: RUN_LIMIT_MS + 60_000 }, async () => {
    const tally: Tally = { commands: 0, answered: 0, closedByServer: 0, sessions: 0, problems: [] };
    const started = Date.now();
    const budget = () => tally.commands < TOTAL_COMMANDS && Date.now() - started < RUN_LIMIT_MS;

    // The watcher: its own user and mailbox, so the fuzzers' EXPUNGEs cannot change what it sees.
    const watcher = await RawImapConnection.session(gateway.imapPort, WATCH_USER, WATCH_PASS, 'INBOX');
    let watcherRounds = 0;
    let watcherSlowest = 0;
    let fuzzing = true;
    const watching = (async () => {
        while (fuzzing) {
            const began = Date.now();
            const fetch = await watcher.command(watcherRounds % 2 ? 'NOOP' : 'FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])', WATCHER_LIMIT_MS);
            assert.match(fetch.tagged, /^\S+ OK/, 'watcher command succeeds');
            if (watcherRounds % 2 === 0) assert.equal(fetch.untagged.filter(r => / FETCH /.test(r.text)).length, 3, 'watcher sees its 3 messages');
            watcherSlowest = Math.max(watcherSlowest, Date.now() - began);
            watcherRounds++;
            watcher.responses.splice(0, watcher.responses.length);
            await new Promise(resolve => setImmediate(resolve));
        }
    })();

    const workers = Array.from({ length: WORKERS }, async (_, worker) => {
        const rng = new Rng(SEED * 1000 + worker);
        while (budget()) await fuzzSession(rng, tally, budget);
    });
    try {
        await Promise.all(workers);
    } finally {
        fuzzing = false;
    }
    await watching;
    watcher.destroy();
    const elapsed = Date.now() - started;
    console.log(
        `imap-fuzz: seed ${SEED}: ${tally.commands} commands (${tally.answered} answered) in ${tally.sessions} sessions, ` +
            `${tally.closedByServer} closed by the server, ${elapsed} ms; watcher ${watcherRounds} rounds, slowest ${watcherSlowest} ms`
    );
    // Errors the daemon logged (each one contained); printed so that a new kind stands out.
    const errors = new Map<string, number>();
    for (const line of gateway.logLines) {
        const entry = JSON.parse(line) as { level?: number; command?: string; handler?: string; err?: { message?: string; stack?: string } };
        if ((entry.level ?? 0) < 50) continue;
        const where = /\((.*?node_modules\/@zone-eu\/wildduck\/|.*?\/dist\/)?([^()]*)\)/.exec((entry.err?.stack ?? '').split('\n')[1] ?? '')?.[2] ?? '';
        const key = `${entry.command ?? entry.handler ?? ''}: ${entry.err?.message ?? ''} at ${where}`;
        errors.set(key, (errors.get(key) ?? 0) + 1);
    }
    if (errors.size) console.log('imap-fuzz: errors logged:', JSON.stringify([...errors]));
    assert.ok(tally.commands >= Math.min(TOTAL_COMMANDS, 10_000) || elapsed >= RUN_LIMIT_MS, 'the run reached its command count');

    // The daemon is alive: a fresh login works and reads a mailbox.
    const fresh = await RawImapConnection.session(gateway.imapPort, WATCH_USER, WATCH_PASS, 'INBOX');
    const fetch = await fresh.command('FETCH 1:* (UID)');
    assert.equal(fetch.untagged.filter(r => / FETCH /.test(r.text)).length, 3);
    await fresh.command('LOGOUT');
    fresh.destroy();
    assert.equal(gateway.daemon.store.integrityCheck(), 'ok');
});
