import type { Store, Submission, SubmissionResult } from '../store';
import type { Logger } from '../log';
import type { LoginSource } from '../auth';

export { addressesOf } from '../config';
export { findLocalUser } from '../auth';

/** What the submission service needs; the daemon wires it. Getters, because SIGHUP can swap the config. */
export interface SmtpContext extends LoginSource {
    store: Store;
    logger: Logger;
    hostname(): string;
    verifyPassword(password: string, stored: string | null): Promise<boolean>;
    /** Commits a submission durably (the queue's intake); resolves only once it is on disk. */
    submit(submission: Submission): Promise<SubmissionResult>;
}
