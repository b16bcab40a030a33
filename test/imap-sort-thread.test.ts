/**
 * ESEARCH (RFC 4731), SORT with DISPLAY and RETURN (RFC 5256, 5957, 5267) and THREAD
 * (REFERENCES, ORDEREDSUBJECT; RFC 5256) end to end: raw IMAP sessions over TCP against an
 * in-process gateway, one mailbox of four messages whose sort keys and threads are known.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type Gateway } from './support/gateway';
import { RawImapConnection, appendRaw } from './support/raw-imap-connection';

const USER = 'alice';
const PASS = 'alice-secret-pw';
const MAILBOX = 'SortThread';

let gateway: Gateway;
let session: RawImapConnection;
let uids: number[] = [];

function message(headers: string[], body = 'Hello.'): Buffer {
    return Buffer.from([...headers, 'To: alice@mailmule.lan', 'MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8', '', body, ''].join('\r\n'));
}

/**
 * 1 "Lunch" from Zed, 2 Jan; 2 "Re: Lunch" (References 1) from amy@y.org, 3 Jan;
 * 3 "[club] Fwd: Meeting" from Bob, 1 Jan; 4 "Re: Lunch" (In-Reply-To 1) from Émile, 4 Jan.
 */
const MESSAGES = [
    message(['From: Zed <zed@x.org>', 'Subject: Lunch', 'Message-ID: <a@t>', 'Date: Tue, 02 Jan 2024 10:00:00 +0000'], 'A longer body than the others, to be the largest. '.repeat(4)),
    message(['From: amy@y.org', 'Subject: Re: Lunch', 'Message-ID: <b@t>', 'References: <a@t>', 'Date: Wed, 03 Jan 2024 10:00:00 +0000']),
    message(['From: Bob <bob@z.org>', 'Subject: [club] Fwd: Meeting', 'Message-ID: <c@t>', 'Date: Mon, 01 Jan 2024 10:00:00 +0000']),
    message(['From: =?utf-8?q?=C3=89mile?= <emile@w.org>', 'Subject: Re: Lunch', 'Message-ID: <d@t>', 'In-Reply-To: <a@t>', 'Date: Thu, 04 Jan 2024 10:00:00 +0000'])
];

before(
    async () => {
        gateway = await startGateway({ plaintext: true });
        session = await RawImapConnection.session(gateway.imapPort, USER, PASS);
        assert.match((await session.command(`CREATE ${MAILBOX}`)).tagged, /OK/);
        for (const raw of MESSAGES) assert.match(await appendRaw(session, MAILBOX, raw), /OK/);
        assert.match((await session.command(`SELECT ${MAILBOX}`)).tagged, /OK/);
        const fetched = await session.command('FETCH 1:* (UID)');
        uids = fetched.untagged.map(response => Number(/UID (\d+)/.exec(response.text)?.[1]));
    },
    { timeout: 30_000 }
);

after(
    async () => {
        session?.destroy();
        await gateway?.stop();
    },
    { timeout: 30_000 }
);

