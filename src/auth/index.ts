export { hashPassword, verifyPassword } from './passwords';
export { AuthPenalty, type AuthPenaltyOptions } from './limiter';
export { findLocalUser } from './users';
export { attemptLogin, type LoginDeps, type LoginAttempt, type LoginOutcome } from './login';
