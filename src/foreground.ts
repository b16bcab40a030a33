/**
 * The daemon in the foreground, as `mailmule start` and systemd run it, and its signals.
 *
 * - It starts whole or not at all (Daemon.start): when a listener cannot be bound, what was opened
 *   is closed, the reason is logged, and runForeground rejects with the error (the CLI turns a
 *   ListenError into its own exit code), so systemd sees a failed start instead of a daemon that
 *   runs without SMTP.
 * - SIGTERM or SIGINT, whenever it comes, start-up included, leads to a clean shutdown (listeners
 *   closed, received submissions committed, store closed), after which runForeground resolves.
 * - A second SIGTERM or SIGINT during that shutdown exits at once with 128 + the signal's number,
 *   as a shell reports a process killed by it: the way out of a shutdown that hangs.
 * - SIGHUP reloads both YAML files; one that arrives during start-up is applied once started.
 *
 * The handlers are installed before anything else happens: a signal that found none would kill
 * the process with the store open.
 */
import os from 'node:os';
import { Daemon, StartCancelled } from './daemon';
import { journalPrefix } from './log';

export async function runForeground(configFile: string): Promise<void> {
    let daemon: Daemon | undefined;
    let started = false;
    let reloadPending = false;
    let stopSignal: NodeJS.Signals | null = null;
    let wake = () => {};
    const stopRequested = new Promise<void>(resolve => (wake = resolve));

    const onStop = (signal: NodeJS.Signals) => {
        if (stopSignal) {
            const message = `second ${signal} during shutdown: exiting at once`;
            if (daemon) daemon.logger.warn({ signal }, message);
            else process.stderr.write(`${journalPrefix(2, 4)}mailmule: ${message}\n`);
            daemon?.logger.flush?.();
            process.exit(128 + os.constants.signals[signal]);
        }
        stopSignal = signal;
        daemon?.logger.info({ signal, duringStartUp: !started }, 'stopping');
        daemon?.requestStop();
        wake();
    };
    const onReload = () => {
        if (stopSignal) return; // the store may be closed already
        if (started) daemon!.reload();
        else reloadPending = true;
    };
    const detach = () => {
        process.off('SIGTERM', onStop);
        process.off('SIGINT', onStop);
        process.off('SIGHUP', onReload);
    };
    process.on('SIGTERM', onStop);
    process.on('SIGINT', onStop);
    process.on('SIGHUP', onReload);

    try {
        process.stderr.write(`${journalPrefix(2, 6)}mailmule: using ${configFile}\n`);
        // No handler can have run yet: signals are handled only once start() yields to the event loop.
        daemon = new Daemon(configFile);
        await daemon.start();
    } catch (err) {
        // Nothing is left to stop cleanly: should anything still hold the process, a signal ends it.
        detach();
        if (err instanceof StartCancelled) {
            daemon!.logger.info('mailmule stopped');
            daemon!.logger.flush?.();
            return;
        }
        const { message, code } = err as NodeJS.ErrnoException;
        daemon?.logger.fatal({ code }, `mailmule could not start: ${message}`);
        daemon?.logger.flush?.();
        throw err;
    }
    started = true;
    if (reloadPending) daemon.reload();
    await stopRequested;
    try {
        await daemon.stop();
    } catch (err) {
        daemon.logger.error({ err: { message: (err as Error).message } }, 'error while stopping');
        daemon.logger.flush?.();
        throw err;
    }
}
