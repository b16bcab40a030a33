/**
 * One Pi's exchanges on its relay: an up bundle in, the provider work done with the direct
 * mode's own code (src/uplink send and receive, against this Pi's own store on the relay), and
 * a down bundle out. One exchange at a time per Pi.
 *
 * 1. The up bundle is read (verified again), its outbound bodies spooled to files, its sealed
 *    credentials opened and held in memory for this exchange only.
 * 2. Its `ack` releases the down bundles (and the answers in them) the Pi has applied, and
 *    the Pi's flag changes and expunges are made on its store here (synced-changes.ts).
 * 3. Outbound records whose (queue id, attempt) has no answer yet are sent through their
 *    accounts by uplink/send.ts, whose queue here is a recorder of the provider's answers.
 * 4. Every account's new mail comes into the Pi's store here by uplink/receive.ts.
 * 5. What the Pi has not been sent yet (answers, re-links after a UIDVALIDITY reset, flags
 *    changed upstream, messages) goes into a new down bundle, kept until acknowledged; when the
 *    Pi says its run's budget will not carry the messages, into two: their header stubs first,
 *    then the messages (headers-first.ts). The answer to the exchange lists every down bundle not acknowledged.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { ResolvedUser } from '../../config';
import type { Logger } from '../../log';
import type { AttemptOutcome, ConnectionFailure, ProviderAnswer } from '../../queue';
import { Store, type OutboxMessage, type QueueEntry } from '../../store';
import { BundleError, BundleReader, BundleWriter, syncDirectory, verifyBundle, type RecordMeta } from '../../bundle';
import type { QueueSink, UplinkContext } from '../../uplink/context';
import { RunBudget } from '../../uplink/budget';
import { WireMeter } from '../../uplink/meter';
import { TokenCache } from '../../uplink/oauth2';
import { AccountRun, selectTargets } from '../../uplink/run-accounts';
import { unseal } from '../seal';
import type { PairedPi, RelayHome } from './home';
import { answerKey, PiStateStore, type DeliveryAnswer, type PiExchangeState, type ShippedLink } from './pi-state';
import { applyPiChanges, downChanges, remapBody } from './synced-changes';
import { bodiesMissing, messageMeta, queueFetchFull, wantedMessages } from './pi-requests';
import { headerStub } from './headers-first';
import { bodyPart, sha256Hex, type BodyPart } from './body-refs';
import { slimHeaders, type SlimHeaders } from './header-slimming';
import { GrowingBundle } from './growing-bundle';

/** What the down bundles being built carry whole: message hashes (the Pi will hold those files) and where their bodies lie. */
interface ShippedBodies {
    hashes: string[];
    parts: BodyPart[];
}

const PROVIDER_TIMEOUTS = { connectMs: 60_000, socketMs: 5 * 60_000 };
/** At most this many messages go into one down bundle; the rest into the next. */
const DOWN_MESSAGES_PER_BUNDLE = 50_000;

/** What buildDown puts in a down bundle (writeDown writes it). */
interface DownContent {
    answers: [string, PiExchangeState['answers'][string]][];
    changes: ReturnType<typeof downChanges>;
    messages: OutboxMessage[];
    headersFirst: boolean;
    /** The last down bundle the Pi acknowledged: what it holds from those, messages refer to. */
    downAcked: number;
    bodiesShipped: ShippedBodies;
}

export interface DownBundleInfo {
    seq: number;
    /** null: being written; the Pi fetches it as it grows (growing-bundle.ts). */
    bytes: number | null;
}

/** What the Pi seals into its up bundle for the relay: its users' upstream accounts. */
export interface SealedAccounts {
    users: Pick<ResolvedUser, 'name' | 'accounts'>[];
    /** The Pi's uplink.relay.slimHeaders (absent from a Pi before it: off). */
    slimHeaders?: SlimHeaders | null;
    /** Down record types the Pi applies beyond the first ones (absent: none; a Pi refuses a type it does not know). */
    applies?: string[];
}

export class PiExchange {
    private queue: Promise<unknown> = Promise.resolve();
    private store: Store | null = null;
    private readonly state: PiStateStore;

