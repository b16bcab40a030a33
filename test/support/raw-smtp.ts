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

    /**
     * The next reply, or null when the server closes the connection without one (a server that
     * may answer 421 or just hang up, as at shutdown). A timeout still fails.
     */
    async replyOrClose(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<SmtpReply | null> {
        try {
            return await this.reply(timeoutMs);
        } catch (err) {
            if (this.closed) return null;
            throw err;
        }
    }

    async cmd(line: string | Buffer, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<SmtpReply> {
        await this.write(Buffer.concat([Buffer.isBuffer(line) ? line : Buffer.from(line, 'utf8'), Buffer.from('\r\n')]));
        return this.reply(timeoutMs);
    }

    /** `cmd`, failing with the command's verb and the reply unless the reply has `code`. */
    async expect(line: string, code: number, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<SmtpReply> {
        const reply = await this.cmd(line, timeoutMs);
        if (reply.code !== code) throw new Error(`${line.split(' ')[0]}: expected ${code}, got ${reply.code} ${reply.text}`);
        return reply;
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
    if (greeting.code !== 220) throw new Error(`greeting: expected 220, got ${greeting.code} ${greeting.text}`);
    await client.expect('EHLO laptop.lan', 250);
    await client.expect(authPlain(user, pass), 235);
    return client;
}

/**
 * MAIL FROM (with `mailParameters`, e.g. " SIZE=123"), RCPT TO each, DATA: the server then waits
 * for the message, which the caller writes (whole, in part, or not at all).
 */
export async function beginData(client: RawSmtpConnection, from: string, to: string[], mailParameters = ''): Promise<void> {
    await client.expect(`MAIL FROM:<${from}>${mailParameters}`, 250);
    for (const rcpt of to) await client.expect(`RCPT TO:<${rcpt}>`, 250);
    await client.expect('DATA', 354);
}

/** MAIL FROM, RCPT TO each, DATA, the message (dot-stuffing is the caller's); the reply to the final dot. */
export async function submitRaw(client: RawSmtpConnection, from: string, to: string[], data: Buffer | string): Promise<SmtpReply> {
    await beginData(client, from, to);
    await client.write(Buffer.concat([Buffer.isBuffer(data) ? data : Buffer.from(data, 'utf8'), Buffer.from('\r\n.\r\n')]));
    return client.reply(30_000);
}
