/**
 * Upstream folders: which ones an account's `folders:` names mean, and where each lands locally.
 * Pure functions over the account's LIST answer and its personal namespace (NAMESPACE), so the
 * same rules hold on every server (docs/folders.md says them in words, with examples):
 *
 * - A folder's levels are its server path without the personal namespace prefix ("INBOX." on
 *   Courier-style servers), split on the server's hierarchy delimiter ("." or "/"): Courier's
 *   "INBOX.Work.Projects", Dovecot's "Work/Projects" and a "Work.Projects" on a server with "."
 *   and no prefix are all ["Work", "Projects"]. INBOX is ["INBOX"] everywhere.
 * - Locally the levels are joined with mailmule's own delimiter "/": "Work/Projects". A level a
 *   local name cannot hold is mended: "/" inside it becomes "_" (it is not a level of ours),
 *   white space around it is dropped, and an empty, "." or ".." level becomes "_".
 * - The user's first account maps to the top level: its INBOX is the INBOX, its special-use
 *   folders (\Sent, \Drafts, \Trash, \Junk, \Archive, or without SPECIAL-USE a top-level folder
 *   with one of the usual names) land on mailmule's own. Every other account appears under a
 *   folder named after the account's `name` (its address when unnamed): "work/INBOX", …
 * - A `folders:` name is matched, in this order, as: the server's exact path; its levels written
 *   with "/" (or with the server's delimiter), with or without the namespace prefix; a special-use
 *   name (Sent, Drafts, Trash, Junk, Archive); then the same ignoring case, when that leaves a single
 *   folder (a server that tells "Work" from "work" needs the exact spelling). A name with `*` or
 *   `%` is a LIST-style pattern ("Work/*": every folder below Work). A name that matches nothing
 *   is reported, with what the account has.
 *
 * Where two upstream folders would land on one local path, the first keeps it and the next gets
 * " (2)" (and so on); the choice is kept (sync_folders.local_path), so it does not change later.
 */
import type { ResolvedAccount } from '../config';
import { normaliseMailboxPath, storeErrorCode, type MailboxRow, type Store } from '../store';

/** Moving a stub here asks the next run to download the whole message. */
export const FETCH_FULL_FOLDER = 'Fetch full';

/** mailmule's own special-use folders, by attribute. */
const SPECIAL: Record<string, string> = {
    '\\sent': 'Sent',
    '\\drafts': 'Drafts',
    '\\trash': 'Trash',
    '\\junk': 'Junk',
    '\\archive': 'Archive'
};

/** Top-level names that mean a special-use folder on a server without SPECIAL-USE. */
const BY_NAME: Record<string, string> = {
    sent: '\\Sent',
    'sent items': '\\Sent',
    'sent messages': '\\Sent',
    'sent mail': '\\Sent',
    drafts: '\\Drafts',
    draft: '\\Drafts',
    trash: '\\Trash',
    'deleted items': '\\Trash',
    'deleted messages': '\\Trash',
    junk: '\\Junk',
    'junk e-mail': '\\Junk',
    spam: '\\Junk',
    archive: '\\Archive',
    archives: '\\Archive',
    // A few other languages' (what imapflow recognised before this mapping, where it is common).
    gesendet: '\\Sent',
    'gesendete objekte': '\\Sent',
    'gesendete elemente': '\\Sent',
    envoyés: '\\Sent',
    'éléments envoyés': '\\Sent',
    enviados: '\\Sent',
    'posta inviata': '\\Sent',
    verzonden: '\\Sent',
    entwürfe: '\\Drafts',
    brouillons: '\\Drafts',
    borradores: '\\Drafts',
    bozze: '\\Drafts',
    concepten: '\\Drafts',
    papierkorb: '\\Trash',
    'gelöschte objekte': '\\Trash',
    'gelöschte elemente': '\\Trash',
    corbeille: '\\Trash',
    papelera: '\\Trash',
    cestino: '\\Trash',
    prullenbak: '\\Trash',
    archiv: '\\Archive'
};

/** One entry of the account's LIST answer, as imapflow gives it. */
export interface ListedEntry {
    path: string;
    delimiter: string | null | false;
    flags: ReadonlySet<string> | readonly string[];
}

/** The account's personal namespace (NAMESPACE): prefix ("INBOX." or "") and delimiter. */
export interface PersonalNamespace {
    prefix: string;
    delimiter: string | null | false;
}

/** An upstream folder, interpreted. */
export interface UpstreamFolder {
    /** The server's path: what SELECT takes and what the sync state is keyed by. */
    path: string;
    /** The folder as people see it: levels without the namespace prefix ("INBOX" alone for INBOX). */
    levels: string[];
    /** All the levels of the server path, prefix included (["INBOX", "Work"] for "INBOX.Work"). */
    fullLevels: string[];
    delimiter: string | null;
    /** \Sent, \Drafts, … (from SPECIAL-USE, or by name), or null. */
    specialUse: string | null;
    /** \Noselect or \NonExistent: holds no messages of its own. */
    noselect: boolean;
}

