export { QueueIntake } from './intake';
export { buildBounce } from './bounce';
export type { BounceOptions, BouncedRecipient } from './bounce';