    private readonly lockFile: string;
    /** Up bundles prepare() processed, and whether they carried changes, until their exchange. */
    private readonly processedEarly = new Map<number, boolean>();
    /** Down bundles being written that a Pi may fetch as they grow, by seq. */
    private readonly growing = new Map<number, GrowingBundle>();

    /** Takes the Pi's lock (one process at a time works on a Pi: the relay, or `relay exchange`); close() releases it. */
    constructor(
        private readonly home: RelayHome,
        readonly pi: PairedPi,
        private readonly logger: Logger,
        private readonly names: { hostname: string; localDomain: string }
    ) {
        for (const dir of [this.upDir, this.downDir, this.spoolDir]) fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
        this.lockFile = path.join(pi.dir, 'exchange.lock');
        takeLock(this.lockFile, pi.id);
        try {
            this.state = new PiStateStore(pi.dir);
        } catch (err) {
            fs.rmSync(this.lockFile, { force: true });
            throw err;
        }
    }

    get upDir(): string {
        return path.join(this.pi.dir, 'up');
    }

    get downDir(): string {
        return path.join(this.pi.dir, 'down');
    }

    private get spoolDir(): string {
        return path.join(this.pi.dir, 'outbound');
    }

    upFile(seq: number): string {
        return path.join(this.upDir, `${seq}.bundle`);
    }

    downFile(seq: number): string {
        return path.join(this.downDir, `${seq}.bundle`);
    }

    /** Runs `fn` after every exchange of this Pi queued before it. */
    serial<T>(fn: () => Promise<T>): Promise<T> {
        const next = this.queue.then(fn, fn);
        this.queue = next.catch(() => undefined);
        return next;
    }

    /** Whether up bundle `seq` was processed already. */
    processed(seq: number): boolean {
        return this.state.read().upProcessed >= seq;
    }

    close(): void {
        this.store?.close();
        this.store = null;
        this.state.close();
        fs.rmSync(this.lockFile, { force: true });
    }

    /**
     * An up bundle that came as a file (sneakernet): verified whole as the Pi's, then kept as
     * the upload of its seq would be. Returns its seq.
     */
    async adopt(file: string): Promise<number> {
        const { header } = await verifyBundle(file, { signer: this.pi.key });
        if (header.direction !== 'up' || header.pi !== this.pi.id) throw new BundleError('MALFORMED', `this is a ${header.direction} bundle of "${header.pi}", not an up bundle of "${this.pi.id}"`);
        if (!this.processed(header.seq) && !fs.existsSync(this.upFile(header.seq))) {
            const partial = `${this.upFile(header.seq)}.adopting`;
            fs.copyFileSync(file, partial);
            const fd = fs.openSync(partial, 'r+');
            try {
                fs.fsyncSync(fd);
            } finally {
                fs.closeSync(fd);
            }
            fs.renameSync(partial, this.upFile(header.seq));
            await syncDirectory(this.upDir);
        }
        return header.seq;
    }

    private openStore(): Store {
        if (!this.store) {
            this.store = new Store({ dataDir: path.join(this.pi.dir, 'store') });
            this.store.recover();
        }
        return this.store;
    }

    /**
     * The exchange for up bundle `seq` (uploaded in full and verified): see the module comment.
     * `acknowledgeChanges` (a bundle by stick): when the up bundle carried flag changes or
     * deletions, a down bundle is written even with nothing else in it, as its header tells the Pi
     * they were made, so it stops carrying them (online, the exchange's answer tells it).
     * `room`: the bytes the Pi's run may still spend on down bundles (none: no limit).
     * `growing`: the Pi fetches a down bundle as it is written: the answer comes once the new
     * down bundle is started (listed with `bytes: null`, building(seq) follows it), not finished;
     * a bundle sent headers first (two of them) is still answered when both are written.
     */
    exchange(seq: number, options: { acknowledgeChanges?: boolean; room?: number; growing?: boolean } = {}): Promise<DownBundleInfo[]> {
        let announce: ((seq: number) => void) | undefined;
        const announced = new Promise<DownBundleInfo[]>(resolve => {
            if (options.growing) announce = built => resolve([...this.pending(), { seq: built, bytes: null }]);
        });
        let answered = false;
        void announced.then(() => (answered = true));
        const whole = this.serial(async () => {
            const state = this.state.read();
            let carriedChanges = this.processedEarly.get(seq) ?? false;
            this.processedEarly.clear();
            if (seq > state.upProcessed) {
                if (!fs.existsSync(this.upFile(seq))) throw new BundleError('TRUNCATED', `up bundle ${seq} has not been uploaded in full`);
                carriedChanges = await this.process(seq, state);
            }
            await this.buildDown(carriedChanges && options.acknowledgeChanges === true, options.room, announce);
            return this.pending();
        });
        // Failing after the answer went, the bundle's readers are cut (GrowingBundle.fail) and the Pi's next exchange asks again.
        whole.catch((err: Error) => {
            if (answered) this.logger.error({ pi: this.pi.id, up: seq, err: { message: err.message } }, 'writing the down bundle failed');
        });
        return Promise.race([announced, whole]);
    }

