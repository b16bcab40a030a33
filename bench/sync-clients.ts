/**
 * The clients bench/sync.ts compares, each as a user would run it against the same upstream
 * INBOX: mbsync (isync), offlineimap, and mailmule (`mailmule start` under the systemd unit's
 * node flags, runs triggered with `mailmule sync --receive-only`), either with the account
 * settings that make it download the same full messages ("mailmule") or with the defaults.
 * Peak RSS: mbsync's and offlineimap's from /usr/bin/time (%M), mailmule's the daemon's VmHWM.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import Database from 'better-sqlite3';
import { ROOT, MAIN, HOST, sleep, stopChild, track, memoryOf, commandOutput, daemonNodeArgs, daemonEnvironment, makeLocalCa } from './support';
import { writeConfig } from '../test/support/gateway';
import { runProcess } from '../test/support/run-process';
import { assignFreePorts, startDaemon } from '../test/support/daemon-process';

export const ALL_CLIENTS = ['mailmule', 'mailmule-defaults', 'mbsync', 'offlineimap'] as const;
export type ClientName = (typeof ALL_CLIENTS)[number];

/** VmHWM and VmRSS of a process in KB (0 when it is gone). */
function memoryKb(pid: number): { hwmKb: number; rssKb: number } {
    const { hwm, rss } = memoryOf(pid);
    return { hwmKb: hwm / 1024, rssKb: rss / 1024 };
}

export interface Client {
    name: ClientName;
    version: string;
    sync(timeoutMs: number): Promise<{ ok: boolean; detail: string; rssKb: number; note: string }>;
    messages(): number;
    /** mailmule only: the daemon's process id (its CPU time is the client's). */
    pid?: number;
    /** mailmule only: the daemon's VmHWM / RSS after start-up (KB). */
    memory?(): { hwmKb: number; startRssKb: number };
    stop(): Promise<void>;
}

function countMaildir(dir: string): number {
    let n = 0;
    for (const sub of ['cur', 'new']) {
        try {
            n += fs.readdirSync(path.join(dir, sub)).length;
        } catch {
            // Not there yet.
        }
    }
    return n;
}

function timedRss(file: string): number {
    try {
        return Number(fs.readFileSync(file, 'utf8').trim().split('\n').pop()) || 0;
    } catch {
        return 0;
    }
}

export function mbsyncClient(work: string, address: string, password: string, port: number): Client {
    const dir = path.join(work, 'mbsync');
    fs.mkdirSync(path.join(dir, 'mail'), { recursive: true });
    const config = path.join(dir, 'mbsyncrc');
    fs.writeFileSync(
        config,
        [
            'IMAPAccount upstream',
            `Host ${HOST}`,
            `Port ${port}`,
            `User ${address}`,
            `Pass ${password}`,
            'SSLType None',
            'AuthMechs PLAIN',
            '',
            'IMAPStore remote',
            'Account upstream',
            '',
            'MaildirStore local',
            `Path ${dir}/mail/`,
            `Inbox ${dir}/mail/INBOX`,
            'SubFolders Verbatim',
            '',
            'Channel upstream',
            'Far :remote:',
            'Near :local:',
            'Patterns INBOX',
            'Create Near',
            'Sync Pull',
            'SyncState *',
            ''
        ].join('\n')
    );
    const rssFile = path.join(dir, 'time.out');
    return {
        name: 'mbsync',
        version: execFileSync('mbsync', ['--version']).toString().trim(),
        async sync(timeoutMs) {
            const result = await runProcess('/usr/bin/time', ['-f', '%M', '-o', rssFile, 'mbsync', '-c', config, '-a'], { timeoutMs });
            const ok = result.code === 0 && !result.timedOut;
            return { ok, detail: `${result.stdout}${result.stderr}`.trim().slice(-1500), rssKb: timedRss(rssFile), note: '' };
        },
        messages: () => countMaildir(path.join(dir, 'mail', 'INBOX')),
        async stop() {}
    };
}

