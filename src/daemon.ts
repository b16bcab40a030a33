/**
 * The composition root: wires config, store, and the protocol services into one daemon.
 *
 * Protocol modules never import each other; they meet in the store (a message appended over
 * IMAP or delivered over SMTP is a store change, and the store tells every listener).
 */
import { loadConfig, ConfigError, type LoadedConfig } from './config';
import { Store } from './store';
import { createLogger, type Logger } from './log';
import { loadOrCreateTlsPair } from './tls';
import { AuthPenalty, verifyPassword, type AuthPenaltyOptions } from './auth';
import { ImapService, Notifier, type RunningListener } from './imap';
import { SmtpService, type RunningSmtpListener } from './smtp';
import { QueueIntake } from './queue';
import { ControlServer, UplinkRunner, UplinkScheduler, controlSocketPath, createUplinkRunner } from './uplink';
import { VERSION } from './version';

export interface DaemonOptions {
    /** Override the logger (tests). */
    logger?: Logger;
    /** Override the login penalty's timing (tests). */
    authPenalty?: AuthPenaltyOptions;
}

export class Daemon {
    config: LoadedConfig;
    readonly logger: Logger;
    store!: Store;
    private imap?: ImapService;
    private smtp?: SmtpService;
    uplink?: UplinkRunner;
    private scheduler?: UplinkScheduler;
    private control?: ControlServer;
    private notifier?: Notifier;
    private pruneTimer?: NodeJS.Timeout;
    private readonly limiter: AuthPenalty;
    listeners: RunningListener[] = [];
    smtpListeners: RunningSmtpListener[] = [];

    constructor(private readonly configFile: string, options: DaemonOptions = {}) {
        this.config = loadConfig(configFile);
        this.logger = options.logger ?? createLogger(this.config.gateway.log.level);
        this.limiter = new AuthPenalty(options.authPenalty);
    }

    async start(): Promise<void> {
        const config = this.config;
        this.store = new Store({ dataDir: config.paths.dataDir });
        const recovered = this.store.recover();
        if (recovered.removedBlobs) {
            this.logger.info({ removedBlobs: recovered.removedBlobs }, 'removed unreferenced message files left by an interrupted write');
        }
        this.syncUsers();
        const tls = loadOrCreateTlsPair({
            certFile: config.paths.tlsCert,
            keyFile: config.paths.tlsKey,
            dataDir: config.paths.dataDir,
            hostname: config.gateway.hostname
        });
        if (tls.generated) {
            this.logger.info({ cert: tls.certFile }, 'generated a self-signed TLS certificate');
        }
        this.notifier = new Notifier(this.store, this.logger.child({ component: 'imap' }));
        this.imap = new ImapService(
            {
                store: this.store,
                logger: this.logger.child({ component: 'imap' }),
                notifier: this.notifier,
                limiter: this.limiter,
                users: () => this.config.users,
                localDomain: () => this.config.gateway.localDomain,
                quota: () => this.config.gateway.imap.quota
            },
            {
                listeners: config.gateway.imap.listeners,
                tls,
                hostname: config.gateway.hostname,
                version: VERSION,
                maxMessageSize: config.gateway.imap.maxMessageSize,
                loginTimeout: config.gateway.imap.loginTimeout,
                autologoutTimeout: config.gateway.imap.autologoutTimeout,
                idleKeepalive: config.gateway.imap.idleKeepalive,
                maxConnectionsPerUserAddress: config.gateway.imap.maxConnectionsPerUserAddress
            }
        );
        this.listeners = await this.imap.start();
        const intake = new QueueIntake(this.store);
        this.smtp = new SmtpService(
            {
                store: this.store,
                logger: this.logger.child({ component: 'smtp' }),
                limiter: this.limiter,
                users: () => this.config.users,
                localDomain: () => this.config.gateway.localDomain,
                hostname: () => this.config.gateway.hostname,
                verifyPassword,
                submit: submission => intake.submit(submission)
            },
            {
                listeners: config.gateway.smtp.listeners,
                tls,
                maxMessageSize: config.gateway.smtp.maxMessageSize,
                maxRecipients: config.gateway.smtp.maxRecipients
            }
        );
        this.smtpListeners = await this.smtp.start();
        this.uplink = createUplinkRunner(this.store, this.logger.child({ component: 'uplink' }), () => this.config);
        this.scheduler = new UplinkScheduler(options => this.uplink!.run(options), this.logger.child({ component: 'uplink' }));
        this.scheduler.apply(config.gateway.uplink.schedule);
        this.control = new ControlServer(
            controlSocketPath(config.paths.dataDir),
            {
                sync: options => this.uplink!.run(options),
                status: () => ({ running: this.uplink!.isRunning(), nextRun: this.scheduler!.nextRun()?.toISOString() ?? null, pid: process.pid })
            },
            this.logger.child({ component: 'control' })
        );
        await this.control.start();
        this.pruneTimer = setInterval(() => {
            this.store.pruneJournal(3 * 3600 * 1000);
            this.store.pruneSentQueue(7 * 86400 * 1000);
        }, 10 * 60 * 1000);
        this.pruneTimer.unref();
        this.logger.info(
            {
                config: config.file,
                dataDir: config.paths.dataDir,
                users: config.users.length,
                imap: this.listeners.map(l => `${l.host}:${l.port}/${l.security}`),
                smtp: this.smtpListeners.map(l => `${l.host}:${l.port}/${l.security}`)
            },
            'mailmule started'
        );
    }

    /** Creates store rows (and default mailboxes) for users named in accounts.yaml. */
    private syncUsers(): void {
        for (const user of this.config.users) {
            this.store.ensureUser(user.name);
        }
    }

    /**
     * Re-reads both YAML files. A broken file is logged with its error and the running config
     * stays in force. Listener changes need a restart.
     */
    reload(): boolean {
        let next: LoadedConfig;
        try {
            next = loadConfig(this.configFile);
        } catch (err) {
            const problems = err instanceof ConfigError ? err.problems : [String((err as Error).message)];
            this.logger.error({ problems }, 'reload failed; the running configuration stays in force');
            return false;
        }
        const listenersChanged =
            JSON.stringify([next.gateway.imap.listeners, next.gateway.smtp.listeners]) !==
            JSON.stringify([this.config.gateway.imap.listeners, this.config.gateway.smtp.listeners]);
        this.config = next;
        this.logger.level = next.gateway.log.level;
        this.syncUsers();
        this.scheduler?.apply(next.gateway.uplink.schedule);
        this.logger.info({ users: next.users.length, listenersChanged }, listenersChanged ? 'configuration reloaded; listener changes apply after a restart' : 'configuration reloaded');
        return true;
    }

    async stop(): Promise<void> {
        if (this.pruneTimer) clearInterval(this.pruneTimer);
        this.scheduler?.stop();
        await this.control?.stop();
        await Promise.all([this.imap?.stop(), this.smtp?.stop()]);
        this.notifier?.close();
        this.store?.close();
        this.logger.info('mailmule stopped');
        this.logger.flush?.();
    }
}
