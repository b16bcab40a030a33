/** Bounded waiting for tests and benchmarks: every wait has a deadline and says what it waited for. */

/** A pause between polls of a condition (never a stand-in for an event the code can wait on). */
export const sleep = (ms: number) => new Promise<void>(resolve => setTimeout(resolve, ms));

/** `promise`, or a rejection naming `what` after `ms`; the timer is cleared either way. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
    let timer: NodeJS.Timeout;
    return Promise.race([
        promise,
        new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
        })
    ]).finally(() => clearTimeout(timer));
}

/** Polls `condition` every 10 ms until it holds; rejects naming `what` after `timeoutMs`. */
export async function waitUntil(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!condition()) {
        if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await sleep(10);
    }
}

/** What a check says: `{ value }` settles the wait with it, an Error fails it, undefined waits on. */
export type Verdict<T> = { value: T } | Error | undefined;

/**
 * Waits on an object's own events instead of polling: `check` runs now and each time the object
 * calls the members of `waiters` (it adds one while it waits), until it gives a verdict; after
 * `timeoutMs` the wait fails with `onTimeout()`.
 */
export function settleOn<T>(waiters: Set<() => void>, check: () => Verdict<T>, timeoutMs: number, onTimeout: () => Error): Promise<T> {
    return new Promise((resolve, reject) => {
        const wake = () => {
            const verdict = check();
            if (verdict === undefined) return;
            done();
            if (verdict instanceof Error) reject(verdict);
            else resolve(verdict.value);
        };
        const timer = setTimeout(() => {
            done();
            reject(onTimeout());
        }, timeoutMs);
        const done = () => {
            clearTimeout(timer);
            waiters.delete(wake);
        };
        waiters.add(wake);
        wake();
    });
}
