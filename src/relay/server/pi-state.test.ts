import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { it } from 'node:test';
import { PiStateStore, type PiExchangeState } from './pi-state';

function withDir(fn: (dir: string) => void): void {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailmule-pi-state-'));
    try {
        fn(dir);
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

const STATE: PiExchangeState = {
    upProcessed: 3,
    downBuilt: 4,
    downAcked: 2,
    shippedThrough: 17,
    answers: { '5:1': { answer: { kind: 'unanswered', text: 'cut' }, shippedIn: 4 }, '6:2': { answer: null, shippedIn: null } }
};

it("keeps a Pi's exchange state and what it was told of each message, across opening again", () => {
    withDir(dir => {
        const state = new PiStateStore(dir);
        assert.deepEqual(state.read(), { upProcessed: 0, downBuilt: 0, downAcked: 0, shippedThrough: 0, answers: {} });
        const link = { user: 'alice', account: 'alice@example.org', folder: 'INBOX', uidValidity: 7, uid: 9, flags: ['\\Seen'] };
        state.commitDown(STATE, new Map([[17, link]]), []);
        state.close();
        const again = new PiStateStore(dir);
        assert.deepEqual(again.read(), STATE);
        assert.deepEqual(again.shippedAt(link), { id: 17, link });
        again.commitDown(STATE, new Map(), [17]);
        assert.equal(again.shipped().size, 0);
        again.close();
        assert.equal(fs.statSync(path.join(dir, 'relay.sqlite')).mode & 0o777, 0o600);
    });
});

it("takes over a first-slice relay's state.json once", () => {
    withDir(dir => {
        fs.writeFileSync(path.join(dir, 'state.json'), JSON.stringify(STATE));
        const state = new PiStateStore(dir);
        assert.deepEqual(state.read(), STATE);
        state.close();
        assert.ok(!fs.existsSync(path.join(dir, 'state.json')));
        assert.ok(fs.existsSync(path.join(dir, 'state.json.imported')));
    });
});

it('refuses a damaged state with what to do, and leaves it as it is', () => {
    withDir(dir => {
        const file = path.join(dir, 'relay.sqlite');
        const state = new PiStateStore(dir);
        state.write(STATE);
        state.close();
        // Garbage over the database's pages after the header: what a bad disk does.
        const bytes = fs.readFileSync(file);
        const damaged = Buffer.concat([bytes.subarray(0, 100), Buffer.alloc(Math.max(bytes.length, 8192) - 100, 0x5a)]);
        fs.writeFileSync(file, damaged);
        assert.throws(() => new PiStateStore(dir), /relay\.sqlite: the relay's state of this Pi is damaged \(.+\); stop the relay and restore .+ from a backup\. Do not delete it/);
        assert.ok(fs.readFileSync(file).equals(damaged), 'left untouched');

        fs.writeFileSync(file, 'not a database at all, '.repeat(400));
        assert.throws(() => new PiStateStore(dir), /the relay's state of this Pi is damaged \(file is not a database\)/);
    });
});

it('knows a body the Pi holds once the bundle that carried it is acknowledged, forgets it when the Pi says it is gone, and keeps what the Pi wants whole until settled', () => {
    withDir(dir => {
        const state = new PiStateStore(dir);
        const hash = 'ab'.repeat(32);
        const ref = { account: 'alice@example.org', folder: 'INBOX', uidValidity: 7, uid: 9 };
        state.commitDown({ ...STATE, downBuilt: 4 }, new Map(), [], { hashes: [hash], settled: [] });
        assert.equal(state.bodyHeld(hash, 3), false, 'not before the Pi has acknowledged bundle 4');
        assert.equal(state.bodyHeld(hash, 4), true);
        state.want({ ...ref, uid: 10 }, true);
        state.bodyMissing(hash, ref);
        assert.equal(state.bodyHeld(hash, 4), false);
        assert.deepEqual(state.wanted(), [
            { ...ref, whole: false },
            { ...ref, uid: 10, whole: true }
        ]);
        state.want(ref, true);
        assert.deepEqual(state.wanted()[0], { ...ref, whole: true }, 'a "Fetch full" request on top of a missing body waits for the whole message');
        state.commitDown({ ...STATE, downBuilt: 5 }, new Map(), [], { hashes: [], settled: [ref] });
        assert.deepEqual(state.wanted(), [{ ...ref, uid: 10, whole: true }]);
        state.close();
    });
});

it('knows where a body lies once the Pi has acknowledged the bundle that carried it, keeps its first place, and forgets it with the message it lies in', () => {
    withDir(dir => {
        const state = new PiStateStore(dir);
        const ref = { account: 'alice@example.org', folder: 'INBOX', uidValidity: 7, uid: 9 };
        const part = { hash: 'b'.repeat(64), messageHash: 'a'.repeat(64), offset: 120, length: 4000 };
        state.commitDown({ ...STATE, downBuilt: 4 }, new Map(), [], { hashes: [part.messageHash], parts: [part], settled: [] });
        assert.equal(state.bodySource(part.hash, 3), null, 'not before the Pi has applied bundle 4');
        assert.deepEqual(state.bodySource(part.hash, 4), part);
        state.commitDown({ ...STATE, downBuilt: 5 }, new Map(), [], { hashes: [], parts: [{ ...part, messageHash: 'c'.repeat(64), offset: 90 }], settled: [] });
        assert.deepEqual(state.bodySource(part.hash, 5), part, 'the first place stays');
        state.bodyMissing(part.messageHash, ref);
        assert.equal(state.bodySource(part.hash, 5), null);
        assert.equal(state.bodyHeld(part.messageHash, 5), false);
        assert.deepEqual(state.wanted(), [{ ...ref, whole: false }]);
        state.close();
    });
});

it('sends bodyRef records only to a Pi that said it applies them, and slims only when the Pi asked, across opening again', () => {
    withDir(dir => {
        const state = new PiStateStore(dir);
        assert.equal(state.appliesBodyRefs(), false, 'a Pi that never said so (one before bodyRef) gets messages whole');
        assert.equal(state.slimHeaders(), null);
        state.setAppliesBodyRefs(true);
        state.setSlimHeaders({ keepReceived: 3 });
        state.close();
        const again = new PiStateStore(dir);
        assert.equal(again.appliesBodyRefs(), true);
        assert.deepEqual(again.slimHeaders(), { keepReceived: 3 });
        again.setSlimHeaders(null);
        assert.equal(again.slimHeaders(), null);
        again.close();
    });
});
