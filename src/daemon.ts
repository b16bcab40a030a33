/**
 * The composition root: wires config, store, and the protocol services into one daemon.
 *
 * Protocol modules never import each other; they meet in the store (a message appended over
 * IMAP or delivered over SMTP is a store change, and the store tells every listener).
 */
import fs from 'node:fs';
import { loadConfig, ConfigError, type LoadedConfig } from './config';
import { Store } from './store';
import { createLogger, type Logger } from './log';
import { ServingTls } from './tls';
import { ListenError } from './listen';
import { AuthPenalty, hashPassword, verifyPassword, type AuthPenaltyOptions } from './auth';
import { ImapService, Notifier, type RunningListener } from './imap';
import { SmtpService, type RunningSmtpListener } from './smtp';
import { QueueIntake } from './queue';
import { UplinkWatch, WebService, type RunningWebListener } from './web';
import { ControlServer, FETCH_FULL_FOLDER, UplinkRunner, UplinkScheduler, controlSocketPath, createUplinkRunner, type RunOptions, type RunReport } from './uplink';
import { VERSION } from './version';

/** As long as IMAP and SMTP clients get at shutdown (their closeTimeout). */
const CONTROL_CLOSE_GRACE_MS = 1000;

/** start() ended early because requestStop() was called; everything it had opened is closed again. */
export class StartCancelled extends Error {
    override name = 'StartCancelled';
    constructor() {
        super('stopped during start-up');
    }
}

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
    private intake?: QueueIntake;
    private web?: WebService;
    uplink?: UplinkRunner;
    private scheduler?: UplinkScheduler;
    private control?: ControlServer;
    private notifier?: Notifier;
    private servingTls?: ServingTls;
    private pruneTimer?: NodeJS.Timeout;
    private readonly limiter: AuthPenalty;
    /** Every run of this daemon's (schedule, `mailmule sync`, the status page) as the status page follows it. */
    private readonly uplinkWatch = new UplinkWatch(() => this.uplink?.isRunning() ?? false);
    listeners: RunningListener[] = [];
    smtpListeners: RunningSmtpListener[] = [];
    webListeners: RunningWebListener[] = [];
    /** Every listener is bound: the control socket may start uplink runs. */
    private ready = false;
    private stopRequested = false;

    constructor(
        private readonly configFile: string,
        options: DaemonOptions = {}
    ) {
        this.config = loadConfig(configFile);
        this.logger = options.logger ?? createLogger(this.config.gateway.log.level, undefined, this.config.gateway.log.format);
        this.limiter = new AuthPenalty(options.authPenalty);
    }

    /**
     * Starts the daemon whole or not at all: the control socket, the store, then every IMAP,
     * SMTP and web listener. If any step fails, or requestStop() is called meanwhile, everything opened so
     * far is closed again and start() rejects: with a ListenError when a listener could not be
     * bound, with StartCancelled after requestStop(). "mailmule started" means all are listening.
     */
    async start(): Promise<void> {
        try {
            await this.open();
        } catch (err) {
            await this.close();
            throw err;
        }
        const config = this.config;
        this.ready = true;
        this.scheduler = new UplinkScheduler(options => this.runUplink(options), this.logger.child({ component: 'uplink' }));
        this.scheduler.apply(config.gateway.uplink.schedule);
        this.pruneTimer = setInterval(
            () => {
                this.store.messages.pruneJournal(3 * 3600 * 1000);
                this.store.queue.pruneSent(7 * 86400 * 1000);
            },
            10 * 60 * 1000
        );
        this.pruneTimer.unref();
        this.servingTls?.startTimer();
        this.logger.info(
            {
                config: config.file,
                dataDir: config.paths.dataDir,
                users: config.users.length,
                imap: this.listeners.map(l => `${l.host}:${l.port}/${l.security}`),
                smtp: this.smtpListeners.map(l => `${l.host}:${l.port}/${l.security}`),
                web: this.webListeners.map(l => `${l.host}:${l.port}/${l.security}`)
            },
            'mailmule started'
        );
    }

    /** A stop asked for during start(): start() ends at its next step. No effect once started (use stop()). */
    requestStop(): void {
        this.stopRequested = true;
    }

    private checkpoint(): void {
        if (this.stopRequested) throw new StartCancelled();
    }

    private async open(): Promise<void> {
        const config = this.config;
        // The control socket first: binding it also finds out whether another daemon runs on this
        // data directory, before recover() below removes files that daemon may be writing.
        fs.mkdirSync(config.paths.dataDir, { recursive: true, mode: 0o700 });
        const socketPath = controlSocketPath(config.paths.dataDir);
        this.control = new ControlServer(
            socketPath,
            {
                sync: options => (this.ready ? this.runUplink(options) : Promise.reject(new Error('mailmule is starting or stopping; try again in a moment'))),
                status: () => ({ running: this.uplink?.isRunning() ?? false, nextRun: this.scheduler?.nextRun()?.toISOString() ?? null, pid: process.pid })
            },
            this.logger.child({ component: 'control' })
        );
        try {
            await this.control.start();
        } catch (err) {
            const { code, message } = err as NodeJS.ErrnoException;
            throw new ListenError('the control socket', socketPath, code ? `${socketPath}: ${message}` : message, code, { cause: err });
        }
        this.checkpoint();
        this.store = new Store({ dataDir: config.paths.dataDir });
        const recovered = this.store.recover();
        if (recovered.removedBlobs) {
            this.logger.info({ removedBlobs: recovered.removedBlobs }, 'moved message files no row references (left by an interrupted write) to lost+found');
        }
        this.syncUsers();
        // The local CA and its serving certificate (made, upgraded from a self-signed pair, or
        // renewed here), or the admin's own pair; renewed certificates reach the listeners below.
        this.servingTls = await ServingTls.open({
            certFile: config.paths.tlsCert,
            keyFile: config.paths.tlsKey,
            dataDir: config.paths.dataDir,
            hostname: config.gateway.hostname,
            localDomain: config.gateway.localDomain,
            logger: this.logger.child({ component: 'tls' })
        });
        const tls = this.servingTls.pair;
        this.checkpoint();
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
                outputTimeout: config.gateway.imap.outputTimeout,
                maxConnectionsPerUserAddress: config.gateway.imap.maxConnectionsPerUserAddress
            }
        );
        this.listeners = await this.imap.start();
        this.checkpoint();
        const intakeLogger = this.logger.child({ component: 'queue' });
        const intake = new QueueIntake(this.store, {
            onSpoolError: err => intakeLogger.error({ err }, 'syncing the spooled message files failed; trying again later (their bytes are safe in the database)')
        });
        this.intake = intake;
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
                maxRecipients: config.gateway.smtp.maxRecipients,
                timeout: config.gateway.smtp.timeout,
                minDataRate: config.gateway.smtp.minDataRate
            }
        );
        this.smtpListeners = await this.smtp.start();
        this.checkpoint();
        this.web = new WebService(
            {
                store: this.store,
                logger: this.logger.child({ component: 'web' }),
                limiter: this.limiter,
                users: () => this.config.users,
                localDomain: () => this.config.gateway.localDomain,
                hostname: () => this.config.gateway.hostname,
                localCa: () => this.servingTls?.caPem ?? null,
                mailListeners: () => ({
                    imap: this.listeners.map(l => ({ port: l.port, security: l.security })),
                    smtp: this.smtpListeners.map(l => ({ port: l.port, security: l.security }))
                }),
                fetchFullFolder: FETCH_FULL_FOLDER,
                nextRun: () => this.scheduler?.nextRun() ?? null,
                verifyPassword,
                hashPassword,
                uplink: {
                    startRun: trigger => {
                        if (!this.ready) return 'not-ready';
                        if (this.uplink!.isRunning()) return 'busy';
                        // A run that starts logs its own outcome; one refused at the start (another
                        // process's run holds the lock) is logged here. The page reads either from the watch.
                        this.runUplink({ trigger }).catch((err: unknown) => this.logger.warn({ err: { message: (err as Error).message }, trigger }, 'uplink run from the status page did not start'));
                        return 'started';
                    },
                    isRunning: () => this.uplink?.isRunning() ?? false,
                    latest: () => this.uplinkWatch.latest(),
                    budgetPerDay: () => this.config.gateway.uplink.budget.perDay
                }
            },
            { listeners: config.gateway.web.listeners, tls }
        );
        this.servingTls.onRenewed(pair => {
            this.imap?.setTls(pair);
            this.smtp?.setTls(pair);
            this.web?.setTls(pair);
        });
        this.webListeners = await this.web.start();
        this.checkpoint();
        this.uplink = createUplinkRunner(this.store, this.logger.child({ component: 'uplink' }), () => this.config);
    }

    /** An uplink run, followed by the status page whoever started it. */
    private runUplink(options: RunOptions): Promise<RunReport> {
        return this.uplinkWatch.watch(options, watched => this.uplink!.run(watched));
    }

    /** Creates store rows (and default mailboxes) for users named in accounts.yaml. */
    private syncUsers(): void {
        for (const user of this.config.users) {
            this.store.users.ensure(user.name);
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
            JSON.stringify([next.gateway.imap.listeners, next.gateway.smtp.listeners, next.gateway.web.listeners]) !==
            JSON.stringify([this.config.gateway.imap.listeners, this.config.gateway.smtp.listeners, this.config.gateway.web.listeners]);
        this.config = next;
        this.logger.level = next.gateway.log.level;
        this.syncUsers();
        this.scheduler?.apply(next.gateway.uplink.schedule);
        // A new hostname or local domain: a certificate naming them, from the same CA.
        this.servingTls?.setNames({ hostname: next.gateway.hostname, localDomain: next.gateway.localDomain });
        void this.servingTls?.renewIfDue().catch(err => this.logger.error({ err: { message: (err as Error).message } }, 'could not renew the TLS certificate'));
        this.logger.info({ users: next.users.length, listenersChanged }, listenersChanged ? 'configuration reloaded; listener changes apply after a restart' : 'configuration reloaded');
        return true;
    }

    /**
     * Closes listeners (clients get 1 s to finish, then BYE or 421), waits for submissions already
     * received to commit, then closes the store. An uplink run in progress is abandoned: its
     * next store call fails, and a message it was sending is retried at the next run.
     */
    async stop(): Promise<void> {
        await this.close();
        this.logger.info('mailmule stopped');
        this.logger.flush?.();
    }

    /**
     * Stops the control socket. ControlServer.stop() resolves only once every client has hung
     * up, and a `mailmule sync` client stays connected until its run ends (or forever, if it is
     * stuck): past CONTROL_CLOSE_GRACE_MS the shutdown goes on without it. The socket stops
     * accepting (and its file is removed) at once either way.
     */
    private async closeControl(): Promise<void> {
        if (!this.control) return;
        let timer: NodeJS.Timeout | undefined;
        const grace = new Promise<void>(resolve => (timer = setTimeout(resolve, CONTROL_CLOSE_GRACE_MS)));
        await Promise.race([this.control.stop(), grace]);
        clearTimeout(timer);
    }

    /** Closes whatever open() got to; safe on a partly started daemon and when called again. */
    private async close(): Promise<void> {
        this.ready = false;
        if (this.pruneTimer) clearInterval(this.pruneTimer);
        this.servingTls?.stopTimer();
        this.scheduler?.stop();
        await Promise.all([this.closeControl(), this.imap?.stop(), this.smtp?.stop(), this.web?.stop()]);
        await this.intake?.close();
        this.notifier?.close();
        this.store?.close();
    }
}
