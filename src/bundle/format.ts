/**
 * The bundle format (docs/relay.md): what a bundle's header and records hold, the bounds every
 * reader enforces, and the error every malformed input ends in. The writer (writer.ts) and the
 * reader (reader.ts) share these definitions and nothing else.
 */
import { z } from 'zod';

/** The first bytes of every bundle. */
export const BUNDLE_MAGIC = Buffer.from('MMBUNDLE', 'latin1');
/** The first bytes of the trailer. */
export const TRAILER_MAGIC = Buffer.from('MMBNDEND', 'latin1');
/** The format this code writes and the only one it reads. */
export const FORMAT_VERSION = 1;
/** magic, u32 trailer version, sha256, Ed25519 signature. */
export const TRAILER_LENGTH = TRAILER_MAGIC.length + 4 + 32 + 64;
/** What the signature covers besides the digest, so a signature over a bundle means nothing elsewhere. */
export const SIGNATURE_CONTEXT = Buffer.from('mailmule-bundle-v1\0', 'latin1');

/** Bounds every reader enforces; a caller may lower them (never raise them past the format's). */
export interface BundleLimits {
    /** Header and each record's meta, in bytes of JSON. */
    maxMetaBytes: number;
    /** Nesting of arrays and objects in any JSON. */
    maxDepth: number;
    /** One record's body. */
    maxBodyBytes: number;
    /** Records in one bundle, the end record not counted. */
    maxRecords: number;
    /** Decompressed bytes of the whole record stream. */
    maxTotalBytes: number;
}

export const FORMAT_LIMITS: BundleLimits = {
    maxMetaBytes: 64 * 1024,
    maxDepth: 16,
    maxBodyBytes: 256 * 1024 * 1024,
    maxRecords: 1_000_000,
    maxTotalBytes: 64 * 1024 * 1024 * 1024
};

/** zstd's window (2^27 = 128 MiB) for writing, and the largest a reader accepts (memory bound on the Pi). */
export const ZSTD_WINDOW_LOG = 27;

/** Why a bundle was refused. */
export type BundleErrorCode =
    /** The input ends before the bundle does: fetch the rest (a resumable transfer was cut). */
    | 'TRUNCATED'
    /** The compressed stream does not decode: damaged. */
    | 'CORRUPT'
    /** The sha256 in the trailer does not match: damaged in transfer or on disk. */
    | 'CHECKSUM'
    /** Intact, but not signed by the expected peer: forged or foreign. Refuse it. */
    | 'SIGNATURE'
    /** A bound of BundleLimits is exceeded. */
    | 'TOO_LARGE'
    /** Not a format version this code reads. */
    | 'VERSION'
    /** Well-formed bytes that do not make a valid bundle (bad magic, JSON, record, direction). */
    | 'MALFORMED';

export class BundleError extends Error {
    constructor(
        readonly code: BundleErrorCode,
        message: string
    ) {
        super(`bundle ${code.toLowerCase()}: ${message}`);
        this.name = 'BundleError';
    }
}

const piId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'expected a Pi id of letters, digits, ".", "_" and "-" (at most 64)');
const seq = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const shortText = z.string().max(4096);
const address = z.string().min(1).max(998);
const flagList = z.array(z.string().min(1).max(256)).max(256);
const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'expected a sha256 in hex');

export const headerSchema = z
    .object({
        format: z.literal(FORMAT_VERSION),
        /** up: Pi to relay; down: relay to Pi. */
        direction: z.enum(['up', 'down']),
        pi: piId,
        /** This bundle's number in its direction, from 1. */
        seq,
        /** The last bundle of the other direction the sender committed in full (0: none). */
        ack: count,
        createdAt: count
    })
    .strict();
export type BundleHeader = z.infer<typeof headerSchema>;

/** Where a message is upstream: what makes a downlink message's identity (store.sync's UpstreamRef). */
const upstreamRef = {
    account: address,
    folder: z.string().min(1).max(1024),
    uidValidity: z.number().int().min(1).max(0xffffffff),
    uid: z.number().int().min(1).max(0xffffffff)
};

/** What every record of a message brought home (down) says of it, whole or by reference. */
const broughtHome = {
    user: z.string().min(1).max(256),
    ...upstreamRef,
    /** Its identity within the account (src/uplink/identity.ts), or null. */
    key: z.string().max(1024).nullable(),
    flags: flagList,
    idate: count,
    /** The local folder it lands in (as direct mode maps it). */
    localPath: z.string().min(1).max(1024),
    stub: z.boolean(),
    /** The body is a note standing in for a message the store cannot hold (uplink/too-complex.ts): left upstream for good, not a stub to fetch. */
    standsIn: z.boolean().optional()
};

