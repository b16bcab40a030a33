/**
 * The physical limit bench/relay.ts compares against: raw messages as one stream, compressed by
 * zstd as the bundle writer does it (level 19, windowLog 27, long-distance matching) and by
 * `xz -9e` when xz is installed.
 */
import zlib from 'node:zlib';
import { execFileSync } from 'node:child_process';

export interface Limits {
    raw: number;
    zstd: number;
    /** null when xz is not installed. */
    xz: number | null;
}

export function compressionLimits(messages: Buffer[]): Limits {
    const stream = Buffer.concat(messages);
    const zstd = zlib.zstdCompressSync(stream, {
        params: {
            [zlib.constants.ZSTD_c_compressionLevel]: 19,
            [zlib.constants.ZSTD_c_windowLog]: 27,
            [zlib.constants.ZSTD_c_enableLongDistanceMatching]: 1
        }
    }).length;
    return { raw: stream.length, zstd, xz: xzSize(stream) };
}

function xzSize(stream: Buffer): number | null {
    try {
        return execFileSync('xz', ['-9e', '-c'], { input: stream, maxBuffer: 1024 * 1024 * 1024 }).length;
    } catch {
        return null;
    }
}
