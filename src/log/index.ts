/**
 * JSON-lines logging with pino. Anything that could carry a secret is redacted by key, so a
 * careless `log.info({ account })` cannot leak a password or token.
 */
import pino from 'pino';

export type Logger = pino.Logger;

export const REDACT_PATHS = [
    'password',
    '*.password',
    '*.*.password',
    'pass',
    '*.pass',
    'credentials',
    '*.credentials',
    '*.*.credentials',
    'oauth2',
    '*.oauth2',
    'accessToken',
    '*.accessToken',
    'refreshToken',
    '*.refreshToken',
    'clientSecret',
    '*.clientSecret',
    'auth',
    '*.auth'
];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
    return pino(
        {
            level,
            base: { name: 'mailmule' },
            redact: { paths: REDACT_PATHS, censor: '[redacted]' },
            timestamp: pino.stdTimeFunctions.isoTime
        },
        destination ?? pino.destination({ dest: 1, sync: false })
    );
}
