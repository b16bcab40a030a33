/**
 * Local passwords: scrypt hashes stored in the store (state, not config).
 *
 * Format: `scrypt$<logN>$<r>$<p>$<salt b64>$<hash b64>`; the parameters travel with each hash.
 * N = 2^14, r = 8 (scrypt's own recommendation for interactive logins) holds 16 MB while it runs
 * and costs about 50 ms on a Pi 4: 2^15 doubled the daemon's peak memory for LAN passwords that
 * are also rate-limited per address. That cost is why successful verifications are cached in memory for a few minutes, keyed by a
 * keyed digest of (stored hash, password): Thunderbird and K-9 open several connections at once
 * and re-login often, and each must not pay the full hash again. Nothing secret is logged.
 */
import crypto from 'node:crypto';

const LOG_N = 14;
const BLOCK_SIZE = 8;
const PARALLEL = 1;
const KEY_LENGTH = 32;
const CACHE_TTL_MS = 10 * 60 * 1000;
const CACHE_MAX = 1000;

/**
 * Each scrypt run holds 128 * N * r bytes (16 MB here) while it works, so only one runs at
 * once: ten phones logging in together after a power cut must not push a 1 GB Pi into swap.
 * One at a time: successful logins are cached, so only first logins and wrong passwords wait.
 */
const MAX_PARALLEL_HASHES = 1;
let running = 0;
const waiting: (() => void)[] = [];

async function scrypt(password: string, salt: Buffer, logN: number, r: number, p: number): Promise<Buffer> {
    if (running >= MAX_PARALLEL_HASHES) {
        await new Promise<void>(resolve => waiting.push(resolve));
    }
    running++;
    try {
        return await new Promise((resolve, reject) => {
            crypto.scrypt(password, salt, KEY_LENGTH, { N: 2 ** logN, r, p, maxmem: 256 * 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key)));
        });
    } finally {
        running--;
        waiting.shift()?.();
    }
}

export async function hashPassword(password: string): Promise<string> {
    const salt = crypto.randomBytes(16);
    const key = await scrypt(password, salt, LOG_N, BLOCK_SIZE, PARALLEL);
    return ['scrypt', LOG_N, BLOCK_SIZE, PARALLEL, salt.toString('base64'), key.toString('base64')].join('$');
}

const cacheKeySecret = crypto.randomBytes(32);
const verified = new Map<string, number>();

function cacheKey(stored: string, password: string): string {
    return crypto.createHmac('sha256', cacheKeySecret).update(stored).update('\0').update(password).digest('base64');
}

/**
 * A hash nobody's password matches, verified for unknown users and users without a password so
 * that a login takes as long whether or not the name exists.
 */
const UNKNOWN_USER_HASH = ['scrypt', LOG_N, BLOCK_SIZE, PARALLEL, Buffer.alloc(16).toString('base64'), Buffer.alloc(KEY_LENGTH).toString('base64')].join('$');

export async function verifyPassword(password: string, stored: string | null): Promise<boolean> {
    if (!stored) {
        await verifyPassword(password, UNKNOWN_USER_HASH);
        return false;
    }
    const key = cacheKey(stored, password);
    const cachedUntil = verified.get(key);
    if (cachedUntil && cachedUntil > Date.now()) {
        return true;
    }
    // A client opening several connections at once sends the same login on each: hash it once.
    const pending = inFlight.get(key);
    if (pending) {
        return pending;
    }
    const check = checkPassword(password, stored, key).finally(() => inFlight.delete(key));
    inFlight.set(key, check);
    return check;
}

const inFlight = new Map<string, Promise<boolean>>();

async function checkPassword(password: string, stored: string, key: string): Promise<boolean> {
    const parts = stored.split('$');
    if (parts.length !== 6 || parts[0] !== 'scrypt') {
        return false;
    }
    const [, logN, r, p, saltB64, hashB64] = parts;
    const expected = Buffer.from(hashB64, 'base64');
    const actual = await scrypt(password, Buffer.from(saltB64, 'base64'), Number(logN), Number(r), Number(p));
    const ok = expected.length === actual.length && crypto.timingSafeEqual(expected, actual);
    if (ok) {
        if (verified.size >= CACHE_MAX) {
            verified.clear();
        }
        verified.set(key, Date.now() + CACHE_TTL_MS);
    }
    return ok;
}