/** Record metas, one schema per record type. */
export const recordSchemas = {
    /** A queued message to send (up). Body: the message as queued. Identity: (queueId, attempt). */
    outbound: z
        .object({
            queueId: seq,
            /** The entry's attempt this is (its `attempts` + 1): a delivery answers one attempt. */
            attempt: seq,
            user: z.string().min(1).max(256),
            account: address,
            mailFrom: z.string().max(998),
            recipients: z.array(address).min(1).max(10_000)
        })
        .strict(),
    /**
     * Flags of a local message changed (up) or of an upstream one (down): `flags` is the synced
     * flags the sender's side now has. Up, `add` and `remove` are the change against what the Pi
     * last knew upstream, which the relay applies (as direct mode pushes only the change, so a
     * flag changed upstream meanwhile is kept).
     */
    flags: z.object({ user: z.string().min(1).max(256), ...upstreamRef, flags: flagList, add: flagList.optional(), remove: flagList.optional(), upSeq: seq.optional() }).strict(),
    /**
     * A message deleted locally, to delete upstream (up), or gone upstream (down). Up, `upSeq`
     * (here and in `flags`) is the up bundle that first carried the change: the Pi carries it
     * again until the relay has processed that bundle, and the relay makes it once.
     */
    delete: z.object({ user: z.string().min(1).max(256), ...upstreamRef, upSeq: seq.optional() }).strict(),
    /**
     * The user asked for the whole of a stub (up): the stub is in the user's "Fetch full" folder
     * on the Pi. Carried in every up bundle while it is there; the relay fetches it once.
     */
    fetchFull: z.object({ user: z.string().min(1).max(256), ...upstreamRef }).strict(),
    /**
     * A `messageRef` the Pi could not resolve (up): it no longer holds the body `sha256` names
     * (expunged since, a restored Pi, or it linked a local copy instead). The relay forgets that
     * body for this Pi and sends the message at `ref` again, whole. `upSeq` as in `flags`.
     */
    needBody: z.object({ user: z.string().min(1).max(256), ...upstreamRef, sha256: sha256Hex, upSeq: seq.optional() }).strict(),
    /** A message brought home (down). Body: the message, or its stub. */
    message: z
        .object({
            ...broughtHome,
            /**
             * The whole message after its header stub (headers first, src/relay/server/headers-first.ts):
             * it takes the stub's place, and is not stored when the stub is no longer there (replaced before, or expunged).
             */
            afterStub: z.boolean().optional()
        })
        .strict(),
    /** As `message`, for a body the Pi already holds: `sha256` names it instead of a body. */
    messageRef: z
        .object({
            ...broughtHome,
            sha256: sha256Hex
        })
        .strict(),
    /**
     * As `message`, for a message whose body (the bytes after its header's blank line) the Pi
     * holds already in another message (a list post to two subscribers, with other Received and
     * Delivered-To lines). Body: this message's header bytes, blank line included. The Pi
     * rebuilds the message as those bytes followed by `source.length` bytes at `source.offset`
     * of the message file `source.sha256` names, and takes it only when it is `size` bytes with
     * the SHA-256 `sha256`; a source it does not hold goes back up as `needBody` (with the
     * source's hash), as for `messageRef`.
     */
    bodyRef: z
        .object({
            ...broughtHome,
            sha256: sha256Hex,
            size: count,
            source: z.object({ sha256: sha256Hex, offset: count, length: count }).strict()
        })
        .strict(),
    /** The provider's answer to one outbound record (down). */
    delivery: z
        .object({
            queueId: seq,
            attempt: seq,
            answer: z.discriminatedUnion('kind', [
                z
                    .object({
                        kind: z.literal('answered'),
                        accepted: z.array(address).max(10_000),
                        refused: z.array(z.object({ recipient: address, code: z.number().int(), text: shortText }).strict()).max(10_000)
                    })
                    .strict(),
                z.object({ kind: z.literal('refused'), code: z.number().int(), text: shortText }).strict(),
                z.object({ kind: z.literal('unanswered'), text: shortText }).strict(),
                /** No connection could be had, or the login was refused: nothing was offered. */
                z.object({ kind: z.literal('connection'), failure: z.enum(['authentication', 'dns', 'tls', 'network']), text: shortText, endpoint: z.string().max(1024) }).strict()
            ])
        })
        .strict(),
    /**
     * A folder's UIDVALIDITY changed upstream (down): the relay re-linked its copies as direct
     * mode does (uplink/headers.ts), and the Pi applies the same re-link (store.sync.remap): its
     * messages of the old generation point at their new UIDs, the rest are unlinked. Body: the
     * (old UID, new UID) pairs, each two u32 big-endian.
     */
    remap: z
        .object({
            user: z.string().min(1).max(256),
            account: address,
            folder: z.string().min(1).max(1024),
            oldUidValidity: z.number().int().min(1).max(0xffffffff),
            uidValidity: z.number().int().min(1).max(0xffffffff)
        })
        .strict(),
    /** The Pi's upstream credentials for this run, encrypted to the relay's key (up). Body: the ciphertext. */
    credentials: z.object({ scheme: z.literal('x25519-aes256gcm'), ephemeralKey: z.string().max(128), nonce: z.string().max(64) }).strict()
};

