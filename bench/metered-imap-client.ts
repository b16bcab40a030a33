/**
 * MeteredImapClient: a minimal IMAP client over a raw TCP socket that times each command and
 * counts its bytes, the same for every server the benchmark measures, so that client-side
 * parsing cannot hide a server difference.
 *
 * It writes one tagged command and reads until that tag's completion line. The response is not
 * parsed beyond what that needs: lines are scanned for a trailing `{n}` literal marker, and
 * literals are skipped by byte count (so a message body that contains "A1 OK" cannot end a
 * command early). Bytes are counted; the response is kept only when asked for (`capture`,
 * used outside the timed runs to check that both servers return the same thing).
 */
import net from 'node:net';

export interface CommandResult {
    /** OK, NO or BAD */
    status: string;
    /** The tagged completion line, without CRLF. */
    line: string;
    /** Bytes received for this command (untagged responses, literals, completion line). */
    bytes: number;
    /** Bytes inside `{n}` literals. */
    literalBytes: number;
    /** Number of `{n}` literals. */
    literals: number;
    /** Wall time from writing the command to reading the completion line, in ns. */
    ns: bigint;
    /** The whole response, when requested. */
    response?: Buffer;
}

interface Pending {
    tag: string;
    tagPrefix: Buffer;
    started: bigint;
    capture: boolean;
    chunks: Buffer[];
    bytes: number;
    literalBytes: number;
    literals: number;
    resolve(result: CommandResult): void;
    reject(err: Error): void;
    timer: NodeJS.Timeout;
}

const LF = 0x0a;
const CR = 0x0d;

export class MeteredImapClient {
    private socket!: net.Socket;
    private tagCounter = 0;
    private pending: Pending | null = null;
    /** Bytes of the current line not yet terminated (a line split across reads). */
    private partial: Buffer[] = [];
    private partialLength = 0;
    /** Bytes left in the current literal. */
    private literalLeft = 0;
    /** The next line starts after a literal: a continuation, never a tagged line. */
    private continuation = false;
    private greeting: ((line: string) => void) | null = null;
    private failure: Error | null = null;
    totalBytes = 0;

    /** Connects and reads the greeting line. */
    static async connect(host: string, port: number, timeoutMs = 10000): Promise<{ client: MeteredImapClient; greeting: string }> {
        const client = new MeteredImapClient();
        const greeting = await new Promise<string>((resolve, reject) => {
            const timer = setTimeout(() => {
                client.socket?.destroy();
                reject(new Error(`no IMAP greeting from ${host}:${port} within ${timeoutMs} ms`));
            }, timeoutMs);
            client.greeting = line => {
                clearTimeout(timer);
                resolve(line);
            };
            client.socket = net.connect({ host, port });
            client.socket.setNoDelay(true);
            client.socket.on('data', chunk => client.onData(chunk));
            client.socket.on('error', err => {
                clearTimeout(timer);
                client.fail(err);
                reject(err);
            });
            client.socket.on('close', () => client.fail(new Error('connection closed')));
        });
        return { client, greeting };
    }

    /** Sends `command` with a fresh tag; resolves on its tagged completion. */
    command(command: string, options: { capture?: boolean; timeoutMs?: number } = {}): Promise<CommandResult> {
        if (this.pending) {
            return Promise.reject(new Error('a command is already running'));
        }
        if (this.failure) {
            return Promise.reject(this.failure);
        }
        const tag = `b${++this.tagCounter}`;
        const timeoutMs = options.timeoutMs ?? 120000;
        return new Promise<CommandResult>((resolve, reject) => {
            const timer = setTimeout(() => {
                this.pending = null;
                reject(new Error(`no completion for "${command.slice(0, 60)}" within ${timeoutMs} ms`));
                this.socket.destroy();
            }, timeoutMs);
            this.pending = {
                tag,
                tagPrefix: Buffer.from(`${tag} `),
                started: process.hrtime.bigint(),
                capture: Boolean(options.capture),
                chunks: [],
                bytes: 0,
                literalBytes: 0,
                literals: 0,
                resolve,
                reject,
                timer
            };
            this.socket.write(`${tag} ${command}\r\n`);
        });
    }

    /** LOGOUT (bounded), then closes the socket. */
    async close(): Promise<void> {
        if (!this.failure && !this.socket.destroyed) {
            try {
                await this.command('LOGOUT', { timeoutMs: 5000 });
            } catch {
                // Closing anyway.
            }
        }
        this.socket.destroy();
    }

    private fail(err: Error): void {
        if (!this.failure) this.failure = err;
        const pending = this.pending;
        if (pending) {
            this.pending = null;
            clearTimeout(pending.timer);
            pending.reject(err);
        }
    }

    private onData(chunk: Buffer): void {
        this.totalBytes += chunk.length;
        const pending = this.pending;
        if (pending) {
            pending.bytes += chunk.length;
            if (pending.capture) pending.chunks.push(chunk);
        }
        let pos = 0;
        const length = chunk.length;
        while (pos < length) {
            if (this.literalLeft > 0) {
                const take = Math.min(this.literalLeft, length - pos);
                this.literalLeft -= take;
                pos += take;
                continue;
            }
            const newline = chunk.indexOf(LF, pos);
            if (newline < 0) {
                this.partial.push(chunk.subarray(pos));
                this.partialLength += length - pos;
                break;
            }
            let line = chunk.subarray(pos, newline + 1);
            if (this.partialLength) {
                this.partial.push(line);
                line = Buffer.concat(this.partial, this.partialLength + line.length);
                this.partial = [];
                this.partialLength = 0;
            }
            pos = newline + 1;
            this.onLine(line);
        }
    }

    private onLine(line: Buffer): void {
        const continuation = this.continuation;
        this.continuation = false;
        // A literal marker ends the line: "... {123}\r\n".
        let end = line.length - 1; // at LF
        if (end > 0 && line[end - 1] === CR) end--;
        if (end > 0 && line[end - 1] === 0x7d /* } */) {
            const open = line.lastIndexOf(0x7b /* { */, end - 1);
            if (open >= 0) {
                const digits = line.toString('latin1', open + 1, end - 1).replace(/\+$/, '');
                if (/^\d+$/.test(digits)) {
                    const size = Number(digits);
                    this.literalLeft = size;
                    this.continuation = true;
                    if (this.pending) {
                        this.pending.literalBytes += size;
                        this.pending.literals++;
                    }
                    return;
                }
            }
        }
        if (continuation) return;
        if (this.greeting) {
            const greeting = this.greeting;
            this.greeting = null;
            greeting(line.toString('utf8').trimEnd());
            return;
        }
        const pending = this.pending;
        if (!pending || line.length < pending.tagPrefix.length || line.compare(pending.tagPrefix, 0, pending.tagPrefix.length, 0, pending.tagPrefix.length) !== 0) {
            return;
        }
        const ns = process.hrtime.bigint() - pending.started;
        this.pending = null;
        clearTimeout(pending.timer);
        const text = line.toString('utf8').trimEnd();
        const status = text.slice(pending.tagPrefix.length).split(' ')[0].toUpperCase();
        pending.resolve({
            status,
            line: text,
            bytes: pending.bytes,
            literalBytes: pending.literalBytes,
            literals: pending.literals,
            ns,
            response: pending.capture ? Buffer.concat(pending.chunks) : undefined
        });
    }
}
