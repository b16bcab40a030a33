/** Small files replaced whole and durably: written beside, fsync'd, renamed, the directory fsync'd. */
import fs from 'node:fs';
import path from 'node:path';

/** Writes `text` to `file` (0600) so that a crash leaves the old content or the new, never a mix. `wx`: fail if it exists. */
export function writeFileDurably(file: string, text: string, flag: 'w' | 'wx' = 'w'): void {
    if (flag === 'wx' && fs.existsSync(file)) throw new Error(`${file} exists already`);
    const partial = `${file}.partial`;
    const fd = fs.openSync(partial, 'w', 0o600);
    try {
        fs.writeSync(fd, text);
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