const ATTRIBUTES = ['\\Sent', '\\Drafts', '\\Trash', '\\Junk', '\\Archive', '\\All', '\\Flagged'];

function isInbox(path: string): boolean {
    return /^inbox$/i.test(path);
}

/**
 * Interprets the account's LIST answer under its personal namespace. INBOX always exists (RFC 3501
 * 5.1), listed or not: a listing of the namespace "INBOX." (what imapflow asks a Courier-style
 * server for) does not show it.
 */
export function interpretListing(entries: readonly ListedEntry[], namespace: PersonalNamespace | null): UpstreamFolder[] {
    const prefix = namespace?.prefix ?? '';
    const listed = entries.some(entry => isInbox(entry.path)) ? entries : [{ path: 'INBOX', delimiter: namespace?.delimiter ?? null, flags: [] }, ...entries];
    return listed.map(entry => {
        const delimiter = entry.delimiter || namespace?.delimiter || null;
        const flags = new Set([...entry.flags].map(flag => flag.toLowerCase()));
        const split = (text: string) => (delimiter ? text.split(delimiter) : [text]);
        let levels: string[];
        if (isInbox(entry.path)) {
            levels = ['INBOX'];
        } else if (prefix && entry.path.length > prefix.length && entry.path.slice(0, prefix.length).toLowerCase() === prefix.toLowerCase()) {
            levels = split(entry.path.slice(prefix.length));
        } else {
            levels = split(entry.path);
        }
        let specialUse = ATTRIBUTES.find(attribute => flags.has(attribute.toLowerCase())) ?? null;
        if (!specialUse && levels.length === 1 && !isInbox(entry.path)) specialUse = BY_NAME[levels[0].toLowerCase()] ?? null;
        return {
            path: entry.path,
            levels,
            fullLevels: isInbox(entry.path) ? ['INBOX'] : split(entry.path),
            delimiter,
            specialUse,
            noselect: flags.has('\\noselect') || flags.has('\\nonexistent')
        };
    });
}

