/**
 * A body that cannot be read while a FETCH is streaming it (here: the stored raw file replaced by
 * a directory, so reading fails with EISDIR) still ends the command with exactly one tagged reply,
 * the literal already announced keeps its length, and the session goes on.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startGateway, DEFAULT_USERS, type Gateway } from './support/gateway';
import { RawImapConnection, appendRaw } from './support/raw-imap-connection';

const TEST_MS = 30_000;
const WAIT_MS = 10_000;
const user = DEFAULT_USERS[0];

let gateway: Gateway;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);

before(async () => {
    process.on('unhandledRejection', onUnhandled);
    gateway = await startGateway();
});
after(async () => {
    await gateway?.stop();
    process.off('unhandledRejection', onUnhandled);
});

/** Stored files of `size` bytes named by a content hash, under the gateway's directory. */
function blobFiles(dir: string, size: number): string[] {
    const found: string[] = [];
    const walk = (at: string) => {
        for (const entry of fs.readdirSync(at, { withFileTypes: true })) {
            const full = path.join(at, entry.name);
            if (entry.isDirectory()) walk(full);
            else if (/^[0-9a-f]{64}$/.test(entry.name) && fs.statSync(full).size === size) found.push(full);
        }
    };
    walk(dir);
    return found;
}

function largeMessage(subject: string, bodyBytes: number): Buffer {
    const line = 'x'.repeat(76) + '\r\n';
    const body = line.repeat(Math.ceil(bodyBytes / line.length));
    return Buffer.from(
        `From: a@example.org\r\nTo: b@example.org\r\nSubject: ${subject}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b1\r\nContent-Type: application/octet-stream\r\n\r\n${body}\r\n--b1--\r\n`
    );
}

for (const item of ['BODY.PEEK[]', 'BODY.PEEK[2]', 'BINARY.PEEK[2]']) {
    test(`FETCH ${item} of a body that fails while streaming: one tagged reply, literal kept whole`, { timeout: TEST_MS }, async () => {
        const connection = await RawImapConnection.session(gateway.imapPort, user.name, user.password);
        try {
            const mailbox = `stream-error-${item.replace(/\W/g, '')}`;
            const raw = largeMessage(mailbox, 400 * 1024);
            assert.match((await connection.command(`CREATE ${mailbox}`)).tagged, /OK/);
            assert.match(await appendRaw(connection, mailbox, raw), /OK/);
            assert.match((await connection.command(`SELECT ${mailbox}`)).tagged, /OK/);

            const files = blobFiles(gateway.dir, raw.length);
            assert.equal(files.length, 1, 'the raw file is found');
            fs.rmSync(files[0]);
            fs.mkdirSync(files[0]);
            try {
                const tag = connection.nextTag();
                const start = connection.responses.length;
                connection.write(`${tag} FETCH 1 (${item})\r\n`);
                const tagged = await connection.waitFor(r => r.text.startsWith(`${tag} `), `tagged reply to ${tag}`, WAIT_MS, start);
                assert.match(tagged.text, /^\S+ NO /);
                const replies = connection.responses.slice(start).filter(r => r.text.startsWith(`${tag} `));
                assert.equal(replies.length, 1, 'exactly one tagged reply');
                const fetched = connection.responses.slice(start).find(r => r.text.startsWith('* ') && / FETCH /.test(r.text));
                if (fetched) {
                    // A literal already announced is sent at its full length.
                    const announced = Number(/\{(\d+)\}$/.exec(fetched.text)?.[1] ?? /\{(\d+)\}/.exec(fetched.text)![1]);
                    assert.equal(fetched.literals[0].length, announced);
                }
                // The session is still in step: the next command gets its own answer.
                assert.match((await connection.command('NOOP')).tagged, /OK/);
                const after = connection.responses.slice(start).filter(r => r.text.startsWith(`${tag} `));
                assert.equal(after.length, 1, 'no second tagged reply later');
            } finally {
                fs.rmdirSync(files[0]);
            }
            assert.deepEqual(unhandled, [], 'no unhandled rejection');
        } finally {
            connection.destroy();
        }
    });
}
