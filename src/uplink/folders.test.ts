/** Unit tests for which upstream folders `folders:` names mean and where they land locally (src/uplink/folders.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ResolvedAccount } from '../config';
import { chooseFolders, interpretListing, localFolderFor, settleCollision, type ListedEntry, type PersonalNamespace } from './folders';

// The listings below are what the servers answer to imapflow's LIST (and NAMESPACE). On a
// Courier-style server imapflow lists the namespace, LIST "INBOX." "*", which leaves INBOX out.
const COURIER_NS: PersonalNamespace = { prefix: 'INBOX.', delimiter: '.' };
const courier = (...paths: string[]): ListedEntry[] => paths.map(path => ({ path, delimiter: '.', flags: path === 'INBOX.Work' ? ['\\Noselect', '\\HasChildren'] : ['\\HasNoChildren'] }));
const COURIER = interpretListing(courier('INBOX.Sent', 'INBOX.Drafts', 'INBOX.Trash', 'INBOX.Work', 'INBOX.Work.Projects', 'INBOX.Work.Old', 'INBOX.a/b'), COURIER_NS);

const DOVECOT_NS: PersonalNamespace = { prefix: '', delimiter: '/' };
const DOVECOT = interpretListing(
    [
        { path: 'INBOX', delimiter: '/', flags: [] },
        { path: 'Sent', delimiter: '/', flags: ['\\Sent'] },
        { path: 'Junk', delimiter: '/', flags: ['\\Junk'] },
        { path: 'Work', delimiter: '/', flags: ['\\Noselect'] },
        { path: 'Work/Projects', delimiter: '/', flags: [] },
        { path: 'Lists', delimiter: '/', flags: [] },
        { path: 'lists', delimiter: '/', flags: [] }
    ],
    DOVECOT_NS
);

const GMAIL = interpretListing(
    [
        { path: 'INBOX', delimiter: '/', flags: [] },
        { path: '[Gmail]', delimiter: '/', flags: ['\\Noselect'] },
        { path: '[Gmail]/All Mail', delimiter: '/', flags: ['\\All'] },
        { path: '[Gmail]/Sent Mail', delimiter: '/', flags: ['\\Sent'] },
        { path: '[Gmail]/Spam', delimiter: '/', flags: ['\\Junk'] },
        { path: '[Gmail]/Starred', delimiter: '/', flags: ['\\Flagged'] },
        { path: 'Receipts', delimiter: '/', flags: [] }
    ],
    { prefix: '', delimiter: '/' }
);

const first = { name: undefined, address: 'amina@mail.example' } as unknown as ResolvedAccount;
const paths = (names: string[], listing = COURIER) => chooseFolders(names, listing).folders.map(folder => folder.path);
const lands = (listing: ReturnType<typeof interpretListing>, path: string, index = 0, account = first) =>
    localFolderFor(
        account,
        index,
        listing.find(folder => folder.path === path)!
    );

test('Courier: INBOX is there though not listed; the INBOX. prefix is not a level, the "." delimiter becomes "/"', () => {
    assert.equal(lands(COURIER, 'INBOX'), 'INBOX');
    assert.equal(COURIER.filter(folder => folder.path === 'INBOX').length, 1);
    assert.equal(DOVECOT.filter(folder => folder.path === 'INBOX').length, 1, 'listed INBOX is not added twice');
    assert.equal(lands(COURIER, 'INBOX.Work.Projects'), 'Work/Projects');
    assert.equal(lands(COURIER, 'INBOX.Sent'), 'Sent', 'the usual name, without SPECIAL-USE');
    assert.equal(lands(COURIER, 'INBOX.Drafts'), 'Drafts');
    assert.equal(lands(COURIER, 'INBOX.a/b'), 'a_b', 'a "/" inside a level is not a level of ours');
});

test('Dovecot and Gmail: "/" folders keep their path; special-use folders land on our own', () => {
    assert.equal(lands(DOVECOT, 'Work/Projects'), 'Work/Projects');
    assert.equal(lands(DOVECOT, 'Junk'), 'Junk');
    assert.equal(lands(GMAIL, '[Gmail]/Sent Mail'), 'Sent');
    assert.equal(lands(GMAIL, '[Gmail]/Spam'), 'Junk');
    assert.equal(lands(GMAIL, '[Gmail]/All Mail'), '[Gmail]/All Mail', 'attributes without a local folder of their own keep the name');
    assert.equal(lands(GMAIL, '[Gmail]/Starred'), '[Gmail]/Starred');
});

test('a "." server without a prefix, and a recognised name below the top level', () => {
    const listing = interpretListing(
        [
            { path: 'INBOX', delimiter: '.', flags: [] },
            { path: 'Work.Projects', delimiter: '.', flags: [] },
            { path: 'Projects.Sent', delimiter: '.', flags: [] },
            { path: 'Sent Items', delimiter: '.', flags: [] },
            { path: 'Papierkorb', delimiter: '.', flags: [] }
        ],
        { prefix: '', delimiter: '.' }
    );
    assert.equal(lands(listing, 'Work.Projects'), 'Work/Projects');
    assert.equal(lands(listing, 'Projects.Sent'), 'Projects/Sent');
    assert.equal(lands(listing, 'Sent Items'), 'Sent');
    assert.equal(lands(listing, 'Papierkorb'), 'Trash', 'a usual name in another language');
});

test('every other account lands under a folder named after it; "/" in its name is no level', () => {
    const work = { name: 'work', address: 'me@work.example' } as unknown as ResolvedAccount;
    assert.equal(lands(COURIER, 'INBOX', 1, work), 'work/INBOX');
    assert.equal(lands(COURIER, 'INBOX.Work.Projects', 1, work), 'work/Work/Projects');
    assert.equal(lands(GMAIL, '[Gmail]/Sent Mail', 2, work), 'work/Sent');
    assert.equal(lands(COURIER, 'INBOX', 1, { name: undefined, address: 'me@work.example' } as unknown as ResolvedAccount), 'me@work.example/INBOX');
    assert.equal(lands(COURIER, 'INBOX', 1, { name: 'clubs/chess', address: 'x@y.example' } as unknown as ResolvedAccount), 'clubs_chess/INBOX');
});

test('levels a local name cannot hold are mended', () => {
    const listing = interpretListing(
        [
            { path: 'A/ x ', delimiter: '/', flags: [] },
            { path: 'B/..', delimiter: '/', flags: [] }
        ],
        DOVECOT_NS
    );
    assert.equal(lands(listing, 'A/ x '), 'A/x');
    assert.equal(lands(listing, 'B/..'), 'B/_');
});

test('names as people write them: exact path, "/" form, the delimiter form, with or without INBOX', () => {
    for (const name of ['INBOX.Work.Projects', 'Work/Projects', 'Work.Projects', 'INBOX/Work/Projects']) {
        assert.deepEqual(paths([name]), ['INBOX.Work.Projects'], name);
    }
    assert.deepEqual(paths(['inbox', 'Inbox']), ['INBOX'], 'INBOX in any case, once');
    assert.deepEqual(paths(['Work/Projects'], DOVECOT), ['Work/Projects']);
});

test('special-use names: SPECIAL-USE attributes, or the usual names where the server has none', () => {
    assert.deepEqual(paths(['Sent', 'Drafts', 'Trash']), ['INBOX.Sent', 'INBOX.Drafts', 'INBOX.Trash']);
    assert.deepEqual(paths(['Sent', 'Junk', 'Spam'], GMAIL), ['[Gmail]/Sent Mail', '[Gmail]/Spam']);
    assert.deepEqual(paths(['Sent'], DOVECOT), ['Sent']);
});

test('case is ignored only when that leaves one folder', () => {
    assert.deepEqual(paths(['inbox.sent', 'work/projects']), ['INBOX.Sent', 'INBOX.Work.Projects']);
    assert.deepEqual(paths(['Lists', 'lists'], DOVECOT), ['Lists', 'lists'], 'exact spellings win');
    const choice = chooseFolders(['LISTS'], DOVECOT);
    assert.deepEqual(choice.folders, []);
    assert.match(choice.problems[0], /^upstream folder 'LISTS' matches several folders when case is ignored \(Lists, lists\); write it exactly; the account has: /);
});

test('patterns: "Work/*" takes the subtree (not Work itself), "%" one level', () => {
    assert.deepEqual(paths(['Work/*']), ['INBOX.Work.Projects', 'INBOX.Work.Old']);
    assert.deepEqual(paths(['INBOX.Work.*']), ['INBOX.Work.Projects', 'INBOX.Work.Old']);
    assert.deepEqual(paths(['%']).sort(), ['INBOX', 'INBOX.Drafts', 'INBOX.Sent', 'INBOX.Trash', 'INBOX.a/b'].sort(), 'selectable top-level folders');
    assert.deepEqual(paths(['Work/*', 'Work/Projects']), ['INBOX.Work.Projects', 'INBOX.Work.Old'], 'each folder once');
    assert.deepEqual(paths(['work/*']), ['INBOX.Work.Projects', 'INBOX.Work.Old'], 'case ignored when nothing matches exactly');
});

test('a name that matches nothing is reported in plain words, with what the account has', () => {
    const choice = chooseFolders(['INBOX', 'Work/Projekte', 'Archiv/*'], COURIER);
    assert.deepEqual(
        choice.folders.map(folder => folder.path),
        ['INBOX']
    );
    const has = 'INBOX, INBOX.Sent, INBOX.Drafts, INBOX.Trash, INBOX.Work.Projects, INBOX.Work.Old, INBOX.a/b';
    assert.deepEqual(choice.problems, [`upstream folder 'Work/Projekte' not found; the account has: ${has}`, `upstream folder 'Archiv/*' matches no folder; the account has: ${has}`]);
});

test('a folder that holds no messages (\\Noselect) is reported, with the pattern that takes what is below it', () => {
    const choice = chooseFolders(['Work'], COURIER);
    assert.deepEqual(choice.folders, []);
    assert.match(choice.problems[0], /^upstream folder 'Work' holds no messages of its own \(\\Noselect\); 'Work\/\*' would take the folders below it; /);
});

test('collisions: the next free "name (n)"; never "Fetch full" or a name the store refuses', () => {
    const taken = new Set(['Sent', 'Sent (2)']);
    assert.equal(
        settleCollision('Sent', path => taken.has(path)),
        'Sent (3)'
    );
    assert.equal(
        settleCollision('Work', () => false),
        'Work'
    );
    assert.equal(
        settleCollision('Fetch full', () => false),
        'Fetch full (2)'
    );
});