    /**
     * Does the provider work of up bundle `seq` (steps 1 to 4) as soon as it is uploaded whole,
     * rather than when the Pi's request for its exchange comes, a round trip later on the slow
     * link (300 ms and more); that exchange then finds it processed, as a request made again
     * after a cut does. A failure is left to that exchange, which processes the bundle again.
     */
    prepare(seq: number): Promise<void> {
        return this.serial(async () => {
            const state = this.state.read();
            if (seq <= state.upProcessed || !fs.existsSync(this.upFile(seq))) return;
            this.processedEarly.set(seq, await this.process(seq, state));
        });
    }

    /** The down bundle `seq` while it is being written (for a Pi that fetches it as it grows). */
    building(seq: number): GrowingBundle | undefined {
        return this.growing.get(seq);
    }

    /** Returns whether the up bundle carried flag changes or deletions (made now, or before). */
    private async process(seq: number, state: PiExchangeState): Promise<boolean> {
        const reader = await BundleReader.open(this.upFile(seq), { signer: this.pi.key });
        if (reader.header.pi !== this.pi.id || reader.header.direction !== 'up' || reader.header.seq !== seq) {
            throw new BundleError('MALFORMED', `the bundle is ${reader.header.direction} ${reader.header.seq} of Pi "${reader.header.pi}", not up ${seq} of "${this.pi.id}"`);
        }
        let users: ResolvedUser[] = [];
        const outbound: (RecordMeta<'outbound'> & { spool: string })[] = [];
        const flagChanges: RecordMeta<'flags'>[] = [];
        const deletions: RecordMeta<'delete'>[] = [];
        const fetchFull: RecordMeta<'fetchFull'>[] = [];
        const needBodies: RecordMeta<'needBody'>[] = [];
        let carriedChanges = false;
        for await (const record of reader.records()) {
            if (record.type === 'credentials') {
                const plain = unseal({ meta: record.meta, body: record.body }, this.home.sealing.privateKey, this.pi.id, seq);
                const sealed = JSON.parse(plain.toString('utf8')) as SealedAccounts;
                users = sealed.users as ResolvedUser[];
                const keep = sealed.slimHeaders?.keepReceived;
                this.state.setSlimHeaders(typeof keep === 'number' && Number.isInteger(keep) && keep >= 1 ? { keepReceived: keep } : null);
                this.state.setAppliesBodyRefs(Array.isArray(sealed.applies) && sealed.applies.includes('bodyRef'));
            } else if (record.type === 'outbound') {
                const spool = path.join(this.spoolDir, `${record.meta.queueId}-${record.meta.attempt}.eml`);
                if (!(answerKey(record.meta.queueId, record.meta.attempt) in state.answers)) fs.writeFileSync(spool, record.body, { mode: 0o600 });
                outbound.push({ ...record.meta, spool });
            } else if (record.type === 'flags' || record.type === 'delete') {
                carriedChanges = true;
                // Carried again from an up bundle processed before: made then.
                if (record.meta.upSeq !== undefined && record.meta.upSeq <= state.upProcessed) continue;
                if (record.type === 'flags') flagChanges.push(record.meta);
                else deletions.push(record.meta);
            } else if (record.type === 'fetchFull') {
                fetchFull.push(record.meta);
            } else if (record.type === 'needBody' && (record.meta.upSeq === undefined || record.meta.upSeq > state.upProcessed)) {
                needBodies.push(record.meta);
            }
        }

        // 2. The Pi's acknowledgement.
        this.acknowledge(state, reader.header.ack);
        // A send the relay was in when it stopped: the provider's answer is unknown.
        for (const entry of Object.values(state.answers)) {
            if (entry.answer === null) entry.answer = { kind: 'unanswered', text: 'interrupted while sending at the relay' };
        }
        this.state.write(state);

        const store = this.openStore();
        // The Pi's changes to synced messages, before the receive pass pushes them.
        const applied = applyPiChanges(store, this.state, flagChanges, deletions);
        if (applied.flags || applied.deletions) this.logger.info({ pi: this.pi.id, up: seq, ...applied }, "the Pi's flag changes and expunges made here");
        // Its requests: stubs to fetch whole (by the receive pass below), bodies to carry again.
        const fetching = queueFetchFull(store, this.state, fetchFull);
        bodiesMissing(this.state, needBodies);
        if (fetching || needBodies.length) this.logger.info({ pi: this.pi.id, up: seq, fetchFull: fetching, needBodies: needBodies.length }, "the Pi's requests taken");
        const recorder = new AnswerRecorder(this.state, state);
        const meter = new WireMeter();
        const ctx: UplinkContext = {
            store,
            logger: this.logger.child({ pi: this.pi.id, up: seq }),
            users: () => users,
            hostname: () => this.names.hostname,
            localDomain: () => this.names.localDomain,
            queue: recorder,
            flagScanIntervalMs: () => 86_400_000,
            tokens: new TokenCache(),
            budget: new RunBudget(meter, Infinity),
            timeouts: PROVIDER_TIMEOUTS
        };
        const targets = selectTargets(users, {});

        // 3. Send.
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const { sendAccount } = require('../../uplink/send') as typeof import('../../uplink/send');
        const unsent = outbound.filter(meta => !(answerKey(meta.queueId, meta.attempt) in state.answers));
        for (const meta of unsent.filter(meta => !targets.some(target => target.account.address.toLowerCase() === meta.account.toLowerCase()))) {
            recorder.record(meta.queueId, meta.attempt, { kind: 'unanswered', text: `the relay was given no credentials for ${meta.account}` });
        }
        for (const target of targets) {
            const entries = unsent.filter(meta => meta.account.toLowerCase() === target.account.address.toLowerCase()).map(meta => queueEntry(meta));
            if (!entries.length) continue;
            const run = new AccountRun(target, meter);
            try {
                await sendAccount(ctx, target.account, entries, run.meter, run);
            } finally {
                run.stopTicking();
            }
        }
        for (const meta of unsent) fs.rmSync(meta.spool, { force: true });

        // 4. Receive.
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const { receiveAccount } = require('../../uplink/receive') as typeof import('../../uplink/receive');
        for (const target of targets) {
            const run = new AccountRun(target, meter);
            try {
                await receiveAccount(ctx, target.user, target.account, target.index, run.meter, run);
            } catch (err) {
                ctx.logger.warn({ account: target.account.address, err: { message: (err as Error).message } }, 'receiving at the relay failed');
            } finally {
                run.stopTicking();
            }
        }
        state.upProcessed = seq;
        this.state.write(state);
        fs.rmSync(this.upFile(seq), { force: true });
        return carriedChanges;
    }

