/**
 * A paired Pi's exchange state on the relay, in its own SQLite database (pis/<id>/relay.sqlite;
 * WAL, synchronous FULL, owner only), checked whole with integrity_check when opened: a damaged
 * one is refused with what to do, never reset, as the gateway's store is.
 *
 * - `exchange`: which up bundles were processed, which down bundles were built and
 *   acknowledged, how far the Pi's mail was shipped.
 * - `answers`: the provider's answer to each outbound (queue id, attempt) until the Pi
 *   acknowledges the down bundle that carried it: an outbound record seen again is never sent
 *   again. An answer of null marks a send in progress: found at the next exchange, the send was
 *   interrupted (the relay crashed) and is answered as unanswered, so the Pi retries it, as
 *   direct mode does after a crash.
 * - `shipped`: for each message of the Pi's store here that is in a down bundle, where it was
 *   upstream and what flags it had there as the Pi was told: the next down bundle carries what
 *   changed since (flags, a re-link after a UIDVALIDITY reset).
 * - `bodies`: the SHA-256 of each message body shipped whole, with the down bundle that carried
 *   it: once the Pi has acknowledged that bundle it holds the body, and a later message with the
 *   same bytes goes down as a `messageRef`. A body the Pi says it no longer holds (needBody) is
 *   forgotten.
 * - `body_parts`: for each message shipped whole, where its body (the bytes after the header's
 *   blank line) lies: the message's hash, offset and length, by the body's SHA-256. A later
 *   message with the same body under other header lines goes down as a `bodyRef` once the Pi
 *   has acknowledged that bundle (body-refs.ts). Forgotten with the message it lies in.
 * - `wanted`: messages the Pi asked for by where they are upstream, to carry (again) whole: one
 *   whose body it no longer held, and a stub it asked for in "Fetch full" (`whole`: once it is
 *   whole here).
 * - `meta` `slim_keep_received`: the Pi's header slimming (uplink.relay.slimHeaders, as its last
 *   up bundle with credentials said; 0: off), for the down bundles built after it; `body_refs`:
 *   whether it said it applies `bodyRef` records (1), as a Pi before them refuses a bundle with one.
 * - `meta` `reuse_floor`: message ids up to it were shipped before `shipped` existed (a
 *   first-slice relay): they are never taken for an id SQLite gave again (synced-changes.ts).
 *
 * A first-slice relay's state.json is taken over once (and renamed state.json.imported).
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { RecordMeta } from '../../bundle';
import type { UpstreamRef } from '../../store';
import type { BodyPart } from './body-refs';
import type { SlimHeaders } from './header-slimming';

export type DeliveryAnswer = RecordMeta<'delivery'>['answer'];

export interface PiExchangeState {
    /** The last up bundle processed. */
    upProcessed: number;
    /** The last down bundle built. */
    downBuilt: number;
    /** The last down bundle the Pi acknowledged (applied in full). */
    downAcked: number;
    /** The last message id of the Pi's store here that is in a down bundle. */
    shippedThrough: number;
    /** "queueId:attempt" → the answer (null: being sent) and the down bundle carrying it (null: none yet). */
    answers: Record<string, { answer: DeliveryAnswer | null; shippedIn: number | null }>;
}

/** Where a shipped message was upstream as the Pi was told, and its flags there. */
export interface ShippedLink {
    user: string;
    account: string;
    folder: string;
    uidValidity: number;
    uid: number;
    flags: string[];
}

export function answerKey(queueId: number, attempt: number): string {
    return `${queueId}:${attempt}`;
}

