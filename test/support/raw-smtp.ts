/**
 * A hand-driven SMTP client for tests that must do what a client library will not: pipeline
 * whole transactions in one write, trickle bytes, read replies as the bytes they are. Reply
 * lines are decoded as UTF-8 (RFC 6531 replies), so a garbled echo shows as garbled. Every wait
 * has a timeout and fails early when the server closes the connection.
 */
import net from 'node:net';
import tls from 'node:tls';
import { withTimeout } from './wait';

export interface SmtpReply {
    code: number;
    /** The text of each line, without the code and separator. */
    lines: string[];
    text: string;
}

const DEFAULT_TIMEOUT_MS = 10_000;

export class RawSmtpConnection {
    closed = false;
    readonly closedPromise: Promise<void>;
    private buffer = Buffer.alloc(0);
    private partial: string[] = [];
    private readonly ready: SmtpReply[] = [];
    private readonly waiters: { resolve: (reply: SmtpReply) => void; reject: (err: Error) => void; timer: NodeJS.Timeout }[] = [];
    private markClosed!: () => void;

    private socket!: net.Socket;

    private constructor(socket: net.Socket) {
        this.closedPromise = new Promise(resolve => (this.markClosed = resolve));
        this.attach(socket);
    }

    private attach(socket: net.Socket): void {
        this.socket = socket;
        socket.on('data', (chunk: Buffer) => this.onData(chunk));
        socket.on('error', () => {
            // A reset shows up as 'close'.
        });
        socket.on('close', () => {
            this.closed = true;
            for (const waiter of this.waiters.splice(0)) {
                clearTimeout(waiter.timer);
                waiter.reject(new Error('connection closed'));
            }
            this.markClosed();
        });
    }

    /** Connects and reads the greeting. */
    static async connect(port: number, options: { tls?: boolean; localAddress?: string } = {}): Promise<{ client: RawSmtpConnection; greeting: SmtpReply }> {
        const socket = options.tls ? tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }) : net.connect({ host: '127.0.0.1', port, localAddress: options.localAddress });
        const client = new RawSmtpConnection(socket);
        return { client, greeting: await client.reply() };
    }

    private onData(chunk: Buffer): void {
        this.buffer = Buffer.concat([this.buffer, chunk]);
        let index: number;
        while ((index = this.buffer.indexOf('\r\n')) >= 0) {
            const line = this.buffer.subarray(0, index).toString('utf8');
            this.buffer = this.buffer.subarray(index + 2);
            this.partial.push(line);
            if (/^\d{3}(?: |$)/.test(line)) {
                const lines = this.partial.map(l => l.slice(4));
                this.partial = [];
                const reply = { code: Number(line.slice(0, 3)), lines, text: lines.join('\n') };
                const waiter = this.waiters.shift();
                if (waiter) {
                    clearTimeout(waiter.timer);
                    waiter.resolve(reply);
                } else {
                    this.ready.push(reply);
                }
            }
        }
    }

    /** The next reply (multi-line replies whole). */
    reply(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<SmtpReply> {
        const ready = this.ready.shift();
        if (ready) return Promise.resolve(ready);
        if (this.closed) return Promise.reject(new Error('connection closed'));
        return new Promise((resolve, reject) => {
            const timer = setTimeout(() => {
                const at = this.waiters.findIndex(w => w.timer === timer);
                if (at >= 0) this.waiters.splice(at, 1);
                reject(new Error(`no SMTP reply within ${timeoutMs} ms`));
            }, timeoutMs);
            this.waiters.push({ resolve, reject, timer });
        });
    }

    write(data: string | Buffer): Promise<void> {
        return new Promise((resolve, reject) => this.socket.write(typeof data === 'string' ? Buffer.from(data, 'utf8') : data, err => (err ? reject(err) : resolve())));
    }

    async cmd(line: string | Buffer, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<SmtpReply> {
        await this.write(Buffer.concat([Buffer.isBuffer(line) ? line : Buffer.from(line, 'utf8'), Buffer.from('\r\n')]));
        return this.reply(timeoutMs);
    }

    /** STARTTLS, then the TLS handshake (bounded) on the same connection. */
    async starttls(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> {
        const reply = await this.cmd('STARTTLS', timeoutMs);
        if (reply.code !== 220) throw new Error(`STARTTLS: ${reply.code} ${reply.text}`);
        const plain = this.socket;
        plain.removeAllListeners('data');
        plain.removeAllListeners('close');
        const secure = tls.connect({ socket: plain, rejectUnauthorized: false });
        await withTimeout(
            new Promise<void>((resolve, reject) => {
                secure.once('secureConnect', () => resolve());
                secure.once('error', reject);
            }),
            timeoutMs,
            'TLS handshake'
        );
        this.attach(secure);
    }

    /** Sends QUIT (bounded) and closes. */
    async quit(): Promise<void> {
        if (!this.closed) {
            try {
                await this.cmd('QUIT', 2000);
            } catch {
                // closed already
            }
        }
        this.socket.destroy();
    }

    destroy(): void {
        this.socket.destroy();
    }
}

export function authPlain(user: string, pass: string): string {
    return 'AUTH PLAIN ' + Buffer.from(`\0${user}\0${pass}`).toString('base64');
}

/** Connects, says EHLO and logs in with AUTH PLAIN (the listener must allow it without TLS). */
export async function loggedIn(port: number, user: string, pass: string): Promise<RawSmtpConnection> {
    const { client, greeting } = await RawSmtpConnection.connect(port);
    for (const [reply, code] of [
        [greeting, 220],
        [await client.cmd('EHLO laptop.lan'), 250],
        [await client.cmd(authPlain(user, pass)), 235]
    ] as const) {
        if (reply.code !== code) throw new Error(`expected ${code}, got ${reply.code} ${reply.text}`);
    }
    return client;
}

/** MAIL FROM, RCPT TO each, DATA, the message (dot-stuffing is the caller's); the reply to the final dot. */
export async function submitRaw(client: RawSmtpConnection, from: string, to: string[], data: Buffer | string): Promise<SmtpReply> {
    for (const line of [`MAIL FROM:<${from}>`, ...to.map(rcpt => `RCPT TO:<${rcpt}>`)]) {
        const reply = await client.cmd(line);
        if (reply.code !== 250) throw new Error(`${line}: ${reply.code} ${reply.text}`);
    }
    const go = await client.cmd('DATA');
    if (go.code !== 354) throw new Error(`DATA: ${go.code} ${go.text}`);
    await client.write(Buffer.concat([Buffer.isBuffer(data) ? data : Buffer.from(data, 'utf8'), Buffer.from('\r\n.\r\n')]));
    return client.reply(30_000);
}
