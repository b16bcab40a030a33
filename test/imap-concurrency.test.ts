/**
 * Two or three sessions of one user on one mailbox, with the races imaptest's stress mode runs
 * into made deterministic: session B changes or expunges a message, and only once B has its
 * tagged OK does session A act on the same message. By then the store has committed B's change
 * and A's session has queued it (A has not been told yet: it sent no command in between).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, makeMessage, type Gateway } from './helpers';
import { RawImap, appendRaw, type Response } from './raw-imap';

const TEST_MS = 30000;
const USER = 'alice';
const PASSWORD = 'alice-secret-pw';

let gateway: Gateway;
let mailboxCounter = 0;

before(async () => {
    gateway = await startGateway({ plaintext: true });
}, { timeout: TEST_MS });
after(async () => {
    await gateway.stop();
}, { timeout: TEST_MS });

/** A fresh mailbox with `count` messages, and `sessions` connections that have it selected (CONDSTORE on). */
async function setup(count: number, sessions: number): Promise<{ mailbox: string; clients: RawImap[] }> {
    const mailbox = `Race${++mailboxCounter}`;
    const first = await RawImap.session(gateway.imapPort, USER, PASSWORD);
    assert.match((await first.command(`CREATE ${mailbox}`)).tagged, /^\S+ OK/);
    for (let i = 0; i < count; i++) {
        assert.match(await appendRaw(first, mailbox, makeMessage({ subject: `message ${i + 1}` })), /^\S+ OK/);
    }
    const clients = [first];
    while (clients.length < sessions) clients.push(await RawImap.session(gateway.imapPort, USER, PASSWORD));
    for (const client of clients) {
        assert.match((await client.command(`SELECT ${mailbox} (CONDSTORE)`)).tagged, /^\S+ OK/);
    }
    return { mailbox, clients };
}

function closeAll(clients: RawImap[]): void {
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
            flags: flags ? flags[1].split(' ').filter(Boolean).sort() : null,
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
    assert.deepEqual(fetches(store.untagged).map(f => f.seq).sort(), [2, 3]);

    // Also with a message A has only just been told about (2), and with UID STORE.
    assert.match((await a.command('STORE 1 -FLAGS (\\Seen)')).tagged, /^\S+ OK/);

    // UID STORE may tell A of the expunge (it does not use sequence numbers), NOOP must.
    const uidStore = await a.command('UID STORE 1:* +FLAGS (\\Flagged)');
    assert.match(uidStore.tagged, /^\S+ OK/);
    const noop = await a.command('NOOP');
    const told = [...uidStore.untagged, ...noop.untagged].map(r => r.text);
    assert.deepEqual(told.filter(text => / EXPUNGE$/.test(text)), ['* 1 EXPUNGE'], JSON.stringify(told));
    const state = fetches((await a.command('FETCH 1:* (FLAGS)')).untagged);
    assert.deepEqual(state.map(f => f.flags), [['\\Flagged', '\\Seen'], ['\\Flagged', '\\Seen']]);
});