const SCHEMA = `
    CREATE TABLE IF NOT EXISTS exchange (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        up_processed INTEGER NOT NULL, down_built INTEGER NOT NULL, down_acked INTEGER NOT NULL, shipped_through INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS answers (
        queue_id INTEGER NOT NULL, attempt INTEGER NOT NULL, answer TEXT, shipped_in INTEGER,
        PRIMARY KEY (queue_id, attempt)
    );
    CREATE TABLE IF NOT EXISTS shipped (
        message_id INTEGER PRIMARY KEY, user TEXT NOT NULL,
        account TEXT NOT NULL, folder TEXT NOT NULL, uid_validity INTEGER NOT NULL, uid INTEGER NOT NULL, flags TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS shipped_upstream ON shipped (account, folder, uid_validity, uid);
    CREATE TABLE IF NOT EXISTS bodies (hash TEXT PRIMARY KEY, shipped_in INTEGER NOT NULL) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS body_parts (
        body_hash TEXT PRIMARY KEY, message_hash TEXT NOT NULL, body_offset INTEGER NOT NULL, body_length INTEGER NOT NULL, shipped_in INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS body_parts_message ON body_parts (message_hash);
    CREATE TABLE IF NOT EXISTS wanted (
        account TEXT NOT NULL, folder TEXT NOT NULL, uid_validity INTEGER NOT NULL, uid INTEGER NOT NULL, whole INTEGER NOT NULL,
        PRIMARY KEY (account, folder, uid_validity, uid)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
`;

interface ShippedDbRow {
    message_id: number;
    user: string;
    account: string;
    folder: string;
    uid_validity: number;
    uid: number;
    flags: string;
}

function linkFromRow(row: ShippedDbRow): ShippedLink {
    return { user: row.user, account: row.account, folder: row.folder, uidValidity: row.uid_validity, uid: row.uid, flags: JSON.parse(row.flags) as string[] };
}

export class PiStateStore {
    readonly file: string;
    private readonly db: Database.Database;

    /** Opens (or creates) the state of the Pi whose directory is `dir`; throws, naming the file and what to do, when it is damaged. */
    constructor(dir: string) {
        this.file = path.join(dir, 'relay.sqlite');
        let db: Database.Database | null = null;
        try {
            db = new Database(this.file);
            fs.chmodSync(this.file, 0o600);
            const check = String(db.pragma('integrity_check', { simple: true }));
            if (check !== 'ok') throw new Error(`integrity_check: ${check}`);
            db.pragma('journal_mode = WAL');
            db.pragma('synchronous = FULL');
            db.exec(SCHEMA);
        } catch (err) {
            db?.close();
            throw new Error(
                `${this.file}: the relay's state of this Pi is damaged (${(err as Error).message}); stop the relay and restore ${dir} from a backup. Do not delete it: it says which bundles the Pi has acknowledged and which of its messages were sent`,
                { cause: err }
            );
        }
        this.db = db;
        this.takeOverStateFile(dir);
    }

    read(): PiExchangeState {
        const row = this.db.prepare('SELECT up_processed, down_built, down_acked, shipped_through FROM exchange WHERE id = 1').get() as
            { up_processed: number; down_built: number; down_acked: number; shipped_through: number } | undefined;
        const answers: PiExchangeState['answers'] = {};
        for (const answer of this.db.prepare('SELECT queue_id, attempt, answer, shipped_in FROM answers').all() as {
            queue_id: number;
            attempt: number;
            answer: string | null;
            shipped_in: number | null;
        }[]) {
            answers[answerKey(answer.queue_id, answer.attempt)] = { answer: answer.answer === null ? null : (JSON.parse(answer.answer) as DeliveryAnswer), shippedIn: answer.shipped_in };
        }
        return {
            upProcessed: row?.up_processed ?? 0,
            downBuilt: row?.down_built ?? 0,
            downAcked: row?.down_acked ?? 0,
            shippedThrough: row?.shipped_through ?? 0,
            answers
        };
    }

    /** Replaces the state (the answers with it), in one commit. */
    write(state: PiExchangeState): void {
        this.db.transaction(() => this.writeInTransaction(state))();
    }

    /** Every shipped message's link, by the id of its row in the Pi's store here. */
    shipped(): Map<number, ShippedLink> {
        const rows = this.db.prepare('SELECT message_id, user, account, folder, uid_validity, uid, flags FROM shipped').all() as ShippedDbRow[];
        return new Map(rows.map(row => [row.message_id, linkFromRow(row)]));
    }

