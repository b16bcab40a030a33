/**
 * imap-core must contain an exception thrown while it handles one client's command: that command
 * is answered (BAD), the failure is logged with the command name but never its arguments, and the
 * process and every other session carry on. Driven against a bare imap-core server whose hooks
 * throw on purpose (our own hooks are wrapped by `guarded`, so they cannot show this).
 *
 * A hook that calls back with an error (patch 090) is answered the same way by every command:
 * the IMAP response code it set in err.code, with err.responseMessage as the text; anything
 * else NO [SERVERBUG] with a generic text. Never err.message, never [TEMPFAIL].
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { IMAPServer } from '../src/imap/engine';
import { RawImapConnection } from './support/raw-imap-connection';

interface LogRecord {
    meta: Record<string, unknown>;
    text: string;
}

const logged: LogRecord[] = [];
const record = (meta: unknown, ...args: unknown[]): void => {
    logged.push({ meta: (meta ?? {}) as Record<string, unknown>, text: args.map(String).join(' ') });
};
const logger = { info: record, debug: () => {}, error: record, warn: record, trace: () => {}, fatal: record };

let server: InstanceType<typeof IMAPServer>;
let port: number;

before(async () => {
    // standalone: as the daemon embeds it (patch 110), without WildDuck's error reporter and metrics, which are not installed.
    server = new IMAPServer({ standalone: true, secure: false, ignoreSTARTTLS: true, disableSTARTTLS: true, logger, id: { name: 'test' } });
    server.onAuth = (login: { username: string }, _session: unknown, callback: (err: Error | null, result?: unknown) => void) => {
        if (login.username === 'boom') throw new TypeError('broken auth hook');
        if (login.username === 'unreachable') return callback(new Error('ldap bind failed for cn=admin,dc=internal'));
        callback(null, { user: { id: 1, username: login.username } });
    };
    // A hook that throws synchronously, as a bug in a command module or a backend would.
    server.onList = (query: string) => {
        throw new TypeError(`broken hook (${typeof query})`);
    };
    server.onLsub = (_query: string, _session: unknown, callback: (err: Error | null, folders?: unknown[]) => void) => callback(null, []);
    // Hooks that call back with an error; the mailbox name picks which.
    const failWith = (path: string): Error => {
        if (path === 'errno') return Object.assign(new Error('ENOSPC: no space left on device, write /srv/mail/secret'), { code: 'ENOSPC' });
        if (path === 'exists') return Object.assign(new Error('E11000 duplicate key: mailboxes.path'), { code: 'ALREADYEXISTS' });
        if (path === 'limited') return Object.assign(new Error('rate limiter key user:17'), { responseMessage: 'Too many requests, try again in 5 minutes' });
        if (path === 'full') return Object.assign(new Error('quota row 17 over'), { code: 'overquota', responseMessage: 'Mailbox is full\r\n* BYE injected' });
        return new Error('SELECT * FROM mailboxes WHERE path = ? failed');
    };
    for (const hook of ['onCreate', 'onDelete', 'onSubscribe', 'onStatus', 'onOpen']) {
        server[hook] = (path: string, _session: unknown, callback: (err: Error) => void) => callback(failWith(path));
    }
    server.notifier = {
        addListener() {},
        removeListener() {},
        releaseConnection() {},
        getUpdates: (_session: unknown, _mailbox: unknown, _modseq: unknown, callback: (err: null, updates: unknown[]) => void) => callback(null, [])
    };
    server.on('error', () => {});
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
    port = (server.server.address() as AddressInfo).port;
});

after(async () => {
    await new Promise<void>(resolve => server.close(() => resolve()));
});

test('a command handler that throws gets BAD; the session and others carry on', async () => {
    const victim = await RawImapConnection.session(port, 'alice', 'secret-word-123');
    const bystander = await RawImapConnection.session(port, 'bob', 'bob-pw');
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
    const victim = await RawImapConnection.connect(port);
    const bystander = await RawImapConnection.session(port, 'bob', 'bob-pw');
    try {
        victim.write('A1 AUTHENTICATE PLAIN\r\n');
        await victim.waitFor(r => r.text.startsWith('+'), 'continuation', 3000);
        victim.write(Buffer.from('\0boom\0secret-word-456').toString('base64') + '\r\n');
        await victim.waitClosed(3000);
        assert.ok(
            victim.responses.some(r => r.text.startsWith('* BYE')),
            'told why'
        );
        assert.match((await bystander.command('NOOP', 3000)).tagged, /^\S+ OK /);
        const fresh = await RawImapConnection.session(port, 'carol', 'carol-pw');
        fresh.destroy();
        assert.ok(!logged.some(entry => entry.text.includes('secret-word-456') || JSON.stringify(entry.meta).includes('secret-word-456')));
    } finally {
        victim.destroy();
        bystander.destroy();
    }
});

test('a hook that calls back with an error: its response code and text, else NO [SERVERBUG]; never its message', async () => {
    const session = await RawImapConnection.session(port, 'alice', 'alice-pw');
    const serverbug = /^\S+ NO \[SERVERBUG\] Internal error occurred\. Refer to server log for more information\. \[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\]$/;
    try {
        // Every command answers an unexplained failure the same way.
        for (const command of ['CREATE other', 'DELETE other', 'SUBSCRIBE other', 'STATUS other (MESSAGES)', 'SELECT other', 'EXAMINE other']) {
            assert.match((await session.command(command)).tagged, serverbug, command);
        }
        // An errno in err.code is no IMAP response code.
        assert.match((await session.command('CREATE errno')).tagged, serverbug);
        // A code the hook chose is kept (CREATE and RENAME always did this), in any command.
        assert.match((await session.command('CREATE exists')).tagged, /^\S+ NO \[ALREADYEXISTS\] CREATE completed$/);
        assert.match((await session.command('DELETE exists')).tagged, /^\S+ NO \[ALREADYEXISTS\] DELETE completed$/);
        // With the hook's own text, on one line.
        assert.match((await session.command('SUBSCRIBE full')).tagged, /^\S+ NO \[OVERQUOTA\] Mailbox is full \* BYE injected$/);
        // A text without a code: the hook explained it, so it is no server bug.
        assert.match((await session.command('STATUS limited (MESSAGES)')).tagged, /^\S+ NO Too many requests, try again in 5 minutes$/);
        assert.match((await session.command('NOOP')).tagged, /^\S+ OK /);
        const texts = session.responses.map(r => r.text).join('\n');
        assert.doesNotMatch(texts, /TEMPFAIL|SELECT \*|E11000|ENOSPC|srv|quota row/);
    } finally {
        session.destroy();
    }
});

test('an authentication hook that calls back with an error: NO [SERVERBUG] for LOGIN and AUTHENTICATE, not its message', async () => {
    const connection = await RawImapConnection.connect(port);
    try {
        assert.match((await connection.command('LOGIN unreachable secret-word-789')).tagged, /^\S+ NO \[SERVERBUG\] Internal error occurred\./);
        const tag = connection.nextTag();
        connection.write(`${tag} AUTHENTICATE PLAIN\r\n`);
        await connection.waitFor(r => r.text.startsWith('+'), 'continuation', 3000);
        connection.write(Buffer.from('\0unreachable\0secret-word-789').toString('base64') + '\r\n');
        const reply = await connection.waitFor(r => r.text.startsWith(`${tag} `), 'AUTHENTICATE reply', 3000);
        assert.match(reply.text, /^\S+ NO \[SERVERBUG\] Internal error occurred\./);
        assert.match((await connection.command('NOOP')).tagged, /^\S+ OK /);
        assert.doesNotMatch(connection.responses.map(r => r.text).join('\n'), /ldap|cn=admin|TEMPFAIL/);
        assert.ok(!logged.some(entry => entry.text.includes('secret-word-789') || JSON.stringify(entry.meta).includes('secret-word-789')), 'no password in the log');
    } finally {
        connection.destroy();
    }
});
