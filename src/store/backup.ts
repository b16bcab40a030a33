/**
 * Backups of a store, taken while the daemon runs, and their restore into an empty data
 * directory. A backup directory looks like a data directory cut down to what matters:
 *
 *   DIR/mailmule.sqlite          SQLite's online backup of the database (consistent: one snapshot)
 *   DIR/blobs/ab/<sha256>        the message files that snapshot references
 *   DIR/blobs/.store-id          the store's id, as in the data directory
 *
 * Incremental: message files are named by their content hash, so a file already in DIR is the
 * same bytes and is not copied again; a file the new snapshot no longer references is removed
 * from DIR (only from DIR, never from the store). Every file copied is read once and its hash
 * checked, so a backup never carries a damaged message forward silently.
 *
 * The snapshot is taken before the files are copied. A message expunged between the two has no
 * file left to copy; the backup then takes a new snapshot (which no longer references it) and
 * copies what that one needs, a few times at most.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Connection } from './connection';
import { fsyncDirSync, listMessageHashes, messageFilePath, readStoreId, writeStoreId } from './message-files';

export interface BackupReport {
    storeId: string;
    /** Message files the backup holds (as many as the snapshot references). */
    messageFiles: number;
    /** Of those, copied by this run; the rest were in DIR already. */
    copied: number;
    bytesCopied: number;
    /** Files in DIR that the new snapshot no longer references, removed from DIR. */
    pruned: number;
    /** Snapshots taken (more than one when mail was expunged during the copy). */
    snapshots: number;
}

export interface RestoreReport {
    storeId: string;
    messageFiles: number;
    bytes: number;
}

/** A backup or restore that cannot go ahead as asked (a non-empty target, another store's backup, a damaged backup). */
export class BackupError extends Error {
    override name = 'BackupError';
}

const DATABASE = 'mailmule.sqlite';
const MAX_SNAPSHOTS = 5;

/** Backs up the store open on `db` (its message files under `dataDir`) into `targetDir`. */
export async function backupStore(db: Connection, dataDir: string, targetDir: string): Promise<BackupReport> {
    const liveBlobs = path.join(dataDir, 'blobs');
    const targetBlobs = path.join(targetDir, 'blobs');
    const storeId = readStoreId(liveBlobs);
    if (!storeId) throw new BackupError(`the store in ${dataDir} has no id yet; start mailmule once before backing it up`);
    const previous = readStoreId(targetBlobs);
    if (previous && previous !== storeId) {
        throw new BackupError(`${targetDir} holds a backup of another store (${previous}, this one is ${storeId}); back up into an empty directory or that store's own`);
    }
    fs.mkdirSync(targetBlobs, { recursive: true, mode: 0o700 });
    const partial = path.join(targetDir, `${DATABASE}.partial`);
    const report: BackupReport = { storeId, messageFiles: 0, copied: 0, bytesCopied: 0, pruned: 0, snapshots: 0 };
    let referenced: Set<string> | null = null;
    while (!referenced) {
        if (report.snapshots === MAX_SNAPSHOTS) throw new BackupError(`message files kept disappearing during ${MAX_SNAPSHOTS} snapshots; try again when the store is quieter`);
        removeDatabase(partial);
        await db.backupTo(partial);
        report.snapshots++;
        const hashes = readSnapshot(partial, storeId);
        let complete = true;
        for (const hash of hashes) {
            const target = messageFilePath(targetBlobs, hash);
            if (fs.existsSync(target)) continue;
            const bytes = await copyVerified(messageFilePath(liveBlobs, hash), target, hash);
            if (bytes === null) {
                complete = false;
                continue;
            }
            report.copied++;
            report.bytesCopied += bytes;
        }
        if (complete) referenced = hashes;
    }
    syncFile(partial);
    fs.renameSync(partial, path.join(targetDir, DATABASE));
    fsyncDirSync(targetDir);
    writeStoreId(targetBlobs, storeId);
    for (const hash of [...listMessageHashes(targetBlobs)]) {
        if (!referenced.has(hash)) {
            fs.rmSync(messageFilePath(targetBlobs, hash), { force: true });
            report.pruned++;
        }
    }
    report.messageFiles = referenced.size;
    return report;
}

/**
 * Restores the backup in `backupDir` into `dataDir`, which must be empty or absent. Every file is
 * checked against its hash on the way; the database is put in place last, so a restore that
 * stops half-way leaves message files without a database, which the store refuses to open.
 */