    /** The shipped message at `ref` upstream, as the Pi was told, or null. */
    shippedAt(ref: Pick<ShippedLink, 'account' | 'folder' | 'uidValidity' | 'uid'>): { id: number; link: ShippedLink } | null {
        const row = this.db
            .prepare('SELECT message_id, user, account, folder, uid_validity, uid, flags FROM shipped WHERE account = ? AND folder = ? AND uid_validity = ? AND uid = ?')
            .get(ref.account, ref.folder, ref.uidValidity, ref.uid) as ShippedDbRow | undefined;
        return row ? { id: row.message_id, link: linkFromRow(row) } : null;
    }

    /** Records what the Pi was told of one shipped message (as a down bundle or the Pi's own up bundle says). */
    setShipped(messageId: number, link: ShippedLink): void {
        this.db
            .prepare('INSERT OR REPLACE INTO shipped (message_id, user, account, folder, uid_validity, uid, flags) VALUES (?, ?, ?, ?, ?, ?, ?)')
            .run(messageId, link.user, link.account, link.folder, link.uidValidity, link.uid, JSON.stringify(link.flags));
    }

    /**
     * A down bundle built: the state and what it told the Pi of each message (`forget`: gone
     * here, or unlinked: nothing more to tell), in one commit; with `bodies`, the hashes of the
     * messages it carried whole (or rebuilt from a body part), where the bodies it carried whole
     * lie (`parts`), and the requests it settled (`settled`).
     */
    commitDown(state: PiExchangeState, told: Map<number, ShippedLink>, forget: number[], bodies?: { hashes: string[]; parts?: BodyPart[]; settled: UpstreamRef[] }): void {
        this.db.transaction(() => {
            this.writeInTransaction(state);
            // Forgotten first: an id SQLite gave again to another message is told of anew.
            const remove = this.db.prepare('DELETE FROM shipped WHERE message_id = ?');
            for (const id of forget) remove.run(id);
            for (const [id, link] of told) this.setShipped(id, link);
            const shippedBody = this.db.prepare('INSERT OR IGNORE INTO bodies (hash, shipped_in) VALUES (?, ?)');
            for (const hash of bodies?.hashes ?? []) shippedBody.run(hash, state.downBuilt);
            // The first place a body was shipped in stays its place: a reference to it is already on its way.
            const shippedPart = this.db.prepare('INSERT OR IGNORE INTO body_parts (body_hash, message_hash, body_offset, body_length, shipped_in) VALUES (?, ?, ?, ?, ?)');
            for (const part of bodies?.parts ?? []) shippedPart.run(part.hash, part.messageHash, part.offset, part.length, state.downBuilt);
            const settled = this.db.prepare('DELETE FROM wanted WHERE account = ? AND folder = ? AND uid_validity = ? AND uid = ?');
            for (const ref of bodies?.settled ?? []) settled.run(ref.account, ref.folder, ref.uidValidity, ref.uid);
        })();
    }

    /** Whether the Pi holds the body with this SHA-256: shipped whole in a down bundle it has acknowledged (`downAcked`). */
    bodyHeld(hash: string, downAcked: number): boolean {
        return this.db.prepare('SELECT 1 FROM bodies WHERE hash = ? AND shipped_in <= ?').get(hash, downAcked) !== undefined;
    }

    /**
     * Where the Pi holds a body with this SHA-256 (in a message shipped whole in a down bundle it
     * has acknowledged), or null.
     */
    bodySource(bodyHash: string, downAcked: number): BodyPart | null {
        const row = this.db.prepare('SELECT message_hash, body_offset, body_length FROM body_parts WHERE body_hash = ? AND shipped_in <= ?').get(bodyHash, downAcked) as
            { message_hash: string; body_offset: number; body_length: number } | undefined;
        return row ? { hash: bodyHash, messageHash: row.message_hash, offset: row.body_offset, length: row.body_length } : null;
    }

    /**
     * The Pi no longer holds the message file with this SHA-256 (needBody, for a `messageRef` or
     * the source of a `bodyRef`): forgotten, with the bodies that lay in it, and the message at
     * `ref` wanted whole, in one commit.
     */
    bodyMissing(hash: string, ref: UpstreamRef): void {
        this.db.transaction(() => {
            this.db.prepare('DELETE FROM bodies WHERE hash = ?').run(hash);
            this.db.prepare('DELETE FROM body_parts WHERE message_hash = ?').run(hash);
            this.want(ref, false);
        })();
    }