    private acknowledge(state: PiExchangeState, ack: number): void {
        if (ack <= state.downAcked) return;
        state.downAcked = Math.min(ack, state.downBuilt);
        for (const [key, entry] of Object.entries(state.answers)) {
            if (entry.shippedIn !== null && entry.shippedIn <= state.downAcked) delete state.answers[key];
        }
        for (const name of fs.readdirSync(this.downDir)) {
            const seq = Number(/^(\d+)\.bundle$/.exec(name)?.[1] ?? NaN);
            if (seq <= state.downAcked) fs.rmSync(path.join(this.downDir, name), { force: true });
        }
    }

    /**
     * 5. A down bundle with what the Pi has not been sent yet, when there is any (or `always`);
     * two when the new messages, with the bundles still waiting, are more than `room` bytes
     * (raw: what compression saves is not known before): the first carries everything else and
     * a header stub of each message, in the order they came (direct mode's budget order,
     * smallest first), the second the messages.
     */
    private async buildDown(always = false, room?: number, announce?: (seq: number) => void): Promise<void> {
        const state = this.state.read();
        const answers = Object.entries(state.answers).filter(([, entry]) => entry.answer !== null && entry.shippedIn === null);
        const store = this.openStore();
        const changes = downChanges(
            this.state.shipped(),
            store.relayOutbox.links(state.shippedThrough),
            (account, folder) => store.sync.getFolder(account, folder)?.uidValidity ?? null,
            this.state.reuseFloor()
        );
        const fresh = store.relayOutbox.after(state.shippedThrough, DOWN_MESSAGES_PER_BUNDLE);
        // What the Pi asked for whole, and messages behind the cursor it was never told of.
        const wanted = wantedMessages(store, this.state.wanted(), changes.remaps);
        const ids = new Set<number>();
        const messages = [...wanted.messages, ...store.relayOutbox.byIds(changes.unshipped), ...fresh].filter(message => !ids.has(message.id) && ids.add(message.id));
        const bodiesShipped: ShippedBodies = { hashes: [], parts: [] };
        if (!always && !answers.length && !messages.length && !changes.remaps.length && !changes.flags.length) {
            if (changes.forget.length || wanted.settled.length) this.state.commitDown(state, new Map(), changes.forget, { hashes: [], parts: [], settled: wanted.settled });
            return;
        }
        const waiting = this.pending().reduce((sum, bundle) => sum + bundle.bytes, 0);
        // A message over maxMessageSize is a stub here already: it goes as it is.
        const whole = messages.filter(message => !message.stub);
        const headersFirst = room !== undefined && whole.length > 0 && waiting + messages.reduce((sum, message) => sum + message.size, 0) > room;
        const seq = state.downBuilt + 1;
        const records = answers.length + changes.remaps.length + changes.flags.length + messages.length;
        const remapBytes = changes.remaps.reduce((sum, remap) => sum + 8 * remap.pairs.length, 0);
        // Followed by the Pi as it grows, unless headers first (a second bundle follows it).
        let growing: GrowingBundle | null = null;
        let written = 0;
        const writer = await BundleWriter.create(
            this.downFile(seq),
            { format: 1, direction: 'down', pi: this.pi.id, seq, ack: state.upProcessed, createdAt: Date.now() },
            this.home.signing.privateKey,
            {
                // A header stub: a few KB.
                expectedBytes: expectedBytes(headersFirst ? [] : messages, records) + remapBytes + (headersFirst ? 4096 * messages.length : 0),
                onProgress: bytes => {
                    written = bytes;
                    growing?.progress(bytes);
                }
            }
        );
        if (announce && !headersFirst) {
            growing = new GrowingBundle(writer.partialPath, this.downFile(seq));
            growing.progress(written);
            this.growing.set(seq, growing);
            announce(seq);
        }
        try {
            await this.writeDown(writer, { answers, changes, messages, headersFirst, downAcked: state.downAcked, bodiesShipped });
            const finished = await writer.finish();
            if (headersFirst) await this.writeBodies(seq + 1, state.upProcessed, whole, bodiesShipped);
            await syncDirectory(this.downDir);
            for (const [, entry] of answers) entry.shippedIn = seq;
            state.downBuilt = headersFirst ? seq + 1 : seq;
            if (fresh.length) state.shippedThrough = fresh[fresh.length - 1].id;
            const told = new Map<number, ShippedLink>(changes.told);
            for (const message of messages) {
                told.set(message.id, { user: message.user, account: message.account, folder: message.folder, uidValidity: message.uidValidity, uid: message.uid, flags: message.upstreamFlags });
            }
            this.state.commitDown(state, told, changes.forget, { ...bodiesShipped, settled: wanted.settled });
            // Committed: the trailer may go, and the Pi verify and apply the bundle.
            growing?.finish(finished.bytes);
        } catch (err) {
            growing?.fail();
            throw err;
        } finally {
            this.growing.delete(seq);
        }
    }

