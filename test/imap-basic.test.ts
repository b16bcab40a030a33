import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ImapFlow } from 'imapflow';
import { startGateway, makeMessage, type Gateway } from './support/gateway';

let gateway: Gateway;

before(async () => {
    gateway = await startGateway();
});
after(async () => {
    await gateway.stop();
});

function client(user = 'alice', pass = 'alice-secret-pw'): ImapFlow {
    return new ImapFlow({ host: '127.0.0.1', port: gateway.imapPort, secure: false, auth: { user, pass }, logger: false, tls: { rejectUnauthorized: false } });
}

test('APPEND then FETCH returns the exact bytes and APPENDUID', async () => {
    const imap = client();
    await imap.connect();
    const raw = makeMessage({ subject: 'basic' });
    const appended = await imap.append('INBOX', raw, ['\\Seen']);
    assert.ok(appended && appended.uid, 'APPENDUID returned');
    const lock = await imap.getMailboxLock('INBOX');
    try {
        const message = await imap.fetchOne(String(appended.uid), { source: true, flags: true, size: true }, { uid: true });
        assert.ok(message);
        assert.deepEqual(message.source, raw);
        assert.equal(message.size, raw.length);
        assert.ok(message.flags?.has('\\Seen'));
    } finally {
        lock.release();
    }
    await imap.logout();
});

test('a wrong password is refused with AUTHENTICATIONFAILED', async () => {
    const imap = client('alice', 'wrong');
    await assert.rejects(imap.connect(), (err: Error & { responseText?: string; serverResponseCode?: string }) =>
        /AUTHENTICATIONFAILED|Authentication failed/i.test((err.responseText ?? err.message) + (err.serverResponseCode ?? ''))
    );
});
