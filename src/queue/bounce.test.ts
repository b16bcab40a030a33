import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bouncedRecipients, dsnStatus } from './bounce';

test('dsnStatus: the enhanced status code in the reply, else 4.4.7 for an expiry, else 5.0.0', () => {
    assert.equal(dsnStatus({ error: '550 5.1.1 <x@y>: Recipient address rejected', code: 550 }), '5.1.1');
    assert.equal(dsnStatus({ error: '552-5.2.2 mailbox full', code: 552 }), '5.2.2');
    assert.equal(dsnStatus({ error: '4.4.7 not delivered within the queue lifetime', code: 447 }), '4.4.7');
    assert.equal(dsnStatus({ error: 'expired', code: 447 }), '4.4.7');
    assert.equal(dsnStatus({ error: '550 no such user', code: 550 }), '5.0.0');
    // A version number is not a status code.
    assert.equal(dsnStatus({ error: '554 rejected by filter 15.2.1234.5', code: 554 }), '5.0.0');
});

test('bouncedRecipients: failed, with the reply as diagnostic and the provider as Remote-MTA', () => {
    assert.deepEqual(bouncedRecipients({ account: 'alice@upstream.test' }, [{ address: 'gone@x', error: '550 5.1.1 no such user', code: 550 }]), [
        { address: 'gone@x', status: '5.1.1', diagnostic: '550 5.1.1 no such user', action: 'failed', remoteMta: 'upstream.test' }
    ]);
});
