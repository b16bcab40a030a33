import { test } from 'node:test';
import assert from 'node:assert/strict';
import { messageIdOf } from './message-id';

test('messageIdOf: the <…> token, lower-cased, from a header field as BODY[HEADER.FIELDS] returns it', () => {
    assert.equal(messageIdOf(Buffer.from('Message-ID: <ABC.123@Example.ORG>\r\n\r\n')), '<abc.123@example.org>');
    assert.equal(messageIdOf('message-id:<x@y>\r\n'), '<x@y>');
});

test('messageIdOf: a folded field is unfolded', () => {
    assert.equal(messageIdOf('Message-ID:\r\n <folded@example.org>\r\n\r\n'), '<folded@example.org>');
    assert.equal(messageIdOf('Subject: hi\r\nMessage-Id:\r\n\t<tab-folded@example.org>\r\nTo: b@c\r\n'), '<tab-folded@example.org>');
});

test('messageIdOf: a bare id gets its angle brackets; comments around the id are dropped', () => {
    assert.equal(messageIdOf('Message-ID: bare@example.org\r\n'), '<bare@example.org>');
    assert.equal(messageIdOf('Message-ID: (sent by a laptop) <c@d> (really)\r\n'), '<c@d>');
});

test('messageIdOf: the field itself, not one whose name ends the same way or a mention in another field', () => {
    const headers = ['X-Original-Message-ID: <not-this@x>', 'Subject: about message-id: <nor-this@x>', 'Message-ID: <this@x>', ''].join('\r\n');
    assert.equal(messageIdOf(headers), '<this@x>');
});

test('messageIdOf: null when there is no field, or it is empty', () => {
    assert.equal(messageIdOf(undefined), null);
    assert.equal(messageIdOf(null), null);
    assert.equal(messageIdOf(Buffer.alloc(0)), null);
    assert.equal(messageIdOf('Subject: no id\r\n\r\n'), null);
    assert.equal(messageIdOf('Message-ID:   \r\n\r\n'), null);
    // An empty field does not take the next field's value.
    assert.equal(messageIdOf('Message-ID:\r\nIn-Reply-To: <other@x>\r\n'), null);
});
