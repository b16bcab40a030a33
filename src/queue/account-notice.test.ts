import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accountNoticeText, buildAccountNotice } from './account-notice';

test('accountNoticeText: what happened, that the mail waits (with how much), what to do, and the reply on one line', () => {
    const text = accountNoticeText({ account: 'amina@example.org', providerReply: '535 5.7.8 Error:\r\n authentication failed', waiting: 3 });
    assert.match(text, /refused to let the gateway log in to your account amina@example\.org/);
    assert.match(text, /3 messages you sent could not go out yet/);
    assert.match(text, /Nothing is lost/);
    assert.match(text, /The provider said: 535 5\.7\.8 Error: authentication failed\r\n$/);
    assert.match(accountNoticeText({ account: 'a@b', providerReply: 'x', waiting: 1 }), /1 message you sent/);
});

test('buildAccountNotice: a plain text message to the owner, auto-generated, from the gateway', async () => {
    const raw = (await buildAccountNotice({ to: 'amina@example.org', account: 'amina@example.org', reportingMta: 'pi.lan', providerReply: '535 no', waiting: 2 })).toString('utf8');
    // Unfolded: a long Subject is folded onto a second line.
    const headers = raw.slice(0, raw.indexOf('\r\n\r\n')).replace(/\r\n[ \t]+/g, ' ');
    assert.match(headers, /^To: amina@example\.org$/m);
    assert.match(headers, /^From: Mail Delivery System <mailer-daemon@pi\.lan>$/m);
    assert.match(headers, /^Auto-Submitted: auto-generated$/m);
    assert.match(headers, /^Content-Type: text\/plain; charset=utf-8$/m);
    assert.match(headers, /^Subject: Your mail cannot be sent: the provider refused the login for amina@example\.org$/m);
});
