/**
 * A paired Pi's exchange state on the relay (pis/<id>/state.json, replaced whole and durably):
 * which up bundles were processed, which down bundles were built and acknowledged, how far the
 * Pi's mail was shipped, and the provider's answer to each outbound (queue id, attempt) until the
 * Pi acknowledges the down bundle that carried it: an outbound record seen again is never sent
 * again. An answer of null marks a send in progress: found at the next exchange, the send was
 * interrupted (the relay crashed) and is answered as unanswered, so the Pi retries it, as direct
 * mode does after a crash.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { RecordMeta } from '../../bundle';
import { writeFileDurably } from '../../files/durable';

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

export function answerKey(queueId: number, attempt: number): string {
    return `${queueId}:${attempt}`;
}

export class PiStateFile {
    private readonly file: string;

    constructor(dir: string) {
        this.file = path.join(dir, 'state.json');
    }

    read(): PiExchangeState {
        try {
            return JSON.parse(fs.readFileSync(this.file, 'utf8')) as PiExchangeState;
        } catch (err) {
            if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { upProcessed: 0, downBuilt: 0, downAcked: 0, shippedThrough: 0, answers: {} };
            throw new Error(`${this.file}: ${(err as Error).message}; restore it from a backup`, { cause: err });
        }
    }

    write(state: PiExchangeState): void {
        writeFileDurably(this.file, JSON.stringify(state));
    }
}
