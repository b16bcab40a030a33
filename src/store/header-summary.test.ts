/**
 * Unit tests for the header summary (src/store/header-summary.ts): its lines and answers must be
 * exactly what imap-core's own parser and getContents give from the whole message.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { analyseMessage } from './mime';
import { LIST_HEADER_FIELDS, rootHeaderLines, selectSummaryFields, splitSummaryLines, summariseHeader, summaryFieldsValue } from './header-summary';

/** imap-core's answer to BODY[HEADER.FIELDS (names)] from the whole header (indexer.js getContents). */
function imapCoreFields(lines: string[], names: string[]): string {
    if (!names.length) return '\r\n';
    const kept = lines.filter(line => names.includes(line.split(':').shift()!.toLowerCase().trim()));
    return kept.length ? kept.join('\r\n') + '\r\n\r\n' : '\r\n';
}

/** A small seeded generator, so a failure names the case that made it. */
function rng(seed: number): () => number {
    let state = seed >>> 0 || 1;
    return () => {
        state ^= state << 13;
        state ^= state >>> 17;
        state ^= state << 5;
        return (state >>> 0) / 0x100000000;
    };
}

const BREAKS = ['\r\n', '\n', '\r', '\r\r\n', '\r\r'];
const NAMES = ['From', 'to', 'CC', 'Subject', 'Date', 'Message-ID', 'References', 'Received', 'X-Spam', 'Content-Type', 'In-Reply-To', 'Lines', 'DKIM-Signature', 'Bad Name', 'Résumé'];
const VALUES = ['', ' x', ' a@b.example', ' =?utf-8?b?w6k=?=', ' caf\u00e9', ': colon', ' \u00e9t\u00e9', '\t tabbed', ' <id@host>'];

/** A random header (some fields folded, odd line breaks, odd names, 8-bit bytes) and a body. */
function randomMessage(next: () => number): Buffer {
    const pick = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)];
    const lineBreak = next() < 0.7 ? '\r\n' : pick(BREAKS);
    const parts: string[] = [];
    if (next() < 0.05) parts.push(' leading white space' + lineBreak);
    const count = Math.floor(next() * 12);
    for (let index = 0; index < count; index++) {
        let line = `${pick(NAMES)}:${pick(VALUES)}`;
        if (next() < 0.3) line += (next() < 0.5 ? lineBreak : pick(BREAKS)) + pick([' ', '\t', '\u00a0', '  ']) + 'folded' + pick(VALUES);
        if (next() < 0.05) line = 'no colon here';
        parts.push(line + (next() < 0.9 ? lineBreak : pick(BREAKS)));
    }
    if (next() < 0.9) parts.push(lineBreak + 'body line' + lineBreak + lineBreak + 'more');
    return Buffer.from(parts.join(''), 'latin1');
}

test('rootHeaderLines: the lines imap-core parses, for random headers and line breaks, read whole or in pieces', () => {
    const next = rng(17);
    for (let run = 0; run < 3000; run++) {
        const raw = randomMessage(next);
        const expected = analyseMessage(raw).mimeTree.header;
        assert.deepEqual(rootHeaderLines(raw, true), { lines: expected, complete: true }, `case ${run}: ${JSON.stringify(raw.toString('latin1'))}`);
        // Read a piece at a time (as readRootHeaderLines does): a complete answer from a prefix is the same answer.
        for (let cut = 0; cut < raw.length; cut += 1 + Math.floor(next() * 7)) {
            const partial = rootHeaderLines(raw.subarray(0, cut), false);
            if (partial.complete) assert.deepEqual(partial.lines, expected, `case ${run} cut at ${cut}`);
        }
    }
});

test('summaryFieldsValue: what imap-core answers from the whole header, for any list of summary fields', () => {
    const next = rng(5);
    for (let run = 0; run < 2000; run++) {
        const lines = analyseMessage(randomMessage(next)).mimeTree.header;
        const summary = summariseHeader(lines);
        assert.deepEqual(
            splitSummaryLines(summary.lines),
            lines.filter(line => LIST_HEADER_FIELDS.includes(line.split(':').shift()!.toLowerCase().trim()))
        );
        const names = LIST_HEADER_FIELDS.filter(() => next() < 0.3);
        const selection = selectSummaryFields(names);
        assert.equal(selection.covered, true);
        assert.equal(summaryFieldsValue(summary, selection), imapCoreFields(lines, names), `case ${run}`);
    }
});

test('selectSummaryFields: a field outside the summary is not covered', () => {
    assert.equal(selectSummaryFields(['from', 'x-spam-score']).covered, false);
    assert.equal(selectSummaryFields(['from', 'subject']).covered, true);
    assert.equal(selectSummaryFields([]).covered, true);
    assert.equal(LIST_HEADER_FIELDS.length <= 31, true);
});

test('summaryFieldsValue: no field asked for, or none present, is the empty line alone', () => {
    const summary = summariseHeader(['Subject: hi', 'Received: x']);
    assert.equal(summaryFieldsValue(summary, selectSummaryFields([])), '\r\n');
    assert.equal(summaryFieldsValue(summary, selectSummaryFields(['from'])), '\r\n');
    assert.equal(summaryFieldsValue(summary, selectSummaryFields(['subject', 'from'])), 'Subject: hi\r\n\r\n');
});

test('summaryFieldsValue: field names are matched as imap-core matches them (any case, white space around the name, repeated names)', () => {
    const lines = ['FROM: a', 'Subject\t: b\r\n folded', 'tO:c', 'Message-Id :<x@y>', 'Date: d', 'to: e', 'References:'];
    const summary = summariseHeader(lines);
    for (const names of [['subject', 'to', 'to'], ['from'], ['message-id', 'references'], ['date', 'from', 'to'], ['cc']]) {
        assert.equal(summaryFieldsValue(summary, selectSummaryFields(names)), imapCoreFields(lines, names), names.join(' '));
    }
});