/** One level of an upstream name as a level of a local mailbox name (see the header). */
function localLevel(level: string): string {
    const mended = level
        .replace(/\//g, '_')
        .replace(/[\x00-\x1f\x7f]/g, '')
        .trim();
    return mended === '' || mended === '.' || mended === '..' ? '_' : mended;
}

/** The local path of an upstream folder, before collisions are settled (see the header). */
export function localFolderFor(account: Pick<ResolvedAccount, 'name' | 'address'>, accountIndex: number, folder: Pick<UpstreamFolder, 'levels' | 'specialUse'>): string {
    let local: string;
    if (folder.levels.length === 1 && isInbox(folder.levels[0])) {
        local = 'INBOX';
    } else if (folder.specialUse && SPECIAL[folder.specialUse.toLowerCase()]) {
        local = SPECIAL[folder.specialUse.toLowerCase()];
    } else {
        local = folder.levels.map(localLevel).join('/');
    }
    if (accountIndex === 0) return local;
    const prefix = localLevel(account.name || account.address);
    return `${prefix}/${local}`;
}

/**
 * `path`, or when it is taken (by another upstream folder of this run, mailmule's own "Fetch
 * full", or a name the store would refuse), the first free "path (2)", "path (3)", ….
 */
export function settleCollision(path: string, taken: (candidate: string) => boolean): string {
    const free = (candidate: string) => normaliseMailboxPath(candidate) !== null && candidate !== FETCH_FULL_FOLDER && !taken(candidate);
    if (free(path)) return path;
    for (let n = 2; n < 1000; n++) {
        const candidate = `${path} (${n})`;
        if (free(candidate)) return candidate;
    }
    throw new Error(`no free local name for ${path}`);
}

/** What `folders:` names mean on an account: the folders (once each, in order) and what matched nothing. */
export interface FolderChoice {
    folders: UpstreamFolder[];
    /** Plain-words reports, one per name that matched nothing (or nothing that holds mail). */
    problems: string[];
}

const SPECIAL_NAMES: Record<string, string> = { sent: '\\Sent', drafts: '\\Drafts', trash: '\\Trash', junk: '\\Junk', spam: '\\Junk', archive: '\\Archive' };

/** The ways a folder can be written: its server path, and its levels (with and without the prefix) joined by "/" or its delimiter. */
function spellings(folder: UpstreamFolder): string[] {
    const out = new Set([folder.path, folder.levels.join('/'), folder.fullLevels.join('/')]);
    if (folder.delimiter) out.add(folder.levels.join(folder.delimiter));
    return [...out];
}

/**
 * `*` any characters, `%` any but a level delimiter (RFC 3501 6.3.8), as a RegExp over a name
 * whose levels are joined by `delimiter` (in the pattern too).
 */
function patternMatcher(pattern: string, delimiter: string, ignoreCase: boolean): RegExp {
    const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    const source = [...pattern].map(char => (char === '*' ? '.*' : char === '%' ? `[^${escape(delimiter)}]*` : escape(char))).join('');
    return new RegExp(`^${source}$`, ignoreCase ? 'iu' : 'u');
}

/** Folders a pattern takes: written with "/" between levels (a "/" inside a level is no level), or as the server's path. */
function matchPattern(pattern: string, folders: UpstreamFolder[], ignoreCase: boolean): UpstreamFolder[] {
    // Levels joined by NUL, which no name holds, so "/" in the pattern means a level and nothing else.
    const byLevels = patternMatcher(pattern.replace(/\//g, '\0'), '\0', ignoreCase);
    return folders.filter(folder => {
        if (byLevels.test(folder.levels.join('\0')) || byLevels.test(folder.fullLevels.join('\0'))) return true;
        return Boolean(folder.delimiter) && patternMatcher(pattern, folder.delimiter!, ignoreCase).test(folder.path);
    });
}

/** "INBOX, INBOX.Sent, …": what the account has, for a report (at most 30 names). */
function accountHas(folders: UpstreamFolder[]): string {
    const names = folders.filter(folder => !folder.noselect).map(folder => folder.path);
    const shown = names.slice(0, 30).join(', ');
    return names.length > 30 ? `${shown} and ${names.length - 30} more` : shown || 'no folders';
}

/** The folders `names` (an account's `folders:`) mean in `listing` (see the header for the rules). */
export function chooseFolders(names: readonly string[], listing: readonly UpstreamFolder[]): FolderChoice {
    const selectable = listing.filter(folder => !folder.noselect);
    const chosen = new Map<string, UpstreamFolder>();
    const problems: string[] = [];
    const notFound = (name: string, why = 'not found') => problems.push(`upstream folder '${name}' ${why}; the account has: ${accountHas([...listing])}`);
    for (const raw of names) {
        const name = raw.trim();
        if (/[*%]/.test(name)) {
            let found = matchPattern(name, selectable, false);
            if (!found.length) found = matchPattern(name, selectable, true);
            if (!found.length) notFound(raw, 'matches no folder');
            for (const folder of found) chosen.set(folder.path, folder);
            continue;
        }
        const folder = findOne(name, listing);
        if (!folder) {
            notFound(raw);
        } else if (typeof folder === 'string') {
            notFound(raw, folder);
        } else if (folder.noselect) {
            notFound(raw, `holds no messages of its own (\\Noselect); '${name}/*' would take the folders below it`);
        } else {
            chosen.set(folder.path, folder);
        }
    }
    return { folders: [...chosen.values()], problems };
}

/** The one folder `name` means, or a reason when it means several, or null. */
function findOne(name: string, listing: readonly UpstreamFolder[]): UpstreamFolder | string | null {
    if (isInbox(name)) return listing.find(folder => isInbox(folder.path)) ?? null;
    const exact = listing.find(folder => folder.path === name);
    if (exact) return exact;
    const written = listing.filter(folder => spellings(folder).includes(name));
    if (written.length) return preferSelectable(written);
    const special = SPECIAL_NAMES[name.toLowerCase().replace(/^\\/, '')];
    if (special) {
        const holders = listing.filter(folder => folder.specialUse === special && !folder.noselect).sort((a, b) => a.levels.length - b.levels.length);
        if (holders.length) return holders[0];
    }
    const lower = name.toLowerCase();
    const folded = listing.filter(folder => spellings(folder).some(spelling => spelling.toLowerCase() === lower));
    if (folded.length > 1) return `matches several folders when case is ignored (${folded.map(folder => folder.path).join(', ')}); write it exactly`;
    return folded[0] ?? null;
}

function preferSelectable(folders: UpstreamFolder[]): UpstreamFolder {
    return folders.find(folder => !folder.noselect) ?? folders[0];
}

/** The user's local mailbox at `mailboxPath`, created (and subscribed) if missing; null when that name cannot be a mailbox here. */
export function ensureLocalMailbox(store: Store, userId: number, mailboxPath: string): MailboxRow | null {
    const existing = store.mailboxes.get(userId, mailboxPath);
    if (existing) return existing;
    try {
        return store.mailboxes.getById(userId, store.mailboxes.create(userId, mailboxPath));
    } catch (err) {
        if (!storeErrorCode(err)) throw err;
        return null;
    }
}
