/**
 * Two or three sessions of one user on one mailbox, with the races imaptest's stress mode runs
 * into made deterministic: session B changes or expunges a message, and only once B has its
 * tagged OK does session A act on the same message. By then the store has committed B's change
 * and A's session has queued it (A has not been told yet: it sent no command in between).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, makeMessage, type Gateway } from './support/gateway';
import { RawImapConnection, appendRaw, type Response } from './support/raw-imap-connection';

const TEST_MS = 30000;
const USER = 'alice';
const PASSWORD = 'alice-secret-pw';

let gateway: Gateway;
let mailboxCounter = 0;

before(
    async () => {
        gateway = await startGateway({ plaintext: true });
    },
    { timeout: TEST_MS }
);
after(
    async () => {
        await gateway.stop();
    },
    { timeout: TEST_MS }
);

/** A fresh mailbox with `count` messages, and `sessions` connections that have it selected (CONDSTORE on). */
async function setup(count: number, sessions: number): Promise<{ mailbox: string; clients: RawImapConnection[] }> {
    const mailbox = `Race${++mailboxCounter}`;
    const first = await RawImapConnection.session(gateway.imapPort, USER, PASSWORD);
    assert.match((await first.command(`CREATE ${mailbox}`)).tagged, /^\S+ OK/);
    for (let i = 0; i < count; i++) {
        assert.match(await appendRaw(first, mailbox, makeMessage({ subject: `message ${i + 1}` })), /^\S+ OK/);
    }
    const clients = [first];
    while (clients.length < sessions) clients.push(await RawImapConnection.session(gateway.imapPort, USER, PASSWORD));
    for (const client of clients) {
        assert.match((await client.command(`SELECT ${mailbox} (CONDSTORE)`)).tagged, /^\S+ OK/);
    }
    return { mailbox, clients };
}

function closeAll(clients: RawImapConnection[]): void {
    for (const client of clients) client.destroy();
}

interface FetchSeen {
    seq: number;
    flags: string[] | null;
    modseq: number | null;
}

function fetches(responses: Response[]): FetchSeen[] {
    const out: FetchSeen[] = [];
    for (const { text } of responses) {
        const match = /^\* (\d+) FETCH \((.*)\)$/.exec(text);
        if (!match) continue;
        const flags = /FLAGS \(([^)]*)\)/.exec(match[2]);
        const modseq = /MODSEQ \((\d+)\)/.exec(match[2]);
        out.push({
            seq: Number(match[1]),
            // \Recent belongs to one session, not to the message: left out of every comparison.
            flags: flags
                ? flags[1]
                      .split(' ')
                      .filter(flag => flag && flag !== '\\Recent')
                      .sort()
                : null,
            modseq: modseq ? Number(modseq[1]) : null
        });
    }
    return out;
}

test('STORE on a message another session expunged answers OK and changes the rest (RFC 2180 4.2.1, as Dovecot)', { timeout: TEST_MS }, async t => {
    const { clients } = await setup(3, 2);
    t.after(() => closeAll(clients));
    const [a, b] = clients;
    assert.match((await b.command('STORE 1 +FLAGS.SILENT (\\Deleted)')).tagged, /^\S+ OK/);
    assert.match((await b.command('EXPUNGE')).tagged, /^\S+ OK/);

    // A still has message 1 (no EXPUNGE may be sent during STORE): the STORE succeeds for 2 and 3.
    const store = await a.command('STORE 1:3 +FLAGS (\\Seen)');
    assert.match(store.tagged, /^\S+ OK/, 'STORE answered NO because message 1 was expunged by another session');
    assert.ok(!store.untagged.some(r => / EXPUNGE$/.test(r.text)), 'EXPUNGE sent during STORE');
    assert.deepEqual(
        fetches(store.untagged)
            .map(f => f.seq)
            .sort(),
        [2, 3]
    );

    // Also with a message A has only just been told about (2), and with UID STORE.
    assert.match((await a.command('STORE 1 -FLAGS (\\Seen)')).tagged, /^\S+ OK/);

    // UID STORE may tell A of the expunge (it does not use sequence numbers), NOOP must.
    const uidStore = await a.command('UID STORE 1:* +FLAGS (\\Flagged)');
    assert.match(uidStore.tagged, /^\S+ OK/);
    const noop = await a.command('NOOP');
    const told = [...uidStore.untagged, ...noop.untagged].map(r => r.text);
    assert.deepEqual(
        told.filter(text => / EXPUNGE$/.test(text)),
        ['* 1 EXPUNGE'],
        JSON.stringify(told)
    );
    const state = fetches((await a.command('FETCH 1:* (FLAGS)')).untagged);
    assert.deepEqual(
        state.map(f => f.flags),
        [
            ['\\Flagged', '\\Seen'],
            ['\\Flagged', '\\Seen']
        ]
    );
});

