export { QueueIntake } from './intake';
export { QueueDelivery } from './delivery';
export type { QueueDeliveryOptions } from './delivery';
export { buildBounce, bounceToSender, bouncedRecipients, dsnStatus } from './bounce';
export type { BounceOptions, BouncedRecipient } from './bounce';
export { buildAccountNotice, accountNoticeText } from './account-notice';
export { backoffMs, classifyConnectionError, pendingRecipients } from './retry-policy';
export type { AttemptOutcome, ConnectionFailure, ConnectionFailureKind, ProviderAnswer, RecipientFailure, RecipientRefusal } from './retry-policy';
