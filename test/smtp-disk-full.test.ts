/**
 * A full disk, for real (issue 10, item 6): `mailmule start` runs in its own mount namespace
 * (unshare) with its data directory on an 8 MB tmpfs, filled but for 512 KB. A 1.5 MB message
 * then fails on ENOSPC while its file is written: the client gets 452 4.3.1 saying the disk is
 * full (not "try again" for some unnamed reason), no message file is left, and once space is
 * freed the same message is accepted without a restart.
 *
 * Needs root (mounting a tmpfs in a private mount namespace), as CI runs; skipped otherwise.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { killAllDaemons, setup, startDaemon } from './support/daemon-process';
import { tempDir, type TestUser } from './support/gateway';
import { loggedIn, submitRaw } from './support/raw-smtp';

const PASSWORD = 'alice-disk-full-pw';
const USERS: TestUser[] = [{ name: 'alice', password: PASSWORD }];
const FROM = 'alice@mailmule.lan';

/** Runs its arguments with the data directory ($1) on a nearly full tmpfs seen by them alone. */
const ON_A_FULL_DISK = [
    'set -e',
    'data="$1"; shift',
    'cp -a "$data" "$data.disk"',
    'mount -t tmpfs -o size=8m,mode=0700 tmpfs "$data"',
    'cp -a "$data.disk/." "$data/"',
    // Fill it, then free 512 KB: room for the database, not for the message.
    'dd if=/dev/zero of="$data/filler" bs=64k 2>/dev/null || true',
    'truncate -s -512K "$data/filler"',
    'exec "$@"'
].join('\n');

function canMountPrivately(): boolean {
    const dir = tempDir('mailmule-mount-probe-');
    try {
        return spawnSync('unshare', ['--mount', '--propagation', 'private', 'mount', '-t', 'tmpfs', 'tmpfs', dir]).status === 0;
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

after(async () => {
    await killAllDaemons();
});

test('disk full: 452 4.3.1 says so, nothing is left behind, and the message goes once there is room', { timeout: 120_000 }, async t => {
    if (!canMountPrivately()) return t.skip('needs root: a tmpfs in a private mount namespace');
    const config = await setup({ users: USERS, prefix: 'mailmule-disk-full-' });
    const daemon = await startDaemon(config.configFile, [], ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', ON_A_FULL_DISK, 'sh', config.dataDir]);
    // The daemon's data directory, through its own mount namespace.
    const dataDir = path.join(`/proc/${daemon.child.pid}/root`, config.dataDir);
    const blobFiles = () =>
        fs
            .readdirSync(path.join(dataDir, 'blobs'), { recursive: true })
            .map(String)
            .filter(name => name.includes(path.sep))
            .sort();
    try {
        const data = [`From: ${FROM}`, 'To: alice@mailmule.lan', 'Subject: no room', '', ('r'.repeat(76) + '\r\n').repeat(20_000)].join('\r\n');
        const filesBefore = blobFiles();
        const client = await loggedIn(config.smtpPort, 'alice', PASSWORD);
        try {
            const full = await submitRaw(client, FROM, ['alice@mailmule.lan'], data);
            assert.equal(full.code, 452, full.text);
            assert.equal(full.text, "4.3.1 The mail server's disk is full; try again later");
            assert.deepEqual(blobFiles(), filesBefore, 'no message file left');
            assert.deepEqual(fs.readdirSync(path.join(dataDir, 'tmp')), [], 'no temporary file left');

            fs.rmSync(path.join(dataDir, 'filler'));
            const fine = await submitRaw(client, FROM, ['alice@mailmule.lan'], data);
            assert.equal(fine.code, 250, fine.text);
        } finally {
            await client.quit();
        }
        assert.equal(await daemon.stop(), 0, daemon.lines.join('\n'));
    } finally {
        await daemon.kill9();
        fs.rmSync(config.dir, { recursive: true, force: true });
    }
});
