/**
 * A Postfix instance of its own for bench/smtp.ts (the anchor of the SMTP benchmark), started from
 * Debian's package with `postfix -c DIR/etc start`: its queue, data and log under DIR, one smtpd
 * on a free loopback port with `smtpd_relay_restrictions=permit_mynetworks,reject` and no AUTH,
 * every message routed to `discard:` by transport_maps, so nothing leaves the machine.
 *
 * `postfix start` daemonises, so its master is not our child: it is stopped at exit (and on
 * SIGINT/SIGTERM) with `postfix stop`, then by the pid in its pid file, never by name.
 *
 * Everything listens on 127.0.0.1 only. Every wait is bounded.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync, execFileSync } from 'node:child_process';
import { HOST, log, sleep, freePort, waitForSmtp } from './support';

export interface RunningPostfix {
    port: number;
    /** The master's pid (its children are smtpd, cleanup, qmgr, discard …). */
    pid: number;
    /** The queue directory. */
    spool: string;
}

let postfixEtc: string | null = null;

export function stopPostfixSync(): void {
    if (!postfixEtc) return;
    const etc = postfixEtc;
    postfixEtc = null;
    const pidFile = path.join(path.dirname(etc), 'spool', 'pid', 'master.pid');
    const masterPid = readPid(pidFile);
    spawnSync('postfix', ['-c', etc, 'stop'], { stdio: 'ignore', timeout: 20000 });
    if (masterPid && alive(masterPid)) {
        // `postfix stop` did not finish in time: kill our master by its pid (never by name).
        try {
            process.kill(masterPid, 'SIGKILL');
        } catch {
            // Gone.
        }
    }
}

process.on('exit', stopPostfixSync);
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, stopPostfixSync);

function readPid(file: string): number | null {
    try {
        const pid = Number(fs.readFileSync(file, 'utf8').trim());
        return Number.isInteger(pid) && pid > 0 ? pid : null;
    } catch {
        return null;
    }
}

function alive(pid: number): boolean {
    try {
        process.kill(pid, 0);
        return true;
    } catch {
        return false;
    }
}

export function postfixVersion(): string {
    try {
        return execFileSync('postconf', ['-d', '-h', 'mail_version'], { timeout: 10000 }).toString().trim();
    } catch {
        return 'unknown';
    }
}

export async function startPostfix(P: string): Promise<RunningPostfix> {
    const which = spawnSync('sh', ['-c', 'command -v postfix'], { encoding: 'utf8' });
    if (which.status !== 0) throw new Error('postfix is not installed (apt-get install -y postfix)');
    const etc = path.join(P, 'etc');
    for (const sub of ['etc', 'spool', 'data', 'log']) fs.mkdirSync(path.join(P, sub), { recursive: true });
    fs.chmodSync(P, 0o755);
    execFileSync('chown', ['postfix:postfix', path.join(P, 'data')]);
    const port = await freePort();
    fs.writeFileSync(path.join(etc, 'transport'), '* discard:\n');
    fs.writeFileSync(
        path.join(etc, 'main.cf'),
        [
            'compatibility_level = 3.6',
            `queue_directory = ${P}/spool`,
            `data_directory = ${P}/data`,
            `maillog_file = ${P}/log/postfix.log`,
            `maillog_file_prefixes = /var, /dev/stdout, ${P}`,
            'myhostname = postfix.bench.test',
            'mydomain = bench.test',
            'myorigin = $myhostname',
            'mydestination =',
            'local_recipient_maps =',
            'local_transport = error:local delivery is disabled',
            'alias_maps =',
            'alias_database =',
            `inet_interfaces = ${HOST}`,
            'inet_protocols = ipv4',
            'mynetworks = 127.0.0.0/8',
            'smtpd_peername_lookup = no',
            'smtp_dns_support_level = disabled',
            'relayhost =',
            // Everything goes to discard: once queued, so nothing leaves the machine.
            `transport_maps = texthash:${etc}/transport`,
            'smtpd_tls_security_level = none',
            'smtp_tls_security_level = none',
            'biff = no',
            ''
        ].join('\n')
    );
    // Debian's service lines (chroot off), without the port-25 smtpd, plus our submission smtpd.
    fs.writeFileSync(
        path.join(etc, 'master.cf'),
        [
            `${HOST}:${port} inet n - n - - smtpd`,
            '  -o smtpd_relay_restrictions=permit_mynetworks,reject',
            '  -o smtpd_recipient_restrictions=permit_mynetworks,reject',
            'pickup    unix  n       -       n       60      1       pickup',
            'cleanup   unix  n       -       n       -       0       cleanup',
            'qmgr      unix  n       -       n       300     1       qmgr',
            'rewrite   unix  -       -       n       -       -       trivial-rewrite',
            'bounce    unix  -       -       n       -       0       bounce',
            'defer     unix  -       -       n       -       0       bounce',
            'trace     unix  -       -       n       -       0       bounce',
            'verify    unix  -       -       n       -       1       verify',
            'flush     unix  n       -       n       1000?   0       flush',
            'proxymap  unix  -       -       n       -       -       proxymap',
            'proxywrite unix -       -       n       -       1       proxymap',
            'smtp      unix  -       -       n       -       -       smtp',
            'relay     unix  -       -       n       -       -       smtp',
            'showq     unix  n       -       n       -       -       showq',
            'error     unix  -       -       n       -       -       error',
            'retry     unix  -       -       n       -       -       error',
            'discard   unix  -       -       n       -       -       discard',
            'lmtp      unix  -       -       n       -       -       lmtp',
            'anvil     unix  -       -       n       -       1       anvil',
            'scache    unix  -       -       n       -       1       scache',
            'postlog   unix-dgram n  -       n       -       1       postlogd',
            ''
        ].join('\n')
    );
    const started = spawnSync('postfix', ['-c', etc, 'start'], { encoding: 'utf8', timeout: 60000 });
    postfixEtc = etc;
    const logFile = path.join(P, 'log', 'postfix.log');
    const logTail = () => {
        const out = [String(started.stdout ?? ''), String(started.stderr ?? '')];
        if (fs.existsSync(logFile)) out.push(...fs.readFileSync(logFile, 'utf8').split('\n').slice(-30));
        return out;
    };
    if (started.status !== 0) {
        // Without syslog, `postfix check` complains only on a terminal.
        const check = spawnSync('script', ['-qc', `postfix -c ${etc} check`, '/dev/null'], { encoding: 'utf8', timeout: 30000 });
        throw new Error(`postfix start failed (${started.error?.message ?? `exit ${started.status}`}):\n${logTail().join('\n')}\n${check.stdout ?? ''}`);
    }
    const pidFile = path.join(P, 'spool', 'pid', 'master.pid');
    const deadline = Date.now() + 30000;
    let pid = readPid(pidFile);
    while ((!pid || !alive(pid)) && Date.now() < deadline) {
        await sleep(100);
        pid = readPid(pidFile);
    }
    if (!pid) throw new Error(`postfix master did not write ${pidFile}:\n${logTail().join('\n')}`);
    await waitForSmtp('postfix', port, () => (alive(pid) ? null : 'master exited'), logTail, 30000);
    log(`postfix ${postfixVersion()}: master pid ${pid}, smtpd on ${HOST}:${port} (no AUTH, permit_mynetworks), queue ${P}/spool`);
    return { port, pid, spool: path.join(P, 'spool') };
}
