/**
 * One user can never reach another user's mail: alice tries every spelling of bob's mailboxes
 * she can think of over IMAP, and forged mailbox ids straight against the store API. Bob's
 * mailboxes are checked through bob's own session before and after, down to each message's
 * bytes and flags.
 */
import { test, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { ImapFlow, type ImapFlowOptions } from 'imapflow';
import { startGateway, makeMessage, type Gateway } from './support/gateway';
import { atom, command, sequence, str } from './support/imapflow-command';
import { withTimeout } from './support/wait';

const WAIT_MS = 5000;
/** Upper bound for a whole test, so a hung server fails the test instead of the run. */
const TEST_MS = 30000;
const PASSWORDS: Record<string, string> = { alice: 'alice-secret-pw', bob: 'bob-secret-pw' };

/** Bob's mailboxes and what is in them. Café is stored in composed form (NFC). */
const BOB_MAILBOXES: Record<string, string[]> = {
    INBOX: ['bob inbox one', 'bob inbox two (deleted flag)', 'bob inbox three'],
    BobSecret: ['bob secret one', 'bob secret two'],
    'Café': ['bob café'],
    'Projects/Bob': ['bob project'],
    // Never named by alice over IMAP, so the store API test has a path only bob has.
    'Ledger 2026': ['bob ledger']
};
const DEFAULT_PATHS = ['Archive', 'Drafts', 'INBOX', 'Junk', 'Sent', 'Trash'];

/** Every name alice might use to reach one of bob's mailboxes. */
const NAMES_FOR_BOB = [
    'bob',
    'Bob',
    'BOB',
    'bob/INBOX',
    'BOB/INBOX',
    '../bob/INBOX',
    '/bob/INBOX',
    './bob/INBOX',
    'bob//INBOX',
    'INBOX/../../bob',
    'INBOX/../../bob/INBOX',
    '~bob/INBOX',
    'user/bob/INBOX',
    'user.bob',
    '#shared/bob/INBOX',
    'Other Users/bob/INBOX',
    'bob@mailmule.lan/INBOX',
    // bob's own folder names, as they are and in other spellings
    'BobSecret',
    'bobsecret',
    'BOBSECRET',
    '/BobSecret',
    './BobSecret',
    'BobSecret/',
    'bob/BobSecret',
    '../bob/BobSecret',
    'B\u043EbSecret', // Cyrillic small o
    '\u0412obSecret', // Cyrillic capital Ve
    '\uFF22obSecret', // fullwidth B
    'Caf\u00E9', // NFC, as bob created it
    'Cafe\u0301', // NFD
    'CAF\u00C9',
    'Projects/Bob',
    'projects/bob',
    'Projects/../Projects/Bob',
    'Projects//Bob',
    'Projects/Bob/'
];

let gateway: Gateway;
let bobBefore: BobSnapshot;

function clientOptions(user: string, extra: Partial<ImapFlowOptions> = {}): ImapFlowOptions {
    return {
        host: '127.0.0.1',
        port: gateway.imapPort,
        secure: false,
        auth: { user, pass: PASSWORDS[user] },
        logger: false,
        disableAutoIdle: true,
        tls: { rejectUnauthorized: false },
        ...extra
    };
}

async function closeClient(client: ImapFlow): Promise<void> {
    if (client.usable) {
        await withTimeout(client.logout(), WAIT_MS, 'LOGOUT').catch(() => {});
    }
    client.close();
}

/** A logged-in client for `user`, logged out when the test (or `before`) that made it ends. */
async function connect(user: string, t?: TestContext, extra: Partial<ImapFlowOptions> = {}): Promise<ImapFlow> {
    const client = new ImapFlow(clientOptions(user, extra));
    client.on('error', () => {});
    t?.after(() => closeClient(client));
    await withTimeout(client.connect(), WAIT_MS, `${user} login`);
    return client;
}

// ---------------------------------------------------------------- bob's state

interface BobSnapshot {
    /** path -> STATUS and, per UID, the SHA-256 of the message bytes and its flags. */
    mailboxes: Record<string, { messages: number; uidNext: number; highestModseq: string; content: string[] }>;
}

/** Bob's mailboxes as bob's own session sees them. */
async function snapshotBob(): Promise<BobSnapshot> {
    const bob = await connect('bob');
    try {
        const mailboxes: BobSnapshot['mailboxes'] = {};
        const folders = (await bob.list()).sort((a, b) => a.path.localeCompare(b.path));
        for (const folder of folders) {
            const path = folder.path;
            if (folder.flags.has('\\Noselect')) {
                // A parent shown only because of its children (Projects of Projects/Bob).
                mailboxes[path] = { messages: 0, uidNext: 0, highestModseq: 'noselect', content: [] };
                continue;
            }
            const status = await bob.status(path, { messages: true, uidNext: true, highestModseq: true });
            assert.ok(status, `bob can STATUS ${path}`);
            const content: string[] = [];
            if (status.messages) {
                const lock = await bob.getMailboxLock(path);
                try {
                    for (const message of await bob.fetchAll('1:*', { uid: true, flags: true, source: true })) {
                        const hash = crypto
                            .createHash('sha256')
                            .update(message.source ?? Buffer.alloc(0))
                            .digest('hex');
                        // \Recent is the first snapshot session's, not the message's (RFC 3501 2.3.2).
                        const flags = [...(message.flags ?? [])].filter(flag => flag !== '\\Recent');
                        content.push(`${message.uid} ${hash} ${flags.sort().join(',')}`);
                    }
                } finally {
                    lock.release();
                }
            }
            mailboxes[path] = { messages: status.messages!, uidNext: status.uidNext!, highestModseq: String(status.highestModseq), content };
        }
        return { mailboxes };
    } finally {
        await closeClient(bob);
    }
}

async function assertBobUnchanged(): Promise<void> {
    assert.deepEqual(await snapshotBob(), bobBefore, "bob's mailboxes are exactly as they were");
}

before(
    async () => {
        gateway = await startGateway();
        const bob = await connect('bob');
        try {
            for (const [path, subjects] of Object.entries(BOB_MAILBOXES)) {
                if (path !== 'INBOX') await bob.mailboxCreate(path);
                for (const subject of subjects) {
                    const flags = subject.includes('deleted flag') ? ['\\Deleted'] : [];
                    await bob.append(path, makeMessage({ subject, to: 'bob@mailmule.lan', body: `${subject}: for bob only` }), flags);
                }
            }
        } finally {
            await closeClient(bob);
        }
        bobBefore = await snapshotBob();
        assert.deepEqual(Object.keys(bobBefore.mailboxes).sort(), [...DEFAULT_PATHS, 'BobSecret', 'Café', 'Ledger 2026', 'Projects', 'Projects/Bob'].sort());
        assert.equal(bobBefore.mailboxes.INBOX.messages, 3);
    },
    { timeout: TEST_MS }
);

after(
    async () => {
        await gateway.stop();
    },
    { timeout: TEST_MS }
);

// ================================================================ tests

test("LIST, LSUB and XLIST never show bob's folders to alice, whatever the reference and pattern", { timeout: TEST_MS }, async t => {
    const alice = await connect('alice', t);
    assert.deepEqual((await alice.list()).map(folder => folder.path).sort(), DEFAULT_PATHS);

    const queries: [string, unknown[]][] = [
        ['LIST', [str(''), str('*')]],
        ['LIST', [str(''), str('%')]],
        ['LIST', [str(''), str('%/%')]],
        ['LIST', [str(''), str('bob*')]],
        ['LIST', [str(''), str('*Secret*')]],
        ['LIST', [str(''), str('Caf*')]],
        ['LIST', [str(''), str('Projects/*')]],
        ['LIST', [str('bob/'), str('*')]],
        ['LIST', [str('../bob/'), str('*')]],
        ['LIST', [str('/'), str('*')]],
        ['LIST', [str(''), str('/*')]],
        ['LIST', [str('~bob'), str('*')]],
        ['LIST', [str('#shared/'), str('*')]],
        ['LIST', [str('INBOX/../../'), str('*')]],
        ['LIST', [[atom('SPECIAL-USE')], str(''), str('*')]],
        ['LSUB', [str(''), str('*')]],
        ['LSUB', [str('bob/'), str('*')]],
        ['XLIST', [str(''), str('*')]]
    ];
    for (const [name, attributes] of queries) {
        const result = await command(alice, name, attributes, [name]);
        const listed = result.untagged.map(response => String(response.attributes?.[2]?.value));
        for (const path of listed) {
            assert.ok(DEFAULT_PATHS.includes(path), `${name} ${JSON.stringify(attributes)} listed ${path}`);
        }
    }
});

test("alice cannot SELECT, EXAMINE or STATUS bob's mailboxes under any name", { timeout: TEST_MS }, async t => {
    const alice = await connect('alice', t);
    for (const name of NAMES_FOR_BOB) {
        for (const verb of ['SELECT', 'EXAMINE']) {
            const result = await command(alice, verb, [str(name)], ['EXISTS']);
            assert.notEqual(result.status, 'OK', `${verb} ${name} must fail`);
            assert.deepEqual(result.untagged, [], `${verb} ${name} reveals no message count`);
        }
        const status = await command(alice, 'STATUS', [str(name), [atom('MESSAGES'), atom('UIDNEXT'), atom('UNSEEN')]], ['STATUS']);
        assert.notEqual(status.status, 'OK', `STATUS ${name} must fail`);
        assert.deepEqual(status.untagged, [], `STATUS ${name} reveals nothing`);
        // imapflow's own calls agree.
        await assert.rejects(alice.mailboxOpen(name), `mailboxOpen ${name}`);
        assert.equal(await alice.status(name, { messages: true }).catch(() => false), false, `status() ${name}`);
    }
    await assertBobUnchanged();
});

test("alice cannot APPEND to bob's mailboxes under any name", { timeout: TEST_MS }, async t => {
    const alice = await connect('alice', t);
    for (const name of NAMES_FOR_BOB) {
        await assert.rejects(alice.append(name, makeMessage({ subject: `alice into ${name}` })), (err: { responseStatus?: string; serverResponseCode?: string }) => {
            assert.ok(err.responseStatus === 'NO' || err.responseStatus === 'BAD', `APPEND ${name}: ${err.responseStatus ?? ''} ${err.serverResponseCode ?? ''}`);
            if (err.responseStatus === 'NO') {
                assert.ok(['TRYCREATE', 'NONEXISTENT', 'CANNOT'].includes(err.serverResponseCode ?? ''), `APPEND ${name} answered ${err.serverResponseCode ?? ''}`);
            }
            return true;
        });
    }
    await assertBobUnchanged();
});

test("alice cannot COPY or MOVE into bob's mailboxes under any name", { timeout: TEST_MS }, async t => {
    const alice = await connect('alice', t);
    const path = 'AliceOutbox';
    await alice.mailboxCreate(path);
    const appended = await alice.append(path, makeMessage({ subject: 'alice only', body: 'alice would like to leak this' }));
    assert.ok(appended && appended.uid);
    await alice.mailboxOpen(path);
    for (const name of NAMES_FOR_BOB) {
        for (const verb of ['UID COPY', 'UID MOVE']) {
            const result = await command(alice, verb, [sequence(appended.uid), str(name)]);
            assert.notEqual(result.status, 'OK', `${verb} to ${name} must fail`);
            if (result.status === 'NO') {
                assert.ok(['TRYCREATE', 'NONEXISTENT', 'CANNOT'].includes(result.code), `${verb} to ${name} answered ${result.code}`);
            }
        }
    }
    // The message never left alice's mailbox.
    const still = await alice.search({ all: true }, { uid: true });
    assert.deepEqual(still, [appended.uid]);
    await assertBobUnchanged();
});

// Runs after the tests above (node:test runs a file's tests in order): from here on alice has
// mailboxes of her own under some of these names.
test('a mailbox alice creates under one of those names is her own, and bob never sees it', { timeout: TEST_MS }, async t => {
    const alice = await connect('alice', t);
    const created: string[] = [];
    for (const name of NAMES_FOR_BOB) {
        const result = await command(alice, 'CREATE', [str(name)]);
        if (result.status === 'OK') created.push(name);
    }
    // The plain names can be created (they are only names); the path tricks cannot.
    for (const name of ['bob', 'bob/INBOX', 'BobSecret', 'Caf\u00E9', 'Projects/Bob']) {
        assert.ok(created.includes(name) || created.includes(name.normalize('NFD')), `alice may have her own ${name}`);
    }
    for (const name of ['../bob/INBOX', './bob/INBOX', 'INBOX/../../bob', '../bob/BobSecret', 'Projects/../Projects/Bob', 'bob//INBOX']) {
        assert.ok(!created.includes(name), `CREATE ${name} is refused`);
    }

    const raw = makeMessage({ subject: 'alice note', body: 'alice wrote this' });
    for (const name of created) {
        // SELECT shows alice's own mailbox, never bob's messages.
        const opened = await alice.mailboxOpen(name).catch(() => null);
        if (!opened) {
            // imap-core answers CREATE "name/" with OK without creating anything.
            assert.ok(name.endsWith('/'), `alice created ${name} but cannot open it`);
            continue;
        }
        const before = opened.exists;
        const appended = await alice.append(name, raw);
        assert.ok(appended && appended.uid, `APPEND to alice's own ${name}`);
        const messages = await alice.fetchAll('1:*', { uid: true, source: true });
        assert.equal(messages.length, before + 1);
        for (const message of messages) {
            assert.ok(message.source?.equals(raw), `${name} only holds alice's messages`);
        }
        await alice.mailboxClose();
    }

    // COPY into one of them goes to alice's copy.
    await alice.mailboxOpen('INBOX');
    const inboxMessage = await alice.append('INBOX', raw);
    assert.ok(inboxMessage && inboxMessage.uid);
    const copied = await alice.messageCopy(String(inboxMessage.uid), 'BobSecret', { uid: true });
    assert.ok(copied && copied.uidMap?.size === 1);

    // Bob's LIST is unchanged and his mailboxes hold exactly what they held.
    await assertBobUnchanged();
});

test("the store API with alice's user id does nothing to bob's mailboxes", { timeout: TEST_MS }, async () => {
    const store = gateway.daemon.store;
    const aliceId = store.users.get('alice')!.id;
    const bobId = store.users.get('bob')!.id;
    assert.notEqual(aliceId, bobId);
    const bobInbox = store.mailboxes.get(bobId, 'INBOX')!;
    const bobSecret = store.mailboxes.get(bobId, 'BobSecret')!;
    const aliceInbox = store.mailboxes.get(aliceId, 'INBOX')!;
    assert.ok(bobInbox && bobSecret && aliceInbox);
    const bobUids = store.mailboxes.open(bobId, 'INBOX')!.uidList;
    assert.equal(bobUids.length, 3);
    // The test is only meaningful if expunge would have something to remove.
    assert.deepEqual(store.messages.search(bobId, bobInbox.id, [{ key: 'flag', value: '\\Deleted', exists: true }]).uids.length, 1);

    for (const mailbox of [bobInbox, bobSecret]) {
        assert.equal(store.mailboxes.getById(aliceId, mailbox.id), null, 'getById');
        assert.deepEqual(store.messages.fetchPage(aliceId, mailbox.id, bobUids, { envelope: true, bodystructure: true, mimeTree: true, headerLines: true }), [], 'fetchPage');
        assert.deepEqual(store.messages.search(aliceId, mailbox.id, [{ key: 'all' }]).uids, [], 'search');
        assert.deepEqual(store.messages.search(aliceId, mailbox.id, [{ key: 'text', value: 'bob' }]).uids, [], 'search text');
        assert.deepEqual(store.messages.expunge(aliceId, mailbox.id, {}), [], 'expunge');
        assert.deepEqual(store.messages.expunge(aliceId, mailbox.id, { uids: bobUids }), [], 'UID expunge');
        assert.throws(() => store.messages.updateFlags(aliceId, mailbox.id, bobUids, 'add', ['\\Deleted']), { name: 'StoreError', code: 'NONEXISTENT' }, 'updateFlags');
        // Copying or moving out of bob's mailbox into alice's INBOX.
        assert.throws(() => store.messages.copy(aliceId, mailbox.id, bobUids, 'INBOX'), { name: 'StoreError', code: 'TRYCREATE' }, 'copy');
        assert.throws(() => store.messages.move(aliceId, mailbox.id, bobUids, 'INBOX'), { name: 'StoreError', code: 'TRYCREATE' }, 'move');
        // Adding a message to bob's mailbox by id.
        assert.throws(() => store.messages.add(aliceId, mailbox.id, makeMessage({ subject: 'forged' })), { name: 'StoreError', code: 'TRYCREATE' }, 'add');
        assert.equal(store.messages.hasMessageId(aliceId, mailbox.id, '<anything@example.org>'), false, 'hasMessageId');
    }
    // Copying alice's message into bob's mailbox by his path resolves the path for alice only.
    const added = store.messages.add(aliceId, aliceInbox.id, makeMessage({ subject: 'alice store message' }));
    assert.equal(typeof added, 'object');
    const aliceUids = store.mailboxes.open(aliceId, 'INBOX')!.uidList;
    assert.ok(aliceUids.length > 0);
    assert.throws(() => store.messages.copy(aliceId, aliceInbox.id, aliceUids, 'Ledger 2026'), { name: 'StoreError', code: 'TRYCREATE' }, 'copy into a path only bob has');
    assert.throws(() => store.messages.move(aliceId, aliceInbox.id, aliceUids, 'Ledger 2026'), { name: 'StoreError', code: 'TRYCREATE' }, 'move into a path only bob has');
    // Path-based calls resolve within alice's own mailboxes.
    assert.equal(store.mailboxes.get(aliceId, 'Ledger 2026'), null);
    assert.equal(store.mailboxes.open(aliceId, 'Ledger 2026'), null);
    assert.equal(store.mailboxes.status(aliceId, 'Ledger 2026'), null);
    assert.throws(() => store.mailboxes.delete(aliceId, 'Ledger 2026'), { name: 'StoreError', code: 'NONEXISTENT' });
    assert.throws(() => store.mailboxes.rename(aliceId, 'Ledger 2026', 'Stolen'), { name: 'StoreError', code: 'NONEXISTENT' });
    assert.throws(() => store.mailboxes.setSubscribed(aliceId, 'Ledger 2026', false), { name: 'StoreError', code: 'NONEXISTENT' });
    assert.deepEqual(store.mailboxes.open(aliceId, 'INBOX')!.uidList, aliceUids, "alice's INBOX kept its messages");

    await assertBobUnchanged();
});

test("alice's password does not open bob's account under any spelling of his name", { timeout: TEST_MS }, async t => {
    for (const user of ['bob', 'BOB', 'Bob', 'bob@mailmule.lan', 'BOB@MAILMULE.LAN']) {
        for (const loginMethod of [undefined, 'LOGIN']) {
            const client = new ImapFlow({ ...clientOptions('alice'), auth: { user, pass: PASSWORDS.alice, ...(loginMethod ? { loginMethod } : {}) } });
            client.on('error', () => {});
            t.after(() => client.close());
            await assert.rejects(withTimeout(client.connect(), WAIT_MS, `login as ${user}`), `alice's password for ${user} (${loginMethod ?? 'PLAIN'})`);
        }
        // A good login in between keeps the failure limiter (10 per address) from locking us out.
        await connect('alice', t);
    }
});
