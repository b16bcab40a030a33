/**
 * The daemon's control socket: `<dataDir>/control.sock`, mode 0600 (owner only). The CLI asks
 * the running daemon to start an uplink run here and receives its progress as JSON lines.
 *
 * Requests: {"command":"sync", "options":{user?, account?, sendOnly?, receiveOnly?}} or
 * {"command":"status"}. Replies: {"type":"progress",...}* then {"type":"done","report":…}, or
 * {"type":"status",...}, or {"type":"error","message":…,"code"?:"run-in-progress"} (the code lets
 * the CLI choose its exit code without reading the message).
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import type { Logger } from '../log';
import { RunInProgressError } from './run-in-progress';
import type { ProgressSnapshot, RunOptions, RunReport } from './runner';

export interface ControlHandlers {
    sync(options: RunOptions): Promise<RunReport>;
    status(): unknown;
}

export function controlSocketPath(dataDir: string): string {
    return path.join(dataDir, 'control.sock');
}

export class ControlServer {
    private server?: net.Server;

    constructor(
        private readonly socketPath: string,
        private readonly handlers: ControlHandlers,
        private readonly logger: Logger
    ) {}

    async start(): Promise<void> {
        // A socket file left by a killed daemon would make listen fail.
        if (fs.existsSync(this.socketPath)) {
            const alive = await new Promise<boolean>(resolve => {
                const probe = net.connect(this.socketPath);
                probe.once('connect', () => (probe.destroy(), resolve(true)));
                probe.once('error', () => resolve(false));
            });
            if (alive) throw new Error(`another mailmule daemon is running on ${this.socketPath}`);
            fs.rmSync(this.socketPath, { force: true });
        }
        const server = net.createServer(socket => this.serve(socket));
        const previous = process.umask(0o177);
        try {
            await new Promise<void>((resolve, reject) => {
                server.once('error', reject);
                server.listen(this.socketPath, () => resolve());
            });
        } finally {
            process.umask(previous);
        }
        fs.chmodSync(this.socketPath, 0o600);
        this.server = server;
    }

    private serve(socket: net.Socket): void {
        const send = (message: unknown) => {
            if (!socket.destroyed) socket.write(JSON.stringify(message) + '\n');
        };
        const lines = readline.createInterface({ input: socket });
        lines.once('line', line => {
            let request: { command?: string; options?: Partial<RunOptions> };
            try {
                request = JSON.parse(line);
            } catch {
                send({ type: 'error', message: 'bad request' });
                return socket.end();
            }
            if (request.command === 'status') {
                send({ type: 'status', ...(this.handlers.status() as object) });
                return socket.end();
            }
            if (request.command !== 'sync') {
                send({ type: 'error', message: `unknown command ${String(request.command)}` });
                return socket.end();
            }
            const options = request.options ?? {};
            this.handlers
                .sync({
                    trigger: 'mailmule sync',
                    user: options.user,
                    account: options.account,
                    sendOnly: options.sendOnly,
                    receiveOnly: options.receiveOnly,
                    onProgress: (progress: ProgressSnapshot) => send({ type: 'progress', ...progress })
                })
                .then(
                    report => send({ type: 'done', report }),
                    err => send({ type: 'error', message: (err as Error).message, ...(err instanceof RunInProgressError ? { code: 'run-in-progress' } : {}) })
                )
                .finally(() => socket.end());
        });
        socket.on('error', err => this.logger.debug({ err: { message: err.message } }, 'control socket client error'));
    }

    async stop(): Promise<void> {
        if (!this.server) return;
        await new Promise<void>(resolve => this.server!.close(() => resolve()));
        fs.rmSync(this.socketPath, { force: true });
    }
}

/**
 * Sends one request to the running daemon. Resolves null when no daemon listens (the caller
 * then works standalone); calls `onMessage` for each reply line.
 */
export function requestDaemon<Reply>(socketPath: string, request: unknown, onMessage: (message: Reply) => void): Promise<boolean> {
    return new Promise((resolve, reject) => {
        const socket = net.connect(socketPath);
        let connected = false;
        socket.once('connect', () => {
            connected = true;
            socket.write(JSON.stringify(request) + '\n');
            readline.createInterface({ input: socket }).on('line', line => {
                try {
                    // The daemon's reply lines, as the caller's type describes them.
                    onMessage(JSON.parse(line) as Reply);
                } catch {
                    // ignore a malformed line
                }
            });
        });
        socket.once('error', err => {
            const code = (err as NodeJS.ErrnoException).code;
            if (!connected && (code === 'ENOENT' || code === 'ECONNREFUSED')) resolve(false);
            else reject(err);
        });
        socket.once('close', () => connected && resolve(true));
    });
}