/** The one untagged line of `prefix` (e.g. "* SORT") the command answered, after a tagged OK. */
async function untagged(command: string, prefix: string): Promise<string> {
    const reply = await session.command(command);
    assert.match(reply.tagged, /^\S+ OK/, `${command}: ${reply.tagged}`);
    const lines = reply.untagged.map(response => response.text).filter(text => text.startsWith(prefix));
    assert.equal(lines.length, 1, `${command}: one ${prefix} line in ${JSON.stringify(reply.untagged.map(r => r.text))}`);
    return lines[0].replace(/(\(TAG ")[^"]*(")/, '$1tag$2');
}

test('capabilities advertise ESEARCH, SORT, SORT=DISPLAY, ESORT and both THREAD algorithms', async () => {
    const capability = await untagged('CAPABILITY', '* CAPABILITY');
    for (const name of ['ESEARCH', 'SORT', 'SORT=DISPLAY', 'ESORT', 'THREAD=REFERENCES', 'THREAD=ORDEREDSUBJECT']) {
        assert.ok(capability.split(' ').includes(name), `${name} in ${capability}`);
    }
});

test('SEARCH RETURN gives one ESEARCH line: MIN MAX COUNT ALL, RETURN () meaning ALL', async () => {
    assert.equal(await untagged('SEARCH RETURN (MIN MAX COUNT) SUBJECT lunch', '* ESEARCH'), '* ESEARCH (TAG "tag") MIN 1 MAX 4 COUNT 3');
    assert.equal(await untagged('SEARCH RETURN () ALL', '* ESEARCH'), '* ESEARCH (TAG "tag") ALL 1:4');
    assert.equal(await untagged('UID SEARCH RETURN (ALL) SUBJECT lunch', '* ESEARCH'), `* ESEARCH (TAG "tag") UID ALL ${uids[0]}:${uids[1]},${uids[3]}`);
    assert.equal(await untagged('SEARCH RETURN (MIN COUNT) SUBJECT nothing-matches', '* ESEARCH'), '* ESEARCH (TAG "tag") COUNT 0');
    assert.equal(await untagged('SEARCH SUBJECT lunch', '* SEARCH'), '* SEARCH 1 2 4', 'without RETURN SEARCH answers as before');
});

test('SORT by subject, date, size, address and display name; ties in sequence order', async () => {
    assert.equal(await untagged('SORT (SUBJECT) US-ASCII ALL', '* SORT'), '* SORT 1 2 4 3');
    assert.equal(await untagged('SORT (REVERSE DATE) US-ASCII ALL', '* SORT'), '* SORT 4 2 1 3');
    assert.equal(await untagged('SORT (REVERSE SIZE) US-ASCII ALL', '* SORT').then(line => line.split(' ')[2]), '1', 'the largest first');
    assert.equal(await untagged('SORT (FROM) US-ASCII ALL', '* SORT'), '* SORT 2 3 4 1');
    assert.equal(await untagged('SORT (DISPLAYFROM) UTF-8 ALL', '* SORT'), '* SORT 2 3 1 4');
    assert.equal(await untagged(`UID SORT (DATE) UTF-8 SUBJECT lunch`, '* SORT'), `* SORT ${uids[0]} ${uids[1]} ${uids[3]}`);
    assert.equal(await untagged('SORT RETURN (ALL COUNT) (REVERSE DATE) US-ASCII ALL', '* ESEARCH'), '* ESEARCH (TAG "tag") COUNT 4 ALL 4,2,1,3');
    assert.equal(await untagged('SORT (DATE) US-ASCII SUBJECT nothing-matches', '* SORT'), '* SORT');
});

test('THREAD REFERENCES and ORDEREDSUBJECT', async () => {
    assert.equal(await untagged('THREAD REFERENCES US-ASCII ALL', '* THREAD'), '* THREAD (3)(1 (2)(4))');
    assert.equal(await untagged('THREAD ORDEREDSUBJECT US-ASCII ALL', '* THREAD'), '* THREAD (3)(1 (2)(4))');
    assert.equal(await untagged('UID THREAD REFERENCES US-ASCII NOT FROM amy', '* THREAD'), `* THREAD (${uids[2]})(${uids[0]} ${uids[3]})`);
});

test('malformed SORT, THREAD and RETURN get BAD, an unknown charset NO [BADCHARSET]; the session goes on', async () => {
    for (const command of [
        'SORT (REVERSE) US-ASCII ALL',
        'SORT () US-ASCII ALL',
        'SORT (NAME) US-ASCII ALL',
        'SORT (DATE)',
        'THREAD FOO US-ASCII ALL',
        'THREAD REFERENCES',
        'SEARCH RETURN (SAVE) ALL',
        'SEARCH RETURN ALL'
    ]) {
        assert.match((await session.command(command)).tagged, /^\S+ BAD/, command);
    }
    assert.match((await session.command('SORT (DATE) X-NO-SUCH-CHARSET ALL')).tagged, /^\S+ NO \[BADCHARSET\]/, 'unknown charset: NO, not BAD (RFC 5256 section 3)');
    assert.match((await session.command('THREAD REFERENCES X-NO-SUCH-CHARSET ALL')).tagged, /^\S+ NO \[BADCHARSET\]/);
    assert.match((await session.command('NOOP')).tagged, /^\S+ OK/);
});

test('the first CONDSTORE-enabling command in a selected mailbox reports HIGHESTMODSEQ (RFC 7162 3.1)', async () => {
    const other = await RawImapConnection.session(gateway.imapPort, USER, PASS, MAILBOX);
    try {
        const first = await other.command('FETCH 1 (MODSEQ)');
        assert.ok(
            first.untagged.some(response => /^\* OK \[HIGHESTMODSEQ \d+\]/.test(response.text)),
            JSON.stringify(first.untagged.map(r => r.text))
        );
        const second = await other.command('FETCH 1 (MODSEQ)');
        assert.ok(!second.untagged.some(response => /HIGHESTMODSEQ/.test(response.text)), 'only once');
    } finally {
        other.destroy();
    }
});
