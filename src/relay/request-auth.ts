/**
 * Requests from a Pi to its relay are signed with the Pi's key: method, path, the byte range the
 * request is about and the time, so a request cannot be made by anyone else, nor replayed later
 * than REQUEST_MAX_SKEW_MS (within it, a replay repeats an idempotent request).
 */
import crypto from 'node:crypto';

export const REQUEST_MAX_SKEW_MS = 5 * 60_000;
const CONTEXT = 'mailmule-relay-request-v1';

export interface SignedHeaders {
    'x-mailmule-pi': string;
    'x-mailmule-time': string;
    'x-mailmule-signature': string;
}

function message(method: string, path: string, range: string, time: string): Buffer {
    return Buffer.from([CONTEXT, method.toUpperCase(), path, range, time].join('\n'));
}

export function signRequest(pi: string, key: crypto.KeyObject, method: string, path: string, range: string, now: number = Date.now()): SignedHeaders {
    const time = String(now);
    return { 'x-mailmule-pi': pi, 'x-mailmule-time': time, 'x-mailmule-signature': crypto.sign(null, message(method, path, range, time), key).toString('base64') };
}

/** Whether the request's signature is the Pi's, and recent. */
export function verifyRequest(key: crypto.KeyObject, method: string, path: string, range: string, time: string, signature: string, now: number = Date.now()): boolean {
    const at = Number(time);
    if (!Number.isSafeInteger(at) || Math.abs(now - at) > REQUEST_MAX_SKEW_MS) return false;
    const bytes = Buffer.from(signature, 'base64');
    if (bytes.length !== 64) return false;
    return crypto.verify(null, message(method, path, range, time), key, bytes);
}
