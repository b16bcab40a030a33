/**
 * The error of a run refused because another is going on, here or in another process. On its own
 * so that the control socket (control.ts), which `mailmule status` loads to ask the daemon, does
 * not load the runner with it.
 */
export class RunInProgressError extends Error {
    constructor(pid: number) {
        super(`an uplink run is already in progress (pid ${pid})`);
    }
}
