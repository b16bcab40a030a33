/**
 * Small files replaced whole and durably: written beside, fsynced, renamed over, the directory
 * fsynced. A crash leaves the old content or the new, never a mix. For state and key files (the
 * relay's, the local CA's); message files have their own path in src/store.
 */
import fs from 'node:fs';
import path from 'node:path';

export interface DurableWriteOptions {
    /** File mode; 0600 unless told (secrets are the common case). */
    mode?: number;
    /** 'wx': refuse when the file exists already. */
    flag?: 'w' | 'wx';
}

/** Writes `content` to `file` whole or not at all; returns once the file and its directory entry are on disk. */
export function writeFileDurably(file: string, content: string | Uint8Array, options: DurableWriteOptions = {}): void {
    const mode = options.mode ?? 0o600;
    if (options.flag === 'wx' && fs.existsSync(file)) throw new Error(`${file} exists already`);
    const partial = `${file}.partial-${process.pid}`;
    const fd = fs.openSync(partial, 'w', mode);
    try {
        fs.writeFileSync(fd, content);
        // The mode argument is filtered by the umask; the file's mode is what the caller asked.
        fs.fchmodSync(fd, mode);
        fs.fsyncSync(fd);
    } finally {
        fs.closeSync(fd);
    }
    fs.renameSync(partial, file);
    const dirFd = fs.openSync(path.dirname(file), 'r');
    try {
        fs.fsyncSync(dirFd);
    } finally {
        fs.closeSync(dirFd);
    }
}
