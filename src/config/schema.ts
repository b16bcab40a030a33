/**
 * The shape of mailmule's two YAML files, as zod schemas.
 *
 * - mailmule.yaml: the gateway itself (listeners, data directory, limits, logging).
 * - accounts.yaml: the account map the admin edits (local users and their upstream accounts).
 *
 * Every object is strict, so a misspelt key is an error that names the key, not a silently
 * ignored setting.
 */
import { z } from 'zod';

/**
 * node-cron is loaded when a schedule is there to check, not whenever the config is: every
 * `mailmule` command reads the config, and most configs have no schedule (about 30 ms saved).
 */
function isCronExpression(value: string): boolean {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const cron = require('node-cron') as typeof import('node-cron');
    return cron.validate(value);
}

const UNITS: Record<string, number> = { b: 1, k: 1024, kb: 1024, m: 1024 ** 2, mb: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3 };

/** A byte size: a number, or a string such as "25 MB" or "512k". */
export const byteSize = z.union([
    z.number().int().nonnegative(),
    z
        .string()
        .regex(/^\s*\d+(\.\d+)?\s*([kmg]?b?)\s*$/i, 'expected a size such as 25MB, 512KB or a number of bytes')
        .transform(value => {
            const match = /^\s*(\d+(?:\.\d+)?)\s*([kmg]?b?)\s*$/i.exec(value)!;
            const unit = (match[2] || 'b').toLowerCase();
            return Math.round(Number(match[1]) * (UNITS[unit] ?? 1));
        })
]);

/** A duration: a number of seconds, or a string such as "30d", "12h", "15m", "45s". */
export const duration = z.union([
    z.number().nonnegative(),
    z
        .string()
        .regex(/^\s*\d+\s*[smhd]\s*$/i, 'expected a duration such as 30d, 12h, 15m or 45s')
        .transform(value => {
            const match = /^\s*(\d+)\s*([smhd])\s*$/i.exec(value)!;
            const factor = { s: 1, m: 60, h: 3600, d: 86400 }[match[2].toLowerCase() as 's' | 'm' | 'h' | 'd'];
            return Number(match[1]) * factor;
        })
]);

const port = z.number().int().min(1).max(65535);
/** A listening port; 0 picks a free one (tests). */
const listenPort = z.number().int().min(0).max(65535);

/** uplink.relay: where the relay is and how this Pi knows it (docs/relay.md). */
const relaySchema = z
    .object({
        /** The relay's address, https only. */
        url: z.string().regex(/^https:\/\/[^\s/]+(\/[^\s]*)?$/, 'expected an https:// URL'),
        /** This Pi's id at the relay, as given to `mailmule relay pair`. */
        id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'expected letters, digits, ".", "_" and "-" (at most 64)'),
        /** The relay's public key (base64, 44 characters), as `mailmule relay pair` prints it. */
        key: z.string().regex(/^[A-Za-z0-9+/]{43}=$/, 'expected an Ed25519 public key: 44 characters of base64'),
        /** The relay's sealing key (X25519, base64), which the Pi's upstream credentials are sealed to for the relay alone. */
        sealKey: z.string().regex(/^[A-Za-z0-9+/]{43}=$/, 'expected an X25519 public key: 44 characters of base64'),
        /** The SHA-256 fingerprint of the relay's TLS certificate (hex, colons allowed), pinned; without it the system CAs decide. */
        fingerprint: z
            .string()
            .regex(/^([0-9A-Fa-f]{2}:?){31}[0-9A-Fa-f]{2}$/, 'expected a SHA-256 fingerprint in hex')
            .nullable()
            .default(null),
        /**
         * Header slimming of the mail the relay brings down for local delivery (docs/relay.md): off
         * (null) by default; on, the relay keeps the first `keepReceived` Received lines (the
         * newest hops) of each message and records what it dropped in X-Mailmule-Slimmed.
         */
        slimHeaders: z
            .object({ keepReceived: z.number().int().min(1).max(100).default(2) })
            .strict()
            .nullable()
            .default(null)
    })
    .strict();

