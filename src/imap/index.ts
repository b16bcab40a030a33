export { ImapService } from './server';
export type { ImapServiceOptions, RunningListener } from './server';
export { Notifier } from './notifier';
export type { ImapContext } from './context';
