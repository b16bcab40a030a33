/** Unit tests for where an upstream folder lands locally (localFolderFor in src/uplink/folders.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ResolvedAccount, ResolvedUser } from '../config';
import { localFolderFor } from './folders';

const user = { name: 'amina', accounts: [] } as unknown as ResolvedUser;
const account = (name: string, address = 'amina@mail.example') => ({ name, address }) as unknown as ResolvedAccount;
const first = account('amina@mail.example');
const land = (path: string, specialUse: string | null = null, index = 0, of = first) => localFolderFor(user, of, index, path, specialUse);

test('the first account: its INBOX is the INBOX, in any case', () => {
    assert.equal(land('INBOX'), 'INBOX');
    assert.equal(land('inbox'), 'INBOX');
});

test("special-use folders (RFC 6154) land on mailmule's own, whatever the provider calls them", () => {
    assert.equal(land('[Gmail]/Sent Mail', '\\Sent'), 'Sent');
    assert.equal(land('Gesendete Objekte', '\\SENT'), 'Sent');
    assert.equal(land('Entwürfe', '\\Drafts'), 'Drafts');
    assert.equal(land('Papierkorb', '\\Trash'), 'Trash');
    assert.equal(land('Bulk Mail', '\\Junk'), 'Junk');
    assert.equal(land('All old', '\\Archive'), 'Archive');
});

test('the special-use attribute wins over the name', () => {
    assert.equal(land('Trash', '\\Archive'), 'Archive');
});

test('attributes without a local folder of their own keep the upstream name', () => {
    assert.equal(land('[Gmail]/All Mail', '\\All'), '[Gmail]/All Mail');
    assert.equal(land('[Gmail]/Starred', '\\Flagged'), '[Gmail]/Starred');
});

test('without attributes, common top-level names are recognised, in any case', () => {
    assert.equal(land('Sent Items'), 'Sent');
    assert.equal(land('sent messages'), 'Sent');
    assert.equal(land('Deleted Items'), 'Trash');
    assert.equal(land('SPAM'), 'Junk');
    assert.equal(land('Drafts'), 'Drafts');
});

test('a recognised name below the top level is an ordinary folder', () => {
    assert.equal(land('Projects/Sent'), 'Projects/Sent');
    assert.equal(land('Projects/Trash'), 'Projects/Trash');
    assert.equal(land('Projects'), 'Projects');
});

test('every other account lands under a folder named after it; "/" in the name cannot make more levels', () => {
    const work = account('work', 'me@work.example');
    assert.equal(land('INBOX', null, 1, work), 'work/INBOX');
    assert.equal(land('Gesendet', '\\Sent', 1, work), 'work/Sent');
    assert.equal(land('Projects/Sent', null, 2, work), 'work/Projects/Sent');
    assert.equal(land('INBOX', null, 1, account('', 'me@work.example')), 'me@work.example/INBOX');
    assert.equal(land('INBOX', null, 1, account('clubs/chess')), 'clubs_chess/INBOX');
});