export const listenerSchema = z
    .object({
        /** Address to bind; 0.0.0.0 serves the whole LAN, 127.0.0.1 only this machine. */
        host: z.string().default('0.0.0.0'),
        port: listenPort,
        /** "starttls": plaintext that upgrades with STARTTLS; "tls": TLS from the first byte. */
        security: z.enum(['starttls', 'tls']).default('starttls'),
        /**
         * Allow LOGIN/AUTH before STARTTLS on a "starttls" listener. Off by default: a LAN is
         * often open Wi-Fi, and every client we target speaks STARTTLS.
         */
        allowPlaintextAuth: z.boolean().default(false)
    })
    .strict();

/** A web listener: plain HTTP (autoconfig, the CA download, and a redirect to HTTPS for the rest) or HTTPS. */
export const webListenerSchema = z
    .object({
        host: z.string().default('0.0.0.0'),
        port: listenPort,
        /** "plain": HTTP; "tls": HTTPS with the LAN certificate. */
        security: z.enum(['plain', 'tls']).default('tls')
    })
    .strict();

/** The embedded default's unprivileged ports; production uses 143/993 and 587/465 (`mailmule init`). */
const DEFAULT_IMAP_LISTENERS: z.output<typeof listenerSchema>[] = [
    { host: '0.0.0.0', port: 1143, security: 'starttls', allowPlaintextAuth: false },
    { host: '0.0.0.0', port: 1993, security: 'tls', allowPlaintextAuth: false }
];
const DEFAULT_SMTP_LISTENERS: z.output<typeof listenerSchema>[] = [
    { host: '0.0.0.0', port: 1587, security: 'starttls', allowPlaintextAuth: false },
    { host: '0.0.0.0', port: 1465, security: 'tls', allowPlaintextAuth: false }
];