export type RecordType = keyof typeof recordSchemas;
export type RecordMeta<T extends RecordType> = z.infer<(typeof recordSchemas)[T]>;

/** A decoded record: its type, its meta, and its body (empty for types without one). */
export type BundleRecord = { [T in RecordType]: { type: T; meta: RecordMeta<T>; body: Buffer } }[RecordType];

/** The type byte of each record type; 0 is the end record. Never renumber: add. */
export const RECORD_CODES: Record<RecordType, number> = {
    outbound: 1,
    flags: 2,
    delete: 3,
    fetchFull: 4,
    message: 5,
    messageRef: 6,
    delivery: 7,
    credentials: 8,
    remap: 9,
    needBody: 10,
    bodyRef: 11
};
export const END_RECORD_CODE = 0;

export const RECORD_BY_CODE = new Map<number, RecordType>(Object.entries(RECORD_CODES).map(([type, code]) => [code, type as RecordType]));

/** Which records may have a body. */
export const HAS_BODY: ReadonlySet<RecordType> = new Set<RecordType>(['outbound', 'message', 'credentials', 'remap', 'bodyRef']);

/** Which records each direction may carry. */
export const DIRECTION_RECORDS: Record<BundleHeader['direction'], ReadonlySet<RecordType>> = {
    up: new Set<RecordType>(['outbound', 'flags', 'delete', 'fetchFull', 'credentials', 'needBody']),
    down: new Set<RecordType>(['message', 'messageRef', 'bodyRef', 'delivery', 'flags', 'delete', 'remap'])
};

/**
 * How deep `text`'s arrays and objects nest, counted without parsing (so a hostile meta cannot
 * make the parser recurse): brackets inside strings do not count.
 */
export function jsonDepth(text: string): number {
    let depth = 0;
    let deepest = 0;
    let inString = false;
    for (let i = 0; i < text.length; i++) {
        const c = text.charCodeAt(i);
        if (inString) {
            if (c === 0x5c) i++;
            else if (c === 0x22) inString = false;
        } else if (c === 0x22) {
            inString = true;
        } else if (c === 0x7b || c === 0x5b) {
            deepest = Math.max(deepest, ++depth);
        } else if (c === 0x7d || c === 0x5d) {
            depth--;
        }
    }
    return deepest;
}

/** Parses and checks bounded JSON against `schema`; `where` names it in the error. */
export function parseMeta<S extends z.ZodType>(bytes: Buffer, schema: S, limits: BundleLimits, where: string): z.infer<S> {
    if (bytes.length > limits.maxMetaBytes) throw new BundleError('TOO_LARGE', `${where}: ${bytes.length} bytes of JSON, at most ${limits.maxMetaBytes}`);
    const text = bytes.toString('utf8');
    if (jsonDepth(text) > limits.maxDepth) throw new BundleError('TOO_LARGE', `${where}: JSON nested deeper than ${limits.maxDepth}`);
    let value: unknown;
    try {
        value = JSON.parse(text);
    } catch (err) {
        throw new BundleError('MALFORMED', `${where}: not JSON (${(err as Error).message})`);
    }
    const parsed = schema.safeParse(value);
    if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new BundleError('MALFORMED', `${where}: ${issue.path.join('.') || 'value'}: ${issue.message}`);
    }
    return parsed.data;
}

/** The limits in force: the format's, lowered where the caller asks. */
export function effectiveLimits(overrides: Partial<BundleLimits> = {}): BundleLimits {
    const limits = { ...FORMAT_LIMITS };
    for (const key of Object.keys(FORMAT_LIMITS) as (keyof BundleLimits)[]) {
        const wanted = overrides[key];
        if (wanted !== undefined) limits[key] = Math.min(wanted, FORMAT_LIMITS[key]);
    }
    return limits;
}
