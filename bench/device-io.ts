/**
 * Counting what a mail stack writes, for bench/disk-writes.ts, two ways:
 *
 * - at the device: a file system of its own (ext4 in a sparse image on a loop device, as a Pi's
 *   SD card is ext4), holding only the stack under measurement; after `sync -f` (syncfs) the
 *   loop device's sectors-written counter (/sys/block/loopN/stat) says what reached the device:
 *   data, metadata, directory entries and the ext4 journal, whoever wrote them;
 * - per process: write_bytes and cancelled_write_bytes of /proc/<pid>/io, summed over a
 *   process tree. The kernel charges write_bytes when a page is first dirtied (or direct I/O is
 *   submitted), not at writeback; a page dirtied again after it was written back is charged
 *   again. It does not see the journal or inode writes the file system makes on a process's
 *   behalf. A reaped child's counters are added to its parent's (the kernel does so in
 *   wait_task_zombie), so a master's /proc/<pid>/io keeps what its exited children wrote, and
 *   the tree sum taken before and after a run stays truthful while children come and go.
 *
 * Needs root (losetup, mount). Every command is bounded.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { readStatus } from './support';

export interface LoopFileSystem {
    /** Its mount point. */
    dir: string;
    /** Bytes the device has been asked to write since it was attached, after a syncfs. */
    bytesWritten(): number;
    close(): void;
}

const run = (command: string, args: string[]) =>
    execFileSync(command, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 120000 })
        .toString()
        .trim();

const mounted = new Set<LoopFileSystem>();
process.on('exit', () => {
    for (const loop of mounted) loop.close();
});

/** A fresh ext4 file system of `megabytes` in `parent`/device.img, mounted on `parent`/device. */
export function mountLoopFileSystem(parent: string, megabytes: number): LoopFileSystem {
    const image = path.join(parent, 'device.img');
    const dir = path.join(parent, 'device');
    fs.mkdirSync(dir, { recursive: true });
    fs.closeSync(fs.openSync(image, 'w'));
    fs.truncateSync(image, megabytes * 1024 * 1024);
    // No lazy initialisation: the kernel would otherwise zero inode tables in the background while we count.
    run('mkfs.ext4', ['-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0', image]);
    const device = run('losetup', ['-f', '--show', image]);
    let attached = true;
    const loop: LoopFileSystem = {
        dir,
        bytesWritten() {
            run('sync', ['-f', dir]);
            // Field 7 of the block layer's stat: sectors written (512 bytes each, whatever the device's own sector size).
            const fields = fs
                .readFileSync(`/sys/block/${path.basename(device)}/stat`, 'utf8')
                .trim()
                .split(/\s+/);
            return Number(fields[6]) * 512;
        },
        close() {
            if (!attached) return;
            attached = false;
            mounted.delete(loop);
            try {
                run('umount', [dir]);
            } catch {
                run('umount', ['-l', dir]);
            }
            run('losetup', ['-d', device]);
            fs.rmSync(image, { force: true });
        }
    };
    try {
        run('mount', [device, dir]);
    } catch (err) {
        run('losetup', ['-d', device]);
        throw err;
    }
    fs.chmodSync(dir, 0o755);
    mounted.add(loop);
    return loop;
}

export interface IoCount {
    writeBytes: number;
    cancelledBytes: number;
}

/** write_bytes and cancelled_write_bytes of one process (null when it is gone or unreadable). */
export function ioOf(pid: number): IoCount | null {
    try {
        return parseIo(fs.readFileSync(`/proc/${pid}/io`, 'utf8'));
    } catch {
        return null;
    }
}

/** The two counters from the text of a /proc/<pid>/io (null without them). */
export function parseIo(text: string): IoCount | null {
    const write = /^write_bytes:\s*(\d+)/m.exec(text);
    const cancelled = /^cancelled_write_bytes:\s*(\d+)/m.exec(text);
    return write && cancelled ? { writeBytes: Number(write[1]), cancelledBytes: Number(cancelled[1]) } : null;
}

/** `roots` and all their descendants. */
function treePids(roots: number[]): number[] {
    const parents = new Map<number, number>();
    for (const entry of fs.readdirSync('/proc')) {
        if (/^\d+$/.test(entry)) parents.set(Number(entry), Number(readStatus(Number(entry)).PPid) || 0);
    }
    const inTree = (pid: number) => {
        for (let p: number | undefined = pid, depth = 0; p && depth < 30; p = parents.get(p), depth++) if (roots.includes(p)) return true;
        return false;
    };
    return [...parents.keys()].filter(inTree);
}

/**
 * The counters summed over the process trees of `roots`, leaving out processes whose name is
 * in `skip` (log writers, whose files this benchmark keeps off the measured device).
 */
export function treeIo(roots: number[], skip: string[] = []): IoCount {
    const total: IoCount = { writeBytes: 0, cancelledBytes: 0 };
    for (const pid of treePids(roots)) {
        if (skip.includes(readStatus(pid).Name ?? '')) continue;
        const io = ioOf(pid);
        if (!io) continue;
        total.writeBytes += io.writeBytes;
        total.cancelledBytes += io.cancelledBytes;
    }
    return total;
}

export function ioBetween(before: IoCount, after: IoCount): IoCount {
    return { writeBytes: after.writeBytes - before.writeBytes, cancelledBytes: after.cancelledBytes - before.cancelledBytes };
}
