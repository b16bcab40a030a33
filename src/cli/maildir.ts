/**
 * Reading a Maildir (as Dovecot, OfflineIMAP and mbsync write them) for `mailmule import`:
 * the way to bring a village's existing mail over from the hand-built stack.
 *
 * INBOX is the Maildir's own cur/ and new/; Maildir++ subfolders (".Sent", ".Lists.Village")
 * become Sent and Lists/Village. Flags come from the ":2," suffix, the internal date from mtime.
 */
import fs from 'node:fs';
import path from 'node:path';
import { normaliseLineEnds } from '../mail/line-ends';

export interface MaildirMessage {
    file: string;
    flags: string[];
    idate: number;
}

export interface MaildirFolder {
    path: string;
    messages: MaildirMessage[];
}

const FLAG_LETTERS: Record<string, string> = { S: '\\Seen', R: '\\Answered', F: '\\Flagged', T: '\\Deleted', D: '\\Draft' };

export function flagsFromName(name: string): string[] {
    const match = /:2,([A-Za-z]*)$/.exec(name);
    if (!match) return [];
    return [...match[1]].map(letter => FLAG_LETTERS[letter]).filter((flag): flag is string => Boolean(flag));
}

function readMessages(dir: string): MaildirMessage[] {
    const out: MaildirMessage[] = [];
    for (const sub of ['cur', 'new']) {
        const full = path.join(dir, sub);
        if (!fs.existsSync(full)) continue;
        for (const name of fs.readdirSync(full).sort()) {
            if (name.startsWith('.')) continue;
            const file = path.join(full, name);
            const stat = fs.statSync(file);
            if (!stat.isFile()) continue;
            out.push({ file, flags: flagsFromName(name), idate: stat.mtimeMs });
        }
    }
    return out.sort((a, b) => a.idate - b.idate || a.file.localeCompare(b.file));
}

export function readMaildir(root: string): MaildirFolder[] {
    if (!fs.existsSync(path.join(root, 'cur')) && !fs.existsSync(path.join(root, 'new'))) {
        throw new Error(`${root} is not a Maildir (no cur/ or new/)`);
    }
    const folders: MaildirFolder[] = [{ path: 'INBOX', messages: readMessages(root) }];
    for (const name of fs.readdirSync(root).sort()) {
        if (!name.startsWith('.') || name === '.' || name === '..') continue;
        const dir = path.join(root, name);
        if (!fs.statSync(dir).isDirectory() || !fs.existsSync(path.join(dir, 'cur'))) continue;
        folders.push({ path: name.slice(1).split('.').join('/'), messages: readMessages(dir) });
    }
    return folders;
}

/** A message's bytes as mailmule stores them: Maildirs (Dovecot, mbsync) keep bare LF; IMAP serves CRLF (RFC 3501). */
export function readMessage(message: MaildirMessage): Buffer {
    return normaliseLineEnds(fs.readFileSync(message.file));
}