export function restoreStore(backupDir: string, dataDir: string): RestoreReport {
    if (fs.existsSync(dataDir) && fs.readdirSync(dataDir).length) {
        throw new BackupError(`${dataDir} is not empty; restore only into an empty data directory (move the old one aside first)`);
    }
    const source = path.join(backupDir, DATABASE);
    const backupBlobs = path.join(backupDir, 'blobs');
    const storeId = readStoreId(backupBlobs);
    if (!fs.existsSync(source) || !storeId) throw new BackupError(`${backupDir} holds no mailmule backup (${DATABASE} and blobs/.store-id)`);
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const partial = path.join(dataDir, `${DATABASE}.partial`);
    fs.copyFileSync(source, partial);
    const hashes = readSnapshot(partial, storeId, 'integrity_check');
    const blobs = path.join(dataDir, 'blobs');
    const report: RestoreReport = { storeId, messageFiles: 0, bytes: 0 };
    const problems: string[] = [];
    for (const hash of hashes) {
        const bytes = copyVerifiedSync(messageFilePath(backupBlobs, hash), messageFilePath(blobs, hash), hash);
        if (typeof bytes === 'string') problems.push(bytes);
        else report.bytes += bytes;
    }
    if (problems.length) {
        throw new BackupError(`the backup in ${backupDir} is incomplete: ${problems.length} message file(s) missing or damaged, e.g. ${problems.slice(0, 3).join('; ')}`);
    }
    report.messageFiles = hashes.size;
    writeStoreId(blobs, storeId);
    syncFile(partial);
    fs.renameSync(partial, path.join(dataDir, DATABASE));
    fs.chmodSync(path.join(dataDir, DATABASE), 0o600);
    fsyncDirSync(dataDir);
    return report;
}

/** The hashes a snapshot references, after checking that it is sound and is `storeId`'s. */
function readSnapshot(file: string, storeId: string, check: 'quick_check' | 'integrity_check' = 'quick_check'): Set<string> {
    const snapshot = new Database(file);
    try {
        const result = String(snapshot.pragma(check, { simple: true }));
        if (result !== 'ok') throw new BackupError(`the database copy ${file} is damaged (${check}: ${result})`);
        const id = snapshot.prepare("SELECT value FROM meta WHERE key = 'store_id'").pluck().get();
        if (id !== storeId) throw new BackupError(`the database copy ${file} belongs to store ${String(id)}, not ${storeId}`);
        // A file on its own: nothing of it waits in a -wal file beside it.
        snapshot.pragma('journal_mode = DELETE');
        // Inline messages (inline-messages.ts) are in the database copy itself: no file to copy.
        return new Set(snapshot.prepare('SELECT hash FROM blobs WHERE raw IS NULL').pluck().all() as string[]);
    } finally {
        snapshot.close();
    }
}

function removeDatabase(file: string): void {
    for (const suffix of ['', '-wal', '-shm', '-journal']) fs.rmSync(`${file}${suffix}`, { force: true });
}

/** Copies a message file after checking its hash; null when the source is gone (expunged since the snapshot). */
async function copyVerified(source: string, target: string, hash: string): Promise<number | null> {
    let raw: Buffer;
    try {
        raw = await fs.promises.readFile(source);
    } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw err;
    }
    if (sha256(raw) !== hash) throw new BackupError(`the message file ${source} does not match its hash: the store is damaged`);
    writeDurably(target, raw);
    return raw.length;
}

/** As copyVerified, for restore: the size copied, or what is wrong with the file. */
function copyVerifiedSync(source: string, target: string, hash: string): number | string {
    let raw: Buffer;
    try {
        raw = fs.readFileSync(source);
    } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return `${hash} is missing`;
        throw err;
    }
    if (sha256(raw) !== hash) return `${hash} does not match its hash`;
    writeDurably(target, raw);
    return raw.length;
}

function sha256(raw: Buffer): string {
    return crypto.createHash('sha256').update(raw).digest('hex');
}

/** tmp file, fsync, rename, fsync the directory: a file either is there whole or not at all. */
function writeDurably(target: string, raw: Buffer): void {
    const dir = path.dirname(target);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const tmp = `${target}.${process.pid}.tmp`;
    const fd = fs.openSync(tmp, 'w', 0o600);
    try {
        fs.writeFileSync(fd, raw);
        fs.fsyncSync(fd);
    } finally {
        fs.closeSync(fd);
    }
    fs.renameSync(tmp, target);
    fsyncDirSync(dir);
}

function syncFile(file: string): void {
    const fd = fs.openSync(file, 'r+');
    try {
        fs.fsyncSync(fd);
    } finally {
        fs.closeSync(fd);
    }
}
