export { SmtpService } from './server';
export type { SmtpServiceOptions, RunningSmtpListener } from './server';
export type { SmtpContext } from './context';