export const gatewaySchema = z
    .object({
        /** Where the store, message files, TLS pair and control socket live. Relative to this file. */
        dataDir: z.string().default('./data'),
        /** The villagers' own domain: name@localDomain is every local user's address. */
        localDomain: z.string().min(1).default('mailmule.lan'),
        /** Name in greetings and Received headers. */
        hostname: z.string().min(1).default('mailmule.lan'),
        /** The account map, relative to this file. */
        accounts: z.string().default('./accounts.yaml'),
        log: z
            .object({
                level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
                /** Line format (src/log/format.ts): auto is journal under systemd, pretty on a terminal, json otherwise. */
                format: z.enum(['auto', 'json', 'journal', 'pretty']).default('auto')
            })
            .strict()
            .default({ level: 'info', format: 'auto' }),
        tls: z
            .object({
                /** PEM certificate and key. When both are empty the local CA under dataDir/tls issues (and renews) the pair. */
                cert: z.string().nullable().default(null),
                key: z.string().nullable().default(null)
            })
            .strict()
            .default({ cert: null, key: null }),
        imap: z
            .object({
                listeners: z.array(listenerSchema).default(DEFAULT_IMAP_LISTENERS),
                /** Largest message a client may APPEND. */
                maxMessageSize: byteSize.default(25 * 1024 * 1024),
                /** Storage quota per user reported by GETQUOTAROOT; 0 means none. */
                quota: byteSize.default(0),
                /** Time a connection has to log in before it is closed (Dovecot: 60 s is typical). */
                loginTimeout: duration.default(60),
                /** Silence after which a logged-in session outside IDLE is closed (RFC 9051 5.4: at least 30 minutes). */
                autologoutTimeout: duration.default(30 * 60),
                /** In IDLE, silence after which "* OK Still here" is sent (Dovecot: 2 minutes). */
                idleKeepalive: duration.default(120),
                /** Time a client may take none of the output waiting for it before it is disconnected (Dovecot: 5 minutes). */
                outputTimeout: duration.default(5 * 60),
                /** Sessions one user may have open from one client address (Dovecot's mail_max_userip_connections). */
                maxConnectionsPerUserAddress: z.number().int().min(1).default(10)
            })
            .strict()
            .default({
                listeners: DEFAULT_IMAP_LISTENERS,
                maxMessageSize: 25 * 1024 * 1024,
                quota: 0,
                loginTimeout: 60,
                autologoutTimeout: 30 * 60,
                idleKeepalive: 120,
                outputTimeout: 5 * 60,
                maxConnectionsPerUserAddress: 10
            }),
        smtp: z
            .object({
                listeners: z.array(listenerSchema).default(DEFAULT_SMTP_LISTENERS),
                /** Largest message accepted for submission (552 past it, checked while streaming). */
                maxMessageSize: byteSize.default(25 * 1024 * 1024),
                /** Recipients per message. */
                maxRecipients: z.number().int().min(1).max(10000).default(100),
                /**
                 * Time a client has for each request: a command line after our last reply, or the message
                 * after DATA (then extended by minDataRate). Postfix's smtpd_timeout, 300 s; RFC 5321
                 * 4.5.3.2.7 asks a server to wait at least 5 minutes. Also the limit for silence.
                 */
                timeout: duration.default(300),
                /**
                 * Bytes per second a request must average: each byte received adds 1/minDataRate s to its
                 * time, so a message at any rate above this is never cut, and one byte per second is cut
                 * after about `timeout`. Postfix's smtpd_min_data_rate, 500: a LAN client is a thousand
                 * times faster, and a phone at the edge of the Wi-Fi still far faster.
                 */
                minDataRate: z.number().int().min(1).default(500)
            })
            .strict()
            .default({
                listeners: DEFAULT_SMTP_LISTENERS,
                maxMessageSize: 25 * 1024 * 1024,
                maxRecipients: 100,
                timeout: 300,
                minDataRate: 500
            }),
        uplink: z
            .object({
                /** Cron expressions (node-cron, with optional seconds) for automatic runs; night-time data is cheap. */
                schedule: z.array(z.string().min(1).refine(isCronExpression, 'expected a cron expression such as "0 2 * * *" (minute hour day month weekday)')).default([]),
                /** Command run before a run to bring the link up (e.g. dial the modem). */
                up: z.string().nullable().default(null),
                /** TCP host:port that must answer before a run starts; no answer, no run. */
                probe: z
                    .string()
                    .regex(/^[^\s:]+:\d+$/, 'expected host:port')
                    .nullable()
                    .default(null),
                /** Command run after a run (e.g. hang up). */
                down: z.string().nullable().default(null),
                /** Time limit for each hook command and for the probe. */
                hookTimeout: duration.default(120),
                budget: z
                    .object({
                        /** Bytes one run may spend on the wire (both ways); 0 = no cap. */
                        perRun: byteSize.default(0),
                        /** Bytes per calendar day (local time) across runs; 0 = no cap. */
                        perDay: byteSize.default(0)
                    })
                    .strict()
                    .default({ perRun: 0, perDay: 0 }),
                /** Without CONDSTORE upstream, at most one full flag scan per folder per this interval. */
                flagScanInterval: duration.default(86400),
                /** direct: the Pi talks to each provider; relay: one bundle each way through a mailmule relay (docs/relay.md). */
                mode: z.enum(['direct', 'relay']).default('direct'),
                /** The relay this Pi is paired with (`mailmule relay pair`); required with mode: relay, and for `mailmule bundle`. */
                relay: relaySchema.nullable().default(null)
            })
            .strict()
            .refine(uplink => uplink.mode !== 'relay' || uplink.relay !== null, { message: 'uplink.mode relay needs uplink.relay (url, id, key, sealKey)', path: ['relay'] })
            .default({ schedule: [], up: null, probe: null, down: null, hookTimeout: 120, budget: { perRun: 0, perDay: 0 }, flagScanInterval: 86400, mode: 'direct', relay: null }),
        web: z
            .object({
                /**
                 * None by default: a gateway upgraded from a version without the web pages opens no new
                 * port until the admin adds them (the example config: 8080 plain, 8443 TLS; production 80/443).
                 */
                listeners: z.array(webListenerSchema).default([])
            })
            .strict()
            .default({ listeners: [] }),
        queue: z
            .object({
                /** A message still undelivered after this long fails and bounces (Postfix: 5d; links here can be down for days). */
                maxAge: duration.default(10 * 86400)
            })
            .strict()
            .default({ maxAge: 10 * 86400 })
    })
    .strict();

