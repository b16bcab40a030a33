import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { it } from 'node:test';
import { Store } from '../../store';
import { wantedMessages } from './pi-requests';

function message(subject: string): Buffer {
    return Buffer.from(`From: a@example.org\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/ /g, '-')}@example.org>\r\n\r\nHello.\r\n`);
}

it('wanted messages: found by the UID a re-link in the same bundle gave them; a stub asked for whole waits; one gone here settles with nothing to carry', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailmule-pi-requests-'));
    const store = new Store({ dataDir: dir });
    try {
        const alice = store.users.ensure('alice');
        const inbox = store.mailboxes.get(alice.id, 'INBOX')!;
        const at = (uid: number, uidValidity = 9) => ({ account: 'a@example.net', folder: 'INBOX', uidValidity, uid });
        for (const [subject, ref, stub] of [
            ['relinked', at(3), false],
            ['still a stub', at(4), true]
        ] as const) {
            const raw = message(subject);
            store.sync.importUpstream(alice.id, inbox.id, raw, store.messages.analyse(raw), ref, { flags: [], idate: 0, stub });
        }
        const remap = { meta: { user: 'alice', account: 'a@example.net', folder: 'INBOX', oldUidValidity: 7, uidValidity: 9 }, pairs: [[1, 3]] as [number, number][] };
        const out = wantedMessages(
            store,
            [
                { ...at(1, 7), whole: false },
                { ...at(4), whole: true },
                { ...at(5), whole: false }
            ],
            [remap]
        );
        assert.deepEqual(
            out.messages.map(found => [found.uidValidity, found.uid, found.stub]),
            [[9, 3, false]]
        );
        assert.deepEqual(out.settled, [at(1, 7), at(5)]);
    } finally {
        store.close();
        fs.rmSync(dir, { recursive: true, force: true });
    }
});
