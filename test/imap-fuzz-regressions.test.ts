/**
 * Cases the protocol fuzzer (test/imap-fuzz.test.ts) found, each kept as a fixed regression.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type Gateway } from './helpers';
import { RawImap } from './raw-imap';

let gateway: Gateway;

before(async () => {
    gateway = await startGateway();
});

after(async () => {
    await gateway?.stop();
});

test('an unknown command that ends like a literal announcement gets a reply a client can read', async () => {
    const connection = await RawImap.session(gateway.imapPort, 'alice', 'alice-secret-pw');
    try {
        // imap-core echoed the name: `T2 BAD Unknown command: SUB{1}` reads as a literal to follow.
        const reply = await connection.command('SUB{1}', 3000);
        assert.match(reply.tagged, /^\S+ BAD /);
        assert.doesNotMatch(reply.tagged, /\{\d+\+?\}$/);
        assert.match((await connection.command('NOOP', 3000)).tagged, /^\S+ OK /);
    } finally {
        connection.destroy();
    }
});
