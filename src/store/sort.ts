/**
 * SORT (RFC 5256 section 3, RFC 5957): orders message records by a list of sort criteria.
 * Pure logic over records the store loaded (store.messages.sortRecords).
 */
import { addressKey, baseSubject, displayKey, envelopeSubject, headerValue, messageIds, referenceChain } from './sort-keys';
import type { ThreadMessage } from './threads';

export interface SortRecord {
    uid: number;
    /** INTERNALDATE, ms. */
    idate: number;
    size: number;
    /** The Date header, ms; null when missing or invalid. */
    sentDate: number | null;
    envelope: unknown[];
    /** Raw header lines; loaded for THREAD only. */
    headerLines?: string[];
}

export type SortKey = 'arrival' | 'cc' | 'date' | 'from' | 'size' | 'subject' | 'to' | 'displayfrom' | 'displayto';

export interface SortCriterion {
    key: SortKey;
    reverse: boolean;
}

type KeyValue = number | string;

function keyOf(record: SortRecord, key: SortKey): KeyValue {
    switch (key) {
        case 'arrival':
            return record.idate;
        case 'date':
            // RFC 5256: the sent date, or INTERNALDATE when it cannot be determined.
            return record.sentDate ?? record.idate;
        case 'size':
            return record.size;
        case 'subject':
            return baseSubject(envelopeSubject(record.envelope)).base;
        case 'from':
        case 'to':
        case 'cc':
            return addressKey(record.envelope, key);
        case 'displayfrom':
            return displayKey(record.envelope, 'from');
        case 'displayto':
            return displayKey(record.envelope, 'to');
    }
}

function compare(a: KeyValue, b: KeyValue): number {
    return a < b ? -1 : a > b ? 1 : 0;
}

/** UIDs in sort order; equal keys keep sequence (= UID) order, whatever REVERSE says (RFC 5256 section 3). */
export function sortUids(records: readonly SortRecord[], criteria: readonly SortCriterion[]): number[] {
    const keyed = records.map(record => ({ uid: record.uid, keys: criteria.map(criterion => keyOf(record, criterion.key)) }));
    keyed.sort((a, b) => {
        for (let i = 0; i < criteria.length; i++) {
            const order = compare(a.keys[i], b.keys[i]);
            if (order) return criteria[i].reverse ? -order : order;
        }
        return a.uid - b.uid;
    });
    return keyed.map(item => item.uid);
}

/** What THREAD needs from a record (its header lines must have been loaded). */
export function threadMessageOf(record: SortRecord): ThreadMessage {
    const headerLines = record.headerLines ?? [];
    return {
        uid: record.uid,
        messageId: messageIds(headerValue(headerLines, 'message-id'))[0] ?? null,
        references: referenceChain(headerLines),
        subject: envelopeSubject(record.envelope),
        date: record.sentDate ?? record.idate
    };
}
