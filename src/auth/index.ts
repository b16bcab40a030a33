export { hashPassword, verifyPassword } from './passwords';
export { AuthPenalty, type AuthPenaltyOptions } from './limiter';
export { findLocalUser } from './users';
export { attemptLogin, loginDeps, type LoginDeps, type LoginSource, type LoginAttempt, type LoginOutcome } from './login';