    /** The records of a down bundle (buildDown); the writer is aborted when one fails. */
    private async writeDown(writer: BundleWriter, down: DownContent): Promise<void> {
        const { answers, changes, messages, headersFirst, bodiesShipped } = down;
        const store = this.openStore();
        try {
            for (const [key, entry] of answers) {
                const [queueId, attempt] = key.split(':').map(Number);
                await writer.add('delivery', { queueId, attempt, answer: entry.answer! });
            }
            // Re-links first: the flags after them name messages by their new UIDs.
            for (const remap of changes.remaps) await writer.add('remap', remap.meta, remapBody(remap.pairs));
            for (const flags of changes.flags) await writer.add('flags', flags);
            for (const message of messages) {
                if (headersFirst && !message.stub) await writer.add('message', { ...messageMeta(message), stub: true }, await headerStub(store.relayOutbox.messageStream(message), message.size));
                else await this.addMessage(writer, message, down.downAcked, bodiesShipped);
            }
        } catch (err) {
            await writer.abort();
            throw err;
        }
    }

    /** The messages whose header stubs went in the bundle before, whole: each takes its stub's place on the Pi. */
    private async writeBodies(seq: number, ack: number, messages: OutboxMessage[], bodiesShipped: ShippedBodies): Promise<void> {
        const writer = await BundleWriter.create(this.downFile(seq), { format: 1, direction: 'down', pi: this.pi.id, seq, ack, createdAt: Date.now() }, this.home.signing.privateKey, {
            expectedBytes: expectedBytes(messages, messages.length)
        });
        try {
            for (const message of messages) await this.addMessage(writer, message, null, bodiesShipped, true);
        } catch (err) {
            await writer.abort();
            throw err;
        }
        await writer.finish();
    }

