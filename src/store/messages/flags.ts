/** STORE: flag changes, each changed message with its own modseq and journal entry. */
import type { Tx } from '../connection';
import { canonicalFlags } from '../flags';
import type { FlagChange } from '../types';
import { appendJournal, bumpModseq } from './journal';
import { rememberKeywords, selectByUids } from './rows';

export interface FlagUpdate {
    action: 'set' | 'add' | 'remove';
    values: string[];
    /** CONDSTORE's UNCHANGEDSINCE: messages changed after it are left alone and reported in `modified`. */
    unchangedSince?: number;
    ignoreSession?: string;
}

/** Changes the flags of `uids` in a mailbox (whose ownership the caller has checked), inside `tx`. */
export function updateFlags(tx: Tx, mailboxId: number, uids: number[], update: FlagUpdate): { changes: FlagChange[]; modified: number[] } {
    const requested = canonicalFlags(update.values);
    const changes: FlagChange[] = [];
    const modified: number[] = [];
    const rows = selectByUids<{ uid: number; modseq: number; flags: string }>(tx, mailboxId, uids, 'uid, modseq, flags');
    for (const row of rows) {
        const current = JSON.parse(row.flags) as string[];
        if (update.unchangedSince !== undefined && update.unchangedSince > 0 && row.modseq > update.unchangedSince) {
            modified.push(row.uid);
            continue;
        }
        let next: string[];
        if (update.action === 'set') {
            next = requested;
        } else if (update.action === 'add') {
            const lower = new Set(current.map(f => f.toLowerCase()));
            next = [...current, ...requested.filter(f => !lower.has(f.toLowerCase()))];
        } else {
            const remove = new Set(requested.map(f => f.toLowerCase()));
            next = current.filter(f => !remove.has(f.toLowerCase()));
        }
        const same = next.length === current.length && next.every(f => current.some(c => c.toLowerCase() === f.toLowerCase()));
        if (same) {
            changes.push({ uid: row.uid, flags: current, modseq: row.modseq, changed: false });
            continue;
        }
        const modseq = bumpModseq(tx, mailboxId);
        tx.stmt('UPDATE messages SET flags = ?, seen = ?, deleted = ?, modseq = ? WHERE mailbox_id = ? AND uid = ?').run(
            JSON.stringify(next),
            next.includes('\\Seen') ? 1 : 0,
            next.includes('\\Deleted') ? 1 : 0,
            modseq,
            mailboxId,
            row.uid
        );
        rememberKeywords(tx, mailboxId, next);
        appendJournal(tx, mailboxId, { command: 'FETCH', uid: row.uid, modseq, flags: next, ignore: update.ignoreSession });
        changes.push({ uid: row.uid, flags: next, modseq, changed: true });
    }
    return { changes, modified };
}