test('UID STORE after another session changed the same message: MODSEQ never goes backwards, flags end current (RFC 7162 3.1.2)', { timeout: TEST_MS }, async t => {
    const { clients } = await setup(2, 2);
    t.after(() => closeAll(clients));
    const [a, b] = clients;
    assert.match((await b.command('STORE 2 +FLAGS (\\Flagged)')).tagged, /^\S+ OK/);

    const store = await a.command('UID STORE 2 +FLAGS (\\Seen)');
    assert.match(store.tagged, /^\S+ OK/);
    const seen = fetches(store.untagged).filter(f => f.seq === 2);
    assert.ok(seen.length >= 1, 'no FETCH for the stored message');
    for (let i = 1; i < seen.length; i++) {
        assert.ok(seen[i].modseq! >= seen[i - 1].modseq!, `MODSEQ went backwards: ${JSON.stringify(seen)}`);
    }
    assert.deepEqual(seen[seen.length - 1].flags, ['\\Flagged', '\\Seen'], `the last FETCH A saw has stale flags: ${JSON.stringify(seen)}`);

    // Nothing older arrives later either.
    const later = fetches((await a.command('NOOP')).untagged).filter(f => f.seq === 2);
    for (const f of later) assert.ok(f.modseq! >= seen[seen.length - 1].modseq!, `MODSEQ went backwards after NOOP: ${JSON.stringify([...seen, ...later])}`);
});

test('a command pipelined behind STORE or FETCH BODY[] never flushes an older change of the same message', { timeout: TEST_MS }, async t => {
    const { clients } = await setup(2, 2);
    t.after(() => closeAll(clients));
    const [a, b] = clients;

    for (const [own, pipelined] of [
        ['STORE 1 +FLAGS (\\Answered)', 'NOOP'],
        ['FETCH 2 (BODY[] MODSEQ)', 'CHECK'],
        ['STORE 1 -FLAGS (\\Answered)', 'UID STORE 2 +FLAGS (\\Draft)']
    ]) {
        assert.match((await b.command('STORE 1:2 +FLAGS (\\Flagged)')).tagged, /^\S+ OK/);
        assert.match((await b.command('STORE 1:2 -FLAGS (\\Flagged)')).tagged, /^\S+ OK/);
        const start = a.responses.length;
        const first = a.nextTag();
        const second = a.nextTag();
        a.write(`${first} ${own}\r\n${second} ${pipelined}\r\n`);
        await a.waitFor(r => r.text.startsWith(`${second} `), `reply to ${second}`, 10000, start);
        const all = fetches(a.responses.slice(start));
        for (const seq of [1, 2]) {
            const list = all.filter(f => f.seq === seq && f.modseq !== null);
            for (let i = 1; i < list.length; i++) {
                assert.ok(list[i].modseq! >= list[i - 1].modseq!, `${own} + ${pipelined}: MODSEQ of ${seq} went backwards: ${JSON.stringify(list)}`);
            }
        }
    }
    // A's last word on each message matches the store.
    const final = fetches((await b.command('FETCH 1:2 (FLAGS MODSEQ)')).untagged);
    const noop = fetches((await a.command('NOOP')).untagged);
    const seenByA = fetches(a.responses);
    for (const f of final) {
        const last = [...seenByA].reverse().find(x => x.seq === f.seq && x.flags !== null);
        assert.deepEqual(last?.flags, f.flags, `A believes message ${f.seq} has ${JSON.stringify(last)}, the store says ${JSON.stringify(f)} (NOOP: ${JSON.stringify(noop)})`);
    }
});
