/**
 * Unit test for imap-core's getMessageRange (patch 130: each range found by binary search in the
 * session's ascending UID list): the same messages as reading the sequence set by its definition
 * (RFC 3501 9, sequence-set; `*` is the largest UID or sequence number in use).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const imapTools = require('@zone-eu/wildduck/imap-core/lib/imap-tools.js') as { getMessageRange(uidList: number[], range: string, isUid: boolean): number[] };

/** The messages of `range` by definition: every UID (or the UID of every sequence number) in one of its parts, ascending. */
function byDefinition(uidList: number[], range: string, isUid: boolean): number[] {
    if (!uidList.length) return [];
    const star = isUid ? uidList[uidList.length - 1] : uidList.length;
    const bounds = range.split(',').map(part => {
        const [from, to = from] = part.split(':').map(value => (value === '*' ? star : Number(value)));
        return [Math.min(from, to), Math.max(from, to)];
    });
    const inRange = (value: number) => bounds.some(([low, high]) => value >= low && value <= high);
    return uidList.filter((uid, index) => inRange(isUid ? uid : index + 1));
}

test('getMessageRange: UID and sequence sets give the messages of their definition', () => {
    let state = 7;
    const next = (limit: number) => {
        state = (state * 1103515245 + 12345) % 2147483648;
        return state % limit;
    };
    for (let run = 0; run < 2000; run++) {
        const uidList: number[] = [];
        for (let uid = 1 + next(3), count = next(40); uidList.length < count; uid += 1 + next(4)) uidList.push(uid);
        const top = (uidList[uidList.length - 1] ?? 10) + 3;
        const parts: string[] = [];
        for (let count = 1 + next(4); parts.length < count;) {
            const value = () => (next(6) === 0 ? '*' : String(1 + next(top)));
            parts.push(next(2) ? value() : `${value()}:${value()}`);
        }
        const range = parts.join(',');
        for (const isUid of [true, false]) {
            assert.deepEqual(imapTools.getMessageRange(uidList, range, isUid), byDefinition(uidList, range, isUid), `${JSON.stringify(uidList)} ${isUid ? 'UID ' : ''}${range}`);
        }
    }
});