export function offlineimapClient(work: string, address: string, password: string, port: number): Client {
    const dir = path.join(work, 'offlineimap');
    fs.mkdirSync(path.join(dir, 'mail'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'meta'), { recursive: true });
    const config = path.join(dir, 'offlineimaprc');
    fs.writeFileSync(
        config,
        [
            '[general]',
            'accounts = upstream',
            `metadata = ${dir}/meta`,
            '',
            '[Account upstream]',
            'localrepository = local',
            'remoterepository = remote',
            '',
            '[Repository local]',
            'type = Maildir',
            `localfolders = ${dir}/mail`,
            '',
            '[Repository remote]',
            'type = IMAP',
            `remotehost = ${HOST}`,
            `remoteport = ${port}`,
            `remoteuser = ${address}`,
            `remotepass = ${password}`,
            'ssl = no',
            'starttls = no',
            'auth_mechanisms = PLAIN, LOGIN',
            'readonly = True',
            "folderfilter = lambda folder: folder == 'INBOX'",
            ''
        ].join('\n')
    );
    const rssFile = path.join(dir, 'time.out');
    return {
        name: 'offlineimap',
        version: `offlineimap ${commandOutput('offlineimap', ['--version'])}`,
        async sync(timeoutMs) {
            const result = await runProcess('/usr/bin/time', ['-f', '%M', '-o', rssFile, 'offlineimap', '-c', config, '-u', 'basic', '-o'], { timeoutMs });
            const errors = /ERROR|Traceback/.test(result.stdout + result.stderr);
            const ok = result.code === 0 && !result.timedOut && !errors;
            return { ok, detail: `${result.stdout}${result.stderr}`.trim().slice(-1500), rssKb: timedRss(rssFile), note: '' };
        },
        messages: () => countMaildir(path.join(dir, 'mail', 'INBOX')),
        async stop() {}
    };
}

export async function mailmuleClient(work: string, name: ClientName, address: string, password: string, port: number, smtpPort: number): Promise<Client> {
    const dir = path.join(work, name);
    fs.mkdirSync(dir, { recursive: true });
    const account = [
        `      - address: ${address}`,
        `        imap: { host: ${HOST}, port: ${port}, tls: none }`,
        `        smtp: { host: ${HOST}, port: ${smtpPort}, tls: none }`,
        `        credentials: { password: ${password} }`,
        '        folders: [INBOX]',
        ...(name === 'mailmule' ? ['        maxMessageSize: 1GB', '        since: 3650d'] : [])
    ].join('\n');
    const { configFile } = writeConfig(dir, { users: [{ name: 'bench', password: 'bench-local-pw', accountsYaml: account }] });
    await assignFreePorts(configFile);
    makeLocalCa(configFile);
    const child = track((await startDaemon(configFile, daemonNodeArgs(), [], { env: daemonEnvironment() })).child);
    await sleep(200);
    const startRssKb = memoryKb(child.pid!).rssKb;
    const dbFile = path.join(dir, 'data', 'mailmule.sqlite');
    return {
        name,
        pid: child.pid,
        version: `mailmule ${JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version}`,
        async sync(timeoutMs) {
            const result = await runProcess(process.execPath, [MAIN, 'sync', '-c', configFile, '--receive-only'], { timeoutMs, cwd: dir });
            const ok = result.code === 0 && !result.timedOut && / ok\b/.test(result.stdout) && !/error:/.test(result.stdout);
            const note = /run \d+: .*/.exec(result.stdout)?.[0] ?? '';
            return { ok, detail: `${result.stdout}${result.stderr}`.trim().slice(-1500), rssKb: memoryKb(child.pid!).hwmKb, note };
        },
        messages() {
            const db = new Database(dbFile, { readonly: true, fileMustExist: true });
            try {
                return (db.prepare("SELECT COUNT(*) AS n FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id WHERE b.path = 'INBOX'").get() as { n: number }).n;
            } finally {
                db.close();
            }
        },
        memory: () => ({ hwmKb: memoryKb(child.pid!).hwmKb, startRssKb }),
        stop: () => stopChild(child)
    };
}
