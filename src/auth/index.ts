export { hashPassword, verifyPassword } from './passwords';
export { FailureLimiter } from './limiter';
export { findLocalUser } from './users';
