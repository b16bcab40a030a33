/**
 * A raw IMAP connection for tests that must send what no well-behaved client library would:
 * garbage, truncated commands, lying literal sizes, a hang-up in the middle of a literal.
 *
 * Incoming bytes are split into responses: a line ending in `{n}` continues after n literal
 * bytes, so a message body containing "A1 OK" cannot end a command early. Every wait has a
 * timeout and fails early if the server closes the connection.
 */
import net from 'node:net';
import tls from 'node:tls';
import { settleOn } from './wait';

export interface Response {
    /** The response's lines joined, literals left out (their `{n}` markers stay); latin1. */
    text: string;
    /** The literals, in order. */
    literals: Buffer[];
}

const DEFAULT_TIMEOUT_MS = 10_000;

export class RawImapConnection {
    readonly responses: Response[] = [];
    closed = false;
    private buffer: Buffer = Buffer.alloc(0);
    private current: Response | null = null;
    /** Bytes still owed to the current literal. */
    private literalLeft = 0;
    private readonly waiters = new Set<() => void>();
    private tagCounter = 0;

    private constructor(readonly socket: net.Socket) {
        socket.on('data', chunk => this.onData(chunk));
        socket.on('error', () => {
            // A reset shows up as 'close'; the tests look at `closed`.
        });
        socket.on('close', () => {
            this.closed = true;
            this.wake();
        });
    }

    /** Connects and waits for the greeting. */
    static async connect(port: number, options: { tls?: boolean } = {}): Promise<RawImapConnection> {
        const socket = options.tls ? tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }) : net.connect({ host: '127.0.0.1', port });
        const connection = new RawImapConnection(socket);
        await connection.waitFor(response => response.text.startsWith('* OK'), 'greeting');
        return connection;
    }

    /** Connects, logs in and optionally selects a mailbox. */
    static async session(port: number, user: string, password: string, mailbox?: string): Promise<RawImapConnection> {
        const connection = await RawImapConnection.connect(port);
        const login = await connection.command(`LOGIN ${user} ${JSON.stringify(password)}`);
        if (!/^\S+ OK/.test(login.tagged)) throw new Error(`login failed: ${login.tagged}`);
        if (mailbox) {
            const select = await connection.command(`SELECT ${JSON.stringify(mailbox)}`);
            if (!/^\S+ OK/.test(select.tagged)) throw new Error(`select failed: ${select.tagged}`);
        }
        return connection;
    }

    nextTag(): string {
        return `T${++this.tagCounter}`;
    }

    write(data: string | Buffer): void {
        this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
    }

    /**
     * Sends `<tag> <text>\r\n` and waits for the tagged completion. Returns it with every
     * response that arrived in between.
     */
    async command(text: string | Buffer, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<{ tag: string; tagged: string; untagged: Response[] }> {
        const tag = this.nextTag();
        const start = this.responses.length;
        this.write(Buffer.concat([Buffer.from(`${tag} `), typeof text === 'string' ? Buffer.from(text, 'latin1') : text, Buffer.from('\r\n')]));
        const tagged = await this.waitFor(response => response.text.startsWith(`${tag} `), `tagged reply to ${tag}`, timeoutMs, start);
        const end = this.responses.indexOf(tagged);
        return { tag, tagged: tagged.text, untagged: this.responses.slice(start, end) };
    }

    /**
     * Waits for the first response from index `from` on that matches. Rejects on timeout or
     * when the server closes the connection first.
     */
    waitFor(match: (response: Response) => boolean, what: string, timeoutMs = DEFAULT_TIMEOUT_MS, from = 0): Promise<Response> {
        return settleOn(
            this.waiters,
            () => {
                for (let index = from; index < this.responses.length; index++) {
                    if (match(this.responses[index])) return { value: this.responses[index] };
                }
                return this.closed ? new Error(`connection closed while waiting for ${what}; last responses: ${this.tail()}`) : undefined;
            },
            timeoutMs,
            () => new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last responses: ${this.tail()}`)
        );
    }

    /** Resolves once the server has closed the connection (or rejects after the timeout). */
    waitClosed(timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> {
        return new Promise((resolve, reject) => {
            if (this.closed) return resolve();
            const timer = setTimeout(() => reject(new Error('connection still open')), timeoutMs);
            this.socket.once('close', () => {
                clearTimeout(timer);
                resolve();
            });
        });
    }

    destroy(): void {
        this.socket.destroy();
    }

    private tail(): string {
        return JSON.stringify(this.responses.slice(-3).map(response => response.text.slice(0, 200)));
    }

    private wake(): void {
        for (const waiter of [...this.waiters]) waiter();
    }

    private onData(chunk: Buffer): void {
        this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : Buffer.from(chunk);
        for (;;) {
            if (this.literalLeft > 0) {
                if (this.buffer.length < this.literalLeft) break;
                this.current!.literals.push(this.buffer.subarray(0, this.literalLeft));
                this.buffer = this.buffer.subarray(this.literalLeft);
                this.literalLeft = 0;
                continue;
            }
            const end = this.buffer.indexOf('\r\n');
            if (end < 0) break;
            const line = this.buffer.subarray(0, end).toString('latin1');
            this.buffer = this.buffer.subarray(end + 2);
            this.current ??= { text: '', literals: [] };
            this.current.text += line;
            const literal = /\{(\d+)\}$/.exec(line);
            if (literal) {
                this.literalLeft = Number(literal[1]);
                if (this.literalLeft === 0) this.current.literals.push(Buffer.alloc(0));
                continue;
            }
            this.responses.push(this.current);
            this.current = null;
        }
        this.wake();
    }
}

/** Wraps `raw` as a synchronizing literal command: sends the head, waits for `+`, then the data. */
export async function appendRaw(connection: RawImapConnection, mailbox: string, raw: Buffer, flags = ''): Promise<string> {
    const tag = connection.nextTag();
    const start = connection.responses.length;
    connection.write(`${tag} APPEND ${JSON.stringify(mailbox)}${flags ? ` (${flags})` : ''} {${raw.length}}\r\n`);
    const next = await connection.waitFor(response => response.text.startsWith('+') || response.text.startsWith(`${tag} `), `continuation for ${tag}`, DEFAULT_TIMEOUT_MS, start);
    if (!next.text.startsWith('+')) return next.text;
    connection.write(Buffer.concat([raw, Buffer.from('\r\n')]));
    const tagged = await connection.waitFor(response => response.text.startsWith(`${tag} `), `tagged reply to ${tag}`, DEFAULT_TIMEOUT_MS, start);
    return tagged.text;
}
