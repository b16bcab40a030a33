/**
 * The uplink run as the status page sees it: the latest run started in this daemon (by the
 * schedule, `mailmule sync` or the page's "sync now"), with each account's last progress
 * snapshot while it runs and its outcome once it ends. The daemon passes every run's options
 * through watch(), which tees the runner's own progress reports (the ones `mailmule sync` draws
 * on a terminal) into here; nothing is counted twice and nothing here touches the store.
 */
import type { ProgressSnapshot, RunOptions, RunReport } from '../uplink';

export interface WatchedRun {
    trigger: string;
    startedAt: number;
    /** Each account's latest snapshot, in the order they first reported. */
    accounts: ProgressSnapshot[];
    /** Null while it runs. */
    outcome: { status: RunReport['status']; message: string | null; bytesTotal: number; finishedAt: number } | { error: string; finishedAt: number } | null;
}

export class UplinkWatch {
    private current: { trigger: string; startedAt: number; accounts: Map<string, ProgressSnapshot>; outcome: WatchedRun['outcome'] } | null = null;

    constructor(
        /** Whether a run of this daemon's runner is going on now. */
        private readonly isRunning: () => boolean,
        private readonly now: () => number = Date.now
    ) {}

    /**
     * Runs `run` with `options`, recording its progress and outcome. A run refused because one
     * is already going on here leaves that one's record alone.
     */
    watch(options: RunOptions, run: (options: RunOptions) => Promise<RunReport>): Promise<RunReport> {
        if (this.isRunning()) return run(options);
        const record = { trigger: options.trigger, startedAt: this.now(), accounts: new Map<string, ProgressSnapshot>(), outcome: null as WatchedRun['outcome'] };
        this.current = record;
        const teed: RunOptions = {
            ...options,
            onProgress: snapshot => {
                record.accounts.set(snapshot.account, snapshot);
                options.onProgress?.(snapshot);
            }
        };
        let running: Promise<RunReport>;
        try {
            running = run(teed);
        } catch (err) {
            running = Promise.reject(err instanceof Error ? err : new Error(String(err)));
        }
        return running.then(
            report => {
                record.outcome = { status: report.status, message: report.message, bytesTotal: report.bytesTotal, finishedAt: this.now() };
                return report;
            },
            (err: unknown) => {
                record.outcome = { error: (err as Error).message, finishedAt: this.now() };
                throw err;
            }
        );
    }

    /** The latest run started in this daemon since it started, or null. */
    latest(): WatchedRun | null {
        const record = this.current;
        return record && { trigger: record.trigger, startedAt: record.startedAt, accounts: [...record.accounts.values()], outcome: record.outcome };
    }
}
