/**
 * `node dist/bench/pipelined-unread-rss.js`: the daemon's RSS under a hostile client (issue 8,
 * patches/ 133): one that writes UNREAD_COUNT `UID FETCH n BODY.PEEK[]` in one go (messages of
 * about 100 KB, below the 128 KB above which bodies are streamed) and never reads its socket,
 * then leaves. Prints VmRSS before, the peak (VmHWM) while the client reads nothing, and VmRSS
 * after it has gone.
 *
 * The daemon runs as its own process with the node flags and allocator settings of the systemd
 * unit. RSS does not depend on the machine's load; the sampling windows (UNREAD_HOLD_MS while
 * the client reads nothing, UNREAD_AFTER_MS after it leaves) are time, so state the load.
 *
 * Environment: UNREAD_COUNT (default 5000), UNREAD_MESSAGES (50), UNREAD_HOLD_MS (15000),
 * UNREAD_AFTER_MS (5000).
 */
import fs from 'node:fs';
import net from 'node:net';
import { daemonEnvironment, daemonNodeArgs, fmtMB, intEnv, memoryOf, sleep, loadAverage } from './support';
import { setup, startDaemon, killAllDaemons } from '../test/support/daemon-process';
import { RawImapConnection, appendRaw } from '../test/support/raw-imap-connection';
import { makeMessage } from '../test/support/gateway';

const COUNT = intEnv('UNREAD_COUNT', 5000);
const MESSAGES = intEnv('UNREAD_MESSAGES', 50);
const HOLD_MS = intEnv('UNREAD_HOLD_MS', 15000);
const AFTER_MS = intEnv('UNREAD_AFTER_MS', 5000);
const BODY_BYTES = 100 * 1024;
const USER = { name: 'hostile', password: 'hostile-bench-pw' };

async function main(): Promise<void> {
    const env = await setup({ users: [USER], plaintext: true, prefix: 'mailmule-unread-' });
    const daemon = await startDaemon(env.configFile, daemonNodeArgs(), [], { env: daemonEnvironment() });
    const pid = daemon.child.pid!;
    try {
        const filler = await RawImapConnection.session(env.imapPort, USER.name, USER.password, 'INBOX');
        for (let n = 1; n <= MESSAGES; n++) {
            const body = Array.from({ length: BODY_BYTES / 80 }, (_, line) => `message ${n} line ${line} `.padEnd(78, 'z')).join('\r\n');
            await appendRaw(filler, 'INBOX', makeMessage({ subject: `unread ${n}`, body }));
        }
        // Every message fetched once by a client that reads, so the baseline has its caches warm.
        for (let uid = 1; uid <= MESSAGES; uid++) await filler.command(`UID FETCH ${uid} (BODY.PEEK[])`);
        filler.destroy();
        await sleep(1000);
        const before = memoryOf(pid);

        const socket = net.connect(env.imapPort, '127.0.0.1');
        socket.on('error', () => {});
        await new Promise<void>(resolve => socket.once('connect', () => resolve()));
        socket.write(`l1 LOGIN ${USER.name} ${USER.password}\r\ns1 SELECT INBOX\r\n`);
        socket.pause();
        const commands: string[] = [];
        for (let i = 1; i <= COUNT; i++) commands.push(`t${i} UID FETCH ${1 + (i % MESSAGES)} (BODY.PEEK[])\r\n`);
        socket.write(commands.join(''));
        let peak = 0;
        for (let waited = 0; waited < HOLD_MS; waited += 100) {
            peak = Math.max(peak, memoryOf(pid).rss);
            await sleep(100);
        }
        const held = memoryOf(pid);
        socket.destroy();
        await sleep(AFTER_MS);
        const after = memoryOf(pid);
        const load = loadAverage();
        console.log(`${COUNT} pipelined UID FETCH BODY.PEEK[] of ${MESSAGES} ~${BODY_BYTES / 1024} KB messages, nothing read (load ${load}):`);
        console.log(
            `  RSS before ${fmtMB(before.rss)}; peak while unread ${fmtMB(peak)} (VmHWM ${fmtMB(held.hwm)}); at ${HOLD_MS} ms ${fmtMB(held.rss)}; ${AFTER_MS} ms after the client left ${fmtMB(after.rss)}`
        );
    } finally {
        await killAllDaemons();
        fs.rmSync(env.dir, { recursive: true, force: true });
    }
}

main().catch(err => {
    console.error(err);
    process.exit(1);
});
