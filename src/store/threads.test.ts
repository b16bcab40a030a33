/** Unit tests for THREAD's algorithms (src/store/threads.ts, RFC 5256 section 4). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { threadByOrderedSubject, threadByReferences, type ThreadMessage, type ThreadNode } from './threads';

function msg(uid: number, messageId: string | null, references: string[] = [], subject = '', date = 0): ThreadMessage {
    return { uid, messageId, references, subject, date };
}

/** The THREAD response syntax, to compare trees at a glance. */
function show(nodes: ThreadNode[]): string {
    const body = (node: ThreadNode): string => {
        const head = node.uid === null ? [] : [String(node.uid)];
        if (node.children.length === 1 && node.uid !== null) return [...head, body(node.children[0])].join(' ');
        const children = node.children.map(child => `(${body(child)})`).join('');
        return [...head, children].filter(Boolean).join(' ');
    };
    return nodes.map(node => `(${body(node)})`).join('');
}

test('parents from References, children and roots sorted by date', () => {
    const messages = [msg(1, '<1@b>', [], '', 17), msg(2, '<2@b>', ['<1@b>'], '', 15), msg(3, '<3@b>', ['<1@b>'], '', 15), msg(4, '<4@b>', ['<1@b>', '<2@b>'], '', 15)];
    assert.equal(show(threadByReferences(messages)), '(1 (2 4)(3))');
});

test('a reference loop is not linked; the message keeps no parent (imaptest "thread")', () => {
    const messages = [msg(1, '<a@b>', [], '', 17), msg(2, '<b@b>', ['<a@b>', '<c@b>'], '', 15), msg(3, '<c@b>', ['<b@b>'], '', 16)];
    assert.equal(show(threadByReferences(messages)), '(3 2)(1)');
});

test('duplicate and missing Message-IDs get ids of their own', () => {
    assert.equal(show(threadByReferences([msg(1, '<a@b>'), msg(2, '<a@b>')])), '(1)(2)');
    assert.equal(show(threadByReferences([msg(1, '<a@b>'), msg(2, '<b@b>', ['<a@b>']), msg(3, '<c@b>', ['<b@b>']), msg(4, '<b@b>', ['<a@b>'])])), '(1 (2 3)(4))');
});

test('dummies: several children at the root stay under one, a single child is promoted', () => {
    assert.equal(show(threadByReferences([msg(1, null, ['<a@b>']), msg(2, null, ['<a@b>'])])), '((1)(2))');
    assert.equal(show(threadByReferences([msg(1, '<x@b>', ['<gone@b>']), msg(2, '<y@b>', ['<gone2@b>'])])), '(1)(2)');
});

test('roots with the same base subject are gathered; a reply goes under the original', () => {
    assert.equal(show(threadByReferences([msg(1, '<a@b>', [], 'foo'), msg(2, '<b@b>', ['<c@b>'], 'Re: foo')])), '(1 2)');
    assert.equal(show(threadByReferences([msg(1, '<a@b>', [], 'foo', 1), msg(2, '<b@b>', [], 'foo', 2)])), '((1)(2))');
});

test('ORDEREDSUBJECT: grouped by base subject, the first (by date) parents the rest', () => {
    const messages = [msg(1, null, [], 'a', 1), msg(2, null, [], 'b', 2), msg(3, null, [], 'Re: a', 3), msg(4, null, [], 'b', 0), msg(5, null, [], 'a', 5)];
    assert.equal(show(threadByOrderedSubject(messages)), '(4 2)(1 (3)(5))');
});
