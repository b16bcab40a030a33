/**
 * The Pi's side of the relay exchange, kept in the data directory (relay/): its signing key
 * (pi-key.pem, 0600) and which bundles it has written and applied (state.json). The state file is
 * replaced whole (written beside it, fsync'd, renamed, the directory fsync'd), so a crash leaves
 * the old state or the new one, never a mix. Losing the last update is safe: every record of a
 * bundle is idempotent, so a bundle applied again changes nothing.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { loadOrCreateSigningKey, type SigningKey } from '../../bundle';

const stateSchema = z
    .object({
        /** The last up bundle written (its seq); the next gets one more. */
        upSeq: z.number().int().min(0),
        /** The last down bundle applied in full: what the next up bundle acknowledges. */
        downApplied: z.number().int().min(0),
        /** An up bundle written for the relay and not yet taken by it (0: none): sent again, resumed, before a new one is written. */
        pendingUp: z.number().int().min(0).default(0),
        /** "queueId:attempt" of the outbound records in pendingUp. */
        pendingKeys: z.array(z.string()).max(1_000_000).default([]),
        /** "queueId:attempt" the relay has taken and will answer: not carried again while the answer is on its way. */
        carried: z.array(z.string()).max(1_000_000).default([]),
        /**
         * Flag changes and deletions written into up bundles the relay has not processed yet (as far
         * as this Pi knows): carried again in every up bundle until it has, so a lost bundle (a USB
         * stick) loses none of them; `seq` is the up bundle that first carried each.
         */
        inFlight: z
            .array(z.object({ seq: z.number().int().min(1), type: z.enum(['flags', 'delete', 'needBody']), meta: z.record(z.string(), z.unknown()) }).strict())
            .max(1_000_000)
            .default([]),
        /**
         * `messageRef` records applied here whose body this Pi no longer held (needBody metas,
         * without upSeq): the message was not stored; the next up bundle asks the relay for it whole.
         */
        missingBodies: z.array(z.record(z.string(), z.unknown())).max(1_000_000).default([])
    })
    .strict();
export type PiRelayState = z.infer<typeof stateSchema>;

export class PiRelayFiles {
    readonly dir: string;

    constructor(dataDir: string) {
        this.dir = path.join(dataDir, 'relay');
    }

    private get stateFile(): string {
        return path.join(this.dir, 'state.json');
    }

    /** This Pi's signing key, created on first use. */
    signingKey(): SigningKey {
        return loadOrCreateSigningKey(path.join(this.dir, 'pi-key.pem'));
    }

    /** The state; a fresh one when there is none. A damaged file is an error, never reset. */
    read(): PiRelayState {
        let text: string;
        try {
            text = fs.readFileSync(this.stateFile, 'utf8');
        } catch (err) {
            if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { upSeq: 0, downApplied: 0, pendingUp: 0, pendingKeys: [], carried: [], inFlight: [], missingBodies: [] };
            throw err;
        }
        let value: unknown;
        try {
            value = JSON.parse(text);
        } catch (err) {
            throw new Error(`${this.stateFile}: not JSON (${(err as Error).message}); it says which bundles were applied: restore it, do not delete it`, { cause: err });
        }
        const parsed = stateSchema.safeParse(value);
        if (!parsed.success) throw new Error(`${this.stateFile}: ${parsed.error.issues[0].message}; restore it, do not delete it`);
        return parsed.data;
    }

    /** Replaces the state, durably. */
    write(state: PiRelayState): void {
        fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
        const partial = `${this.stateFile}.partial`;
        const fd = fs.openSync(partial, 'w', 0o600);
        try {
            fs.writeSync(fd, JSON.stringify(stateSchema.parse(state)) + '\n');
            fs.fsyncSync(fd);
        } finally {
            fs.closeSync(fd);
        }
        fs.renameSync(partial, this.stateFile);
        const dirFd = fs.openSync(this.dir, 'r');
        try {
            fs.fsyncSync(dirFd);
        } finally {
            fs.closeSync(dirFd);
        }
    }
}
