/**
 * imap-core must contain an exception thrown while it handles one client's command: that command
 * is answered (BAD), the failure is logged with the command name but never its arguments, and the
 * process and every other session carry on. Driven against a bare imap-core server whose hooks
 * throw on purpose (our own hooks are wrapped by `guarded`, so they cannot show this).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { IMAPServer } from '../src/imap/engine';
import { RawImap } from './raw-imap';

interface LogRecord {
    meta: Record<string, unknown>;
    text: string;
}

const logged: LogRecord[] = [];
const record = (meta: unknown, ...args: unknown[]): void => {
    logged.push({ meta: (meta ?? {}) as Record<string, unknown>, text: args.map(String).join(' ') });
};
const logger = { info: record, debug: () => {}, error: record, warn: record, trace: () => {}, fatal: record };

let server: any;
let port: number;

before(async () => {
    server = new IMAPServer({ secure: false, ignoreSTARTTLS: true, disableSTARTTLS: true, logger, id: { name: 'test' } });
    server.onAuth = (login: { username: string }, _session: unknown, callback: (err: Error | null, result?: unknown) => void) => {
        if (login.username === 'boom') throw new TypeError('broken auth hook');
        callback(null, { user: { id: 1, username: login.username } });
    };
    // A hook that throws synchronously, as a bug in a command module or a backend would.
    server.onList = (query: string) => {
        throw new TypeError(`broken hook (${typeof query})`);
    };
    server.onLsub = (_query: string, _session: unknown, callback: (err: Error | null, folders?: unknown[]) => void) => callback(null, []);
    server.notifier = { addListener() {}, removeListener() {}, releaseConnection() {}, getUpdates: (_session: unknown, _mailbox: unknown, _modseq: unknown, callback: (err: null, updates: unknown[]) => void) => callback(null, []) };
    server.on('error', () => {});
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
    port = (server.server.address() as AddressInfo).port;
});

after(async () => {
    await new Promise<void>(resolve => server.close(() => resolve()));
});

test('a command handler that throws gets BAD; the session and others carry on', async () => {
    const victim = await RawImap.session(port, 'alice', 'secret-word-123');
    const bystander = await RawImap.session(port, 'bob', 'bob-pw');
    try {
        const list = await victim.command('LIST "" "private-folder-name"');
        assert.match(list.tagged, /^\S+ BAD /);
        // The same session keeps working, and so does the other one.
        assert.match((await victim.command('LSUB "" "*"')).tagged, /^\S+ OK /);
        assert.match((await victim.command('NOOP')).tagged, /^\S+ OK /);
        assert.match((await bystander.command('NOOP')).tagged, /^\S+ OK /);
        // Logged with the command name, never its arguments.
        const failure = logged.find(entry => entry.meta.command === 'LIST');
        assert.ok(failure, 'the failure is logged with its command name');
        assert.ok(!JSON.stringify(logged.map(entry => entry.meta.command)).includes('private-folder-name'));
        assert.ok(!logged.some(entry => entry.text.includes('secret-word-123')), 'no password in the log');
    } finally {
        victim.destroy();
        bystander.destroy();
    }
});

test('a throw while handling a continuation (AUTHENTICATE) closes only that connection', async () => {
    const victim = await RawImap.connect(port);
    const bystander = await RawImap.session(port, 'bob', 'bob-pw');
    try {
        victim.write('A1 AUTHENTICATE PLAIN\r\n');
        await victim.waitFor(r => r.text.startsWith('+'), 'continuation', 3000);
        victim.write(Buffer.from('\0boom\0secret-word-456').toString('base64') + '\r\n');
        await victim.waitClosed(3000);
        assert.ok(victim.responses.some(r => r.text.startsWith('* BYE')), 'told why');
        assert.match((await bystander.command('NOOP', 3000)).tagged, /^\S+ OK /);
        const fresh = await RawImap.session(port, 'carol', 'carol-pw');
        fresh.destroy();
        assert.ok(!logged.some(entry => entry.text.includes('secret-word-456') || JSON.stringify(entry.meta).includes('secret-word-456')));
    } finally {
        victim.destroy();
        bystander.destroy();
    }
});
