/**
 * What a relay's store (one per paired Pi, src/relay) hands on to its Pi: the messages the
 * uplink brought home, in the order they were stored, after a cursor (the last message id
 * already put in a down bundle). Read only: the relay's bookkeeping of what was shipped lives in
 * its own state, not in these rows.
 */
import type { Readable } from 'node:stream';
import type { Connection } from './connection';
import type { MessageFiles } from './message-files';
import { STUB_NOTE } from './messages/rows';

/** A message stored from upstream, as a down bundle carries it. */
export interface OutboxMessage {
    /** The row's id: the cursor for the next call. */
    id: number;
    user: string;
    mailboxPath: string;
    account: string;
    folder: string;
    uidValidity: number;
    uid: number;
    key: string | null;
    flags: string[];
    /** What upstream had as its flags when it was stored (the relay's view of what its Pi knows). */
    upstreamFlags: string[];
    idate: number;
    size: number;
    blobHash: string;
    /** A stub: too large to download whole, "Fetch full" brings the rest. */
    stub: boolean;
    /** A note standing in for a message the store cannot hold (STUB_NOTE): not a stub to fetch. */
    standsIn: boolean;
}

/** Where a stored message is upstream now, and its flags there. */
export interface OutboxLink {
    account: string;
    folder: string;
    uidValidity: number;
    uid: number;
    upstreamFlags: string[];
}

interface OutboxDbRow {
    id: number;
    user_name: string;
    path: string;
    upstream_account: string;
    upstream_folder: string;
    upstream_uidvalidity: number;
    upstream_uid: number;
    upstream_key: string | null;
    flags: string;
    upstream_flags: string | null;
    idate: number;
    size: number;
    blob_hash: string;
    stub: number;
}

const OUTBOX_SELECT = `SELECT m.id, u.name AS user_name, mb.path, m.upstream_account, m.upstream_folder, m.upstream_uidvalidity, m.upstream_uid,
        m.upstream_key, m.flags, m.upstream_flags, m.idate, m.size, m.blob_hash, m.stub
    FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id JOIN users u ON u.id = mb.user_id`;

function outboxMessage(row: OutboxDbRow): OutboxMessage {
    return {
        id: row.id,
        user: row.user_name,
        mailboxPath: row.path,
        account: row.upstream_account,
        folder: row.upstream_folder,
        uidValidity: row.upstream_uidvalidity,
        uid: row.upstream_uid,
        key: row.upstream_key,
        flags: JSON.parse(row.flags) as string[],
        upstreamFlags: JSON.parse(row.upstream_flags ?? row.flags) as string[],
        idate: row.idate,
        size: row.size,
        blobHash: row.blob_hash,
        stub: row.stub === 1,
        standsIn: row.stub === STUB_NOTE
    };
}

export class RelayOutbox {
    constructor(
        private readonly db: Connection,
        private readonly files: MessageFiles
    ) {}

    /** Up to `limit` messages from upstream stored after message id `cursor`, oldest first. */
    after(cursor: number, limit: number): OutboxMessage[] {
        return (this.db.stmt(`${OUTBOX_SELECT} WHERE m.id > ? AND m.upstream_uid IS NOT NULL ORDER BY m.id LIMIT ?`).all(cursor, limit) as OutboxDbRow[]).map(outboxMessage);
    }

    /** The message linked to the upstream message `ref` (a whole one before a stub), or null: one the Pi asked for. */
    linkedTo(ref: Pick<OutboxMessage, 'account' | 'folder' | 'uidValidity' | 'uid'>): OutboxMessage | null {
        const row = this.db
            .stmt(`${OUTBOX_SELECT} WHERE m.upstream_account = ? AND m.upstream_folder = ? AND m.upstream_uidvalidity = ? AND m.upstream_uid = ? ORDER BY m.stub, m.id LIMIT 1`)
            .get(ref.account, ref.folder, ref.uidValidity, ref.uid) as OutboxDbRow | undefined;
        return row ? outboxMessage(row) : null;
    }

    /** The messages with these ids that are still here and linked upstream, in the order asked. */
    byIds(ids: readonly number[]): OutboxMessage[] {
        const one = this.db.stmt(`${OUTBOX_SELECT} WHERE m.id = ? AND m.upstream_uid IS NOT NULL`);
        return ids.flatMap(id => {
            const row = one.get(id) as OutboxDbRow | undefined;
            return row ? [outboxMessage(row)] : [];
        });
    }

    /**
     * Where each message with an id up to `through` is upstream now (null: unlinked, as after a
     * UIDVALIDITY reset it matched nothing) and what upstream has as its flags; a message not in
     * the map is gone (expunged here). The relay compares this with what it has shipped.
     */
    links(through: number): Map<number, OutboxLink | null> {
        const rows = this.db.stmt('SELECT id, upstream_account, upstream_folder, upstream_uidvalidity, upstream_uid, upstream_flags, flags FROM messages WHERE id <= ?').all(through) as (Pick<
            OutboxDbRow,
            'id' | 'flags' | 'upstream_flags'
        > & {
            upstream_account: string | null;
            upstream_folder: string | null;
            upstream_uidvalidity: number | null;
            upstream_uid: number | null;
        })[];
        const out = new Map<number, OutboxLink | null>();
        for (const row of rows) {
            out.set(
                row.id,
                row.upstream_uid === null
                    ? null
                    : {
                          account: row.upstream_account!,
                          folder: row.upstream_folder!,
                          uidValidity: row.upstream_uidvalidity!,
                          uid: row.upstream_uid,
                          upstreamFlags: JSON.parse(row.upstream_flags ?? row.flags) as string[]
                      }
            );
        }
        return out;
    }

    /** The message's bytes as a stream. */
    messageStream(message: Pick<OutboxMessage, 'blobHash'>): Readable {
        return this.files.createReadStream(message.blobHash);
    }
}
