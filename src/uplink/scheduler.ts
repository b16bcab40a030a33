/**
 * Automatic runs from `uplink.schedule` (cron expressions, node-cron). A run already going on
 * when a schedule fires is not queued behind: the next slot will come.
 */
import cron from 'node-cron';
import type { Logger } from '../log';
import { RunInProgressError } from './run-in-progress';
import type { RunOptions, RunReport } from './runner';

export class UplinkScheduler {
    private tasks: ReturnType<typeof cron.schedule>[] = [];

    constructor(
        private readonly run: (options: RunOptions) => Promise<RunReport>,
        private readonly logger: Logger
    ) {}

    /** Replaces the schedule (start-up and SIGHUP). Invalid expressions are refused by config validation. */
    apply(expressions: string[]): void {
        this.stop();
        for (const expression of expressions) {
            const task = cron.schedule(expression, () => {
                this.run({ trigger: `schedule ${expression}` }).catch(err => {
                    if (err instanceof RunInProgressError) this.logger.info({ schedule: expression }, 'scheduled run skipped: a run is in progress');
                    else this.logger.error({ err: { message: (err as Error).message } }, 'scheduled run failed');
                });
            });
            this.tasks.push(task);
        }
    }

    /** The next scheduled run, or null. */
    nextRun(): Date | null {
        const next = this.tasks.map(task => task.getNextRun()).filter((d): d is Date => d instanceof Date);
        return next.length ? new Date(Math.min(...next.map(d => d.getTime()))) : null;
    }

    stop(): void {
        for (const task of this.tasks) {
            this.settle(task.stop(), 'stop');
            this.settle(task.destroy(), 'destroy');
        }
        this.tasks = [];
    }

    /**
     * node-cron types stop() and destroy() as `void | Promise<void>`: a promise comes only from a
     * task run in a forked process, which this scheduler does not make. Should one come, its
     * failure is logged rather than left as an unhandled rejection.
     */
    private settle(result: void | Promise<void>, what: 'stop' | 'destroy'): void {
        Promise.resolve(result).catch((err: unknown) => this.logger.warn({ err: { message: (err as Error).message } }, `scheduled task ${what} failed`));
    }
}

export function validateCron(expression: string): boolean {
    return cron.validate(expression);
}