    /**
     * One message whole; or, against what the Pi holds from bundles it has acknowledged
     * (`downAcked`; null: always whole, as the body after its header stub must be), as a
     * `messageRef` when it holds these very bytes, or as a `bodyRef` (this message's header
     * bytes and where its body lies) when it holds the same body under other header lines. What
     * goes whole is added to `shipped` (a later copy of a rebuilt one refers to the first body
     * again). With the Pi's header slimming on, what goes is the slimmed message
     * (header-slimming.ts). The message is read whole: memory holds one message.
     */
    private async addMessage(writer: BundleWriter, message: OutboxMessage, downAcked: number | null, shipped: ShippedBodies, afterStub = false): Promise<void> {
        const meta = messageMeta(message);
        const stored = Buffer.concat(await this.openStore().relayOutbox.messageStream(message).toArray());
        // The bytes the Pi will hold: hashes and body places are of these, slimmed or not.
        const slim = this.state.slimHeaders();
        const bytes = slim ? slimHeaders(stored, slim) : stored;
        const hash = sha256Hex(bytes);
        const part = bodyPart(bytes, hash);
        if (downAcked !== null) {
            if (this.state.bodyHeld(hash, downAcked)) {
                await writer.add('messageRef', { ...meta, sha256: hash });
                return;
            }
            // Only to a Pi that said it applies them: an older one would refuse the whole bundle.
            const source = part && this.state.appliesBodyRefs() ? this.state.bodySource(part.hash, downAcked) : null;
            if (part && source) {
                const place = { sha256: source.messageHash, offset: source.offset, length: source.length };
                await writer.add('bodyRef', { ...meta, sha256: hash, size: bytes.length, source: place }, bytes.subarray(0, part.offset));
                // Not recorded as held: were the source gone, the Pi's needBody names the source, and a
                // messageRef to this rebuilt copy would be one more round trip before it came whole.
                return;
            }
        }
        await writer.add('message', afterStub ? { ...meta, afterStub } : meta, bytes);
        shipped.hashes.push(hash);
        if (part) shipped.parts.push(part);
    }

    /** Down bundles built and not acknowledged, oldest first. */
    private pending(): (DownBundleInfo & { bytes: number })[] {
        const state = this.state.read();
        const out: (DownBundleInfo & { bytes: number })[] = [];
        for (let seq = state.downAcked + 1; seq <= state.downBuilt; seq++) {
            const stat = fs.statSync(this.downFile(seq), { throwIfNoEntry: false });
            if (stat) out.push({ seq, bytes: stat.size });
        }
        return out;
    }
}