    /** The Pi wants the message at `ref` carried whole (again); `whole`: once it is whole here ("Fetch full"). */
    want(ref: UpstreamRef, whole: boolean): void {
        this.db
            .prepare(
                `INSERT INTO wanted (account, folder, uid_validity, uid, whole) VALUES (?, ?, ?, ?, ?)
                 ON CONFLICT DO UPDATE SET whole = max(whole, excluded.whole)`
            )
            .run(ref.account, ref.folder, ref.uidValidity, ref.uid, whole ? 1 : 0);
    }

    /** What the Pi wants carried whole, in upstream order. */
    wanted(): (UpstreamRef & { whole: boolean })[] {
        const rows = this.db.prepare('SELECT account, folder, uid_validity, uid, whole FROM wanted').all() as {
            account: string;
            folder: string;
            uid_validity: number;
            uid: number;
            whole: number;
        }[];
        return rows.map(row => ({ account: row.account, folder: row.folder, uidValidity: row.uid_validity, uid: row.uid, whole: row.whole !== 0 }));
    }

    /** Message ids up to this one were shipped before `shipped` kept them (0: none). */
    reuseFloor(): number {
        return (this.db.prepare("SELECT value FROM meta WHERE key = 'reuse_floor'").pluck().get() as number | undefined) ?? 0;
    }

    /** The header slimming the Pi asks for (header-slimming.ts), or null: none. */
    slimHeaders(): SlimHeaders | null {
        const keep = (this.db.prepare("SELECT value FROM meta WHERE key = 'slim_keep_received'").pluck().get() as number | undefined) ?? 0;
        return keep > 0 ? { keepReceived: keep } : null;
    }

    /** Whether the Pi applies `bodyRef` records (its last up bundle with credentials said so). */
    appliesBodyRefs(): boolean {
        return this.db.prepare("SELECT value FROM meta WHERE key = 'body_refs'").pluck().get() === 1;
    }

    setAppliesBodyRefs(applies: boolean): void {
        this.db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('body_refs', ?)").run(applies ? 1 : 0);
    }

    setSlimHeaders(slim: SlimHeaders | null): void {
        this.db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('slim_keep_received', ?)").run(slim?.keepReceived ?? 0);
    }

    close(): void {
        this.db.close();
    }

    private writeInTransaction(state: PiExchangeState): void {
        this.db
            .prepare(
                `INSERT INTO exchange (id, up_processed, down_built, down_acked, shipped_through) VALUES (1, ?, ?, ?, ?)
                 ON CONFLICT (id) DO UPDATE SET up_processed = excluded.up_processed, down_built = excluded.down_built,
                    down_acked = excluded.down_acked, shipped_through = excluded.shipped_through`
            )
            .run(state.upProcessed, state.downBuilt, state.downAcked, state.shippedThrough);
        this.db.prepare('DELETE FROM answers').run();
        const insert = this.db.prepare('INSERT INTO answers (queue_id, attempt, answer, shipped_in) VALUES (?, ?, ?, ?)');
        for (const [key, entry] of Object.entries(state.answers)) {
            const [queueId, attempt] = key.split(':').map(Number);
            insert.run(queueId, attempt, entry.answer === null ? null : JSON.stringify(entry.answer), entry.shippedIn);
        }
    }

    /** A first-slice relay kept this in state.json: taken over once, the file renamed. */
    private takeOverStateFile(dir: string): void {
        const old = path.join(dir, 'state.json');
        let text: string;
        try {
            text = fs.readFileSync(old, 'utf8');
        } catch (err) {
            if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
            throw err;
        }
        const state = JSON.parse(text) as PiExchangeState;
        this.db.transaction(() => {
            this.writeInTransaction(state);
            this.db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('reuse_floor', ?)").run(state.shippedThrough);
        })();
        fs.renameSync(old, `${old}.imported`);
    }
}
