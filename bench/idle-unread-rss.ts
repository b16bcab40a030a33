/**
 * `node dist/bench/idle-unread-rss.js`: the daemon's RSS under an IDLE client that never reads
 * (issue 8, patches/ 135). It logs in, selects INBOX (IDLE_MESSAGES messages), starts IDLE and
 * stops reading; another session of the same user then sets eight 60-character keywords on every
 * message, a different eight each time, IDLE_STORES times (about 520 bytes of `* n FETCH (FLAGS
 * …)` per message per STORE for the idling session); then the idling client leaves. Prints VmRSS
 * before, the peak while it reads nothing, and VmRSS after it has gone.
 *
 * The daemon runs as its own process with the node flags and allocator settings of the systemd
 * unit. RSS does not depend on the machine's load; the wait after the client left
 * (IDLE_AFTER_MS) is time, so state the load.
 *
 * Environment: IDLE_MESSAGES (default 1000), IDLE_STORES (40), IDLE_AFTER_MS (5000).
 */
import fs from 'node:fs';
import net from 'node:net';
import { daemonEnvironment, daemonNodeArgs, fmtMB, intEnv, memoryOf, sleep, loadAverage } from './support';
import { setup, startDaemon, killAllDaemons } from '../test/support/daemon-process';
import { RawImapConnection, appendRaw } from '../test/support/raw-imap-connection';
import { makeMessage } from '../test/support/gateway';

const MESSAGES = intEnv('IDLE_MESSAGES', 1000);
const STORES = intEnv('IDLE_STORES', 40);
const AFTER_MS = intEnv('IDLE_AFTER_MS', 5000);
const KEYWORDS = Array.from({ length: 9 }, (_, i) => `flood${i}`.padEnd(60, 'k'));
const USER = { name: 'hostile', password: 'hostile-bench-pw' };

async function main(): Promise<void> {
    const env = await setup({ users: [USER], plaintext: true, prefix: 'mailmule-idle-unread-' });
    const daemon = await startDaemon(env.configFile, daemonNodeArgs(), [], { env: daemonEnvironment() });
    const pid = daemon.child.pid!;
    try {
        const actor = await RawImapConnection.session(env.imapPort, USER.name, USER.password, 'INBOX');
        for (let n = 1; n <= MESSAGES; n++) await appendRaw(actor, 'INBOX', makeMessage({ subject: `idle unread ${n}` }));
        // One round of keywords first, so the baseline has them announced and its caches warm.
        await actor.command(`STORE 1:* FLAGS.SILENT (${KEYWORDS.join(' ')})`);
        await sleep(1000);
        const before = memoryOf(pid);

        const socket = net.connect(env.imapPort, '127.0.0.1');
        socket.on('error', () => {});
        let received = '';
        const onData = (chunk: Buffer) => (received += chunk.toString('latin1'));
        socket.on('data', onData);
        await new Promise<void>(resolve => socket.once('connect', () => resolve()));
        socket.write(`l1 LOGIN ${USER.name} ${USER.password}\r\ns1 SELECT INBOX\r\ni1 IDLE\r\n`);
        for (let waited = 0; !received.includes('\r\n+ '); waited += 10) {
            if (waited > 10_000) throw new Error('IDLE not accepted');
            await sleep(10);
        }
        socket.off('data', onData);
        socket.pause();

        let peak = memoryOf(pid).rss;
        for (let n = 1; n <= STORES; n++) {
            const keywords = KEYWORDS.filter((_, i) => i !== n % KEYWORDS.length);
            const reply = await actor.command(`STORE 1:* FLAGS.SILENT (${keywords.join(' ')})`, 60_000);
            if (!/ OK /.test(reply.tagged)) throw new Error(`STORE ${n}: ${reply.tagged}`);
            peak = Math.max(peak, memoryOf(pid).rss);
        }
        const held = memoryOf(pid);
        socket.destroy();
        actor.destroy();
        await sleep(AFTER_MS);
        const after = memoryOf(pid);
        const load = loadAverage();
        console.log(`${STORES} STOREs of keywords on ${MESSAGES} messages while an IDLE session reads nothing (load ${load}):`);
        console.log(`  RSS before ${fmtMB(before.rss)}; peak while unread ${fmtMB(peak)} (VmHWM ${fmtMB(held.hwm)}); ${AFTER_MS} ms after the client left ${fmtMB(after.rss)}`);
    } finally {
        await killAllDaemons();
        fs.rmSync(env.dir, { recursive: true, force: true });
    }
}

main().catch(err => {
    console.error(err);
    process.exit(1);
});