export type GatewayConfig = z.infer<typeof gatewaySchema>;
export type ListenerConfig = z.infer<typeof listenerSchema>;
export type WebListenerConfig = z.infer<typeof webListenerSchema>;

const tlsMode = z.enum(['implicit', 'starttls', 'starttls-if-offered', 'none']);

const endpointSchema = z
    .object({
        host: z.string().min(1),
        port,
        /** implicit: TLS from the first byte; starttls: required; starttls-if-offered; none. */
        tls: tlsMode,
        /** Login name at the provider; defaults to the account address. */
        user: z.string().min(1).optional()
    })
    .strict();

const oauth2Schema = z
    .object({
        clientId: z.string().min(1),
        clientSecret: z.string().min(1).optional(),
        refreshToken: z.string().min(1),
        tokenUrl: z.string().url()
    })
    .strict();

/** Credentials: a password or OAuth2 fields. Used inline in accounts.yaml or in a credentials file. */
export const credentialsSchema = z
    .object({
        password: z.string().min(1).optional(),
        oauth2: oauth2Schema.optional()
    })
    .strict()
    .refine(value => Boolean(value.password) !== Boolean(value.oauth2), {
        message: 'give exactly one of password or oauth2'
    });

export const upstreamAccountSchema = z
    .object({
        /** A short label, used as the folder name for a second account's mail. Defaults to the address. */
        name: z.string().min(1).optional(),
        displayName: z.string().optional(),
        address: z.string().email(),
        imap: endpointSchema,
        smtp: endpointSchema,
        /** Inline credentials. The file then holds secrets and must be mode 0600. */
        credentials: credentialsSchema.optional(),
        /** Or a YAML file holding `password:` or `oauth2:`; relative to accounts.yaml, must be mode 0600. */
        credentialsFile: z.string().min(1).optional(),
        /** Upstream folders to bring home. */
        folders: z.array(z.string().min(1)).default(['INBOX']),
        /** How far back the first download reaches. */
        since: duration.default(30 * 86400),
        /** Messages larger than this arrive as a stub until asked for in full. */
        maxMessageSize: byteSize.default(1024 * 1024),
        /** Expunging a synced message locally also deletes it upstream. */
        deleteUpstream: z.boolean().default(false)
    })
    .strict()
    .refine(value => !(value.credentials && value.credentialsFile), {
        message: 'give credentials or credentialsFile, not both'
    });

export const localUserSchema = z
    .object({
        /** Login name on the LAN; name@localDomain is also an address of this user. */
        name: z
            .string()
            .min(1)
            .max(64)
            .regex(/^[a-z0-9][a-z0-9._-]*$/i, 'expected letters, digits, dot, dash or underscore'),
        displayName: z.string().optional(),
        /** May open the web status page (every user's queue, runs, storage). */
        admin: z.boolean().default(false),
        accounts: z.array(upstreamAccountSchema).default([])
    })
    .strict();

export const accountMapSchema = z
    .object({
        users: z.array(localUserSchema).default([])
    })
    .strict()
    .superRefine((value, ctx) => {
        const seen = new Map<string, number>();
        value.users.forEach((user, index) => {
            const key = user.name.toLowerCase();
            if (seen.has(key)) {
                ctx.addIssue({ code: 'custom', path: ['users', index, 'name'], message: `duplicate user name "${user.name}"` });
            }
            seen.set(key, index);
        });
        const owners = new Map<string, string>();
        value.users.forEach((user, userIndex) => {
            user.accounts.forEach((account, accountIndex) => {
                const address = account.address.toLowerCase();
                const owner = owners.get(address);
                if (owner && owner !== user.name) {
                    ctx.addIssue({
                        code: 'custom',
                        path: ['users', userIndex, 'accounts', accountIndex, 'address'],
                        message: `address ${account.address} already belongs to user "${owner}"`
                    });
                }
                owners.set(address, user.name);
            });
        });
    });

export type AccountMap = z.infer<typeof accountMapSchema>;
export type LocalUser = z.infer<typeof localUserSchema>;
export type UpstreamAccount = z.infer<typeof upstreamAccountSchema>;
export type Credentials = z.infer<typeof credentialsSchema>;
