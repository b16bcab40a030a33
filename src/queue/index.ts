export { QueueIntake } from './intake';
export { buildBounce, bounceToSender } from './bounce';
export type { BounceOptions, BouncedRecipient } from './bounce';
