/**
 * Running the real mbsync (isync) against the gateway and reading the Maildirs it writes.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { runProcess, describeRun } from './run-process';

export function toLf(raw: Buffer): Buffer {
    return Buffer.from(raw.toString('latin1').replace(/\r\n/g, '\n'), 'latin1');
}

/** A Maildir file as mbsync wrote it, minus the one X-TUID line it adds as the last header. */
export function withoutTuid(content: Buffer): Buffer {
    const text = content.toString('latin1');
    const end = text.indexOf('\n\n');
    const header = text.slice(0, end + 1);
    const match = /(^|\n)X-TUID: [A-Za-z0-9+/]{12}\n$/.exec(header);
    if (!match) return content;
    return Buffer.from(header.slice(0, match.index + match[1].length) + text.slice(end + 1), 'latin1');
}

export interface MaildirFile {
    folder: string;
    file: string;
    flags: string;
    messageId: string;
    content: Buffer;
}

/** Every message file under a Maildir++-less ("SubFolders Verbatim") tree, by folder. */
export function readMaildir(root: string): MaildirFile[] {
    const out: MaildirFile[] = [];
    const walk = (dir: string): void => {
        for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
            if (!entry.isDirectory()) continue;
            const full = path.join(dir, entry.name);
            if (entry.name === 'cur' || entry.name === 'new') {
                const folder = path.relative(root, dir).split(path.sep).join('/');
                for (const name of fs.readdirSync(full)) {
                    const file = path.join(full, name);
                    const content = fs.readFileSync(file);
                    const id = /^Message-ID:[ \t]*(<[^>\r\n]+>)/im.exec(content.toString('latin1'));
                    out.push({ folder, file, flags: name.includes(':2,') ? name.slice(name.indexOf(':2,') + 3) : '', messageId: id ? id[1] : '', content });
                }
            } else if (entry.name !== 'tmp') {
                walk(full);
            }
        }
    };
    walk(root);
    return out;
}

/**
 * An mbsyncrc for one channel between the gateway (far) and a Maildir under `dir`/mail (near).
 * `extra` lines go into the channel (e.g. `Create Far` for a push).
 */
export function mbsyncConfig(options: { dir: string; port: number; user: string; pass: string; tls: false | string; sync: string; patterns: string; extra?: string[] }): string {
    const mail = path.join(options.dir, 'mail');
    // mbsync creates the folders but not the store's root.
    fs.mkdirSync(mail, { recursive: true });
    const lines = [
        'IMAPAccount gateway',
        'Host 127.0.0.1',
        `Port ${options.port}`,
        `User ${options.user}`,
        `Pass ${options.pass}`,
        ...(options.tls ? ['SSLType IMAPS', `CertificateFile ${options.tls}`, 'SystemCertificates no'] : ['SSLType None']),
        // PLAIN over the plaintext listener (allowed by the test config), as a LAN client would.
        'AuthMechs PLAIN',
        'Timeout 20',
        '',
        'IMAPStore far',
        'Account gateway',
        '',
        'MaildirStore near',
        `Path ${mail}/`,
        `Inbox ${mail}/INBOX`,
        'SubFolders Verbatim',
        '',
        'Channel gateway',
        'Far :far:',
        'Near :near:',
        `Patterns ${options.patterns}`,
        'Create Near',
        ...(options.extra ?? []),
        `Sync ${options.sync}`,
        'SyncState *',
        ''
    ];
    return lines.join('\n');
}

/** Runs `mbsync -a` with `config`; asserts it exits 0. */
export async function runMbsync(dir: string, config: string, name: string, timeoutMs: number) {
    const file = path.join(dir, `${name}.mbsyncrc`);
    fs.writeFileSync(file, config, { mode: 0o600 });
    const result = await runProcess('mbsync', ['-c', file, '-a'], { timeoutMs, cwd: dir, env: { ...process.env, HOME: dir } });
    assert.equal(result.code, 0, describeRun(`mbsync (${name})`, result));
    return result;
}