/**
 * A down bundle's bytes before compression, about, for the compressor's window and tables
 * (BundleWriter's expectedBytes): the messages as stored (slimmed or sent by reference they are
 * fewer) and up to a KB of meta a record.
 */
function expectedBytes(messages: readonly OutboxMessage[], records: number): number {
    return 64 * 1024 + messages.reduce((sum, message) => sum + message.size, 0) + 1024 * records;
}

/** A pid lock file; one left by a process that is gone is taken over. */
function takeLock(file: string, pi: string): void {
    for (let attempt = 0; attempt < 2; attempt++) {
        try {
            fs.writeFileSync(file, String(process.pid), { flag: 'wx', mode: 0o600 });
            return;
        } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
            const pid = Number(fs.readFileSync(file, 'utf8')) || 0;
            let alive = pid > 0 && pid !== process.pid;
            try {
                if (alive) process.kill(pid, 0);
            } catch {
                alive = false;
            }
            if (alive) throw new Error(`Pi "${pi}" is being served by process ${pid} (its relay); stop it first`, { cause: err });
            fs.rmSync(file, { force: true });
        }
    }
    throw new Error(`could not take the lock of Pi "${pi}"`);
}

/** A queue entry as uplink/send.ts takes it, for an outbound record (its body in the spool file). */
function queueEntry(meta: RecordMeta<'outbound'> & { spool: string }): QueueEntry & { spool: string } {
    const size = fs.statSync(meta.spool).size;
    return {
        id: meta.queueId,
        userId: 0,
        user: meta.user,
        account: meta.account,
        mailFrom: meta.mailFrom,
        blobHash: '',
        size,
        messageId: null,
        subject: null,
        state: 'queued',
        attempts: meta.attempt - 1,
        nextAttemptAt: null,
        lastError: null,
        createdAt: 0,
        updatedAt: 0,
        recipients: meta.recipients.map(address => ({ address, state: 'pending' as const, lastError: null })),
        spool: meta.spool
    };
}

/**
 * The relay's queue for uplink/send.ts: nothing is due or expires here (that is the Pi's
 * queue's business); a send about to start and the provider's answer are recorded durably, for
 * the down bundle, where the Pi's QueueDelivery makes of them what direct mode would.
 */
class AnswerRecorder implements QueueSink {
    constructor(
        private readonly file: PiStateStore,
        private readonly state: PiExchangeState
    ) {}

    record(queueId: number, attempt: number, answer: DeliveryAnswer | null): void {
        this.state.answers[answerKey(queueId, attempt)] = { answer, shippedIn: null };
        this.file.write(this.state);
    }

    due(): QueueEntry[] {
        return [];
    }

    expire(entries: QueueEntry[]): Promise<{ live: QueueEntry[]; notes: string[] }> {
        return Promise.resolve({ live: entries, notes: [] });
    }

    connected(): void {}

    connectionFailed(entries: QueueEntry[], failure: ConnectionFailure, endpoint: string): Promise<void> {
        for (const entry of entries) this.record(entry.id, entry.attempts + 1, { kind: 'connection', failure: failure.kind, text: failure.text.slice(0, 4096), endpoint });
        return Promise.resolve();
    }

    starting(entry: QueueEntry): void {
        this.record(entry.id, entry.attempts + 1, null);
    }

    answered(entry: QueueEntry, _pending: string[], answer: ProviderAnswer): Promise<AttemptOutcome> {
        const bounded: DeliveryAnswer =
            answer.kind === 'answered'
                ? { kind: 'answered', accepted: answer.accepted, refused: answer.refused.map(refusal => ({ ...refusal, text: refusal.text.slice(0, 4096) })) }
                : { ...answer, text: answer.text.slice(0, 4096) };
        this.record(entry.id, entry.attempts + 1, bounded);
        return Promise.resolve({ sent: [], failed: [], deferredError: null, state: 'sent', nextAttemptAt: null, notes: [] });
    }

    messageStream(entry: QueueEntry): Readable {
        return fs.createReadStream((entry as QueueEntry & { spool: string }).spool);
    }
}
