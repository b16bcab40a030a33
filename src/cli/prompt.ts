/** Reading a secret from a terminal without echo, or from a pipe. */
import readline from 'node:readline';
import { Writable } from 'node:stream';

export async function readStdinLine(): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0];
}

export function promptHidden(question: string): Promise<string> {
    let muted = false;
    const output = new Writable({
        write(chunk, _encoding, done) {
            if (!muted) process.stderr.write(chunk);
            done();
        }
    });
    const rl = readline.createInterface({ input: process.stdin, output, terminal: true });
    return new Promise(resolve => {
        rl.question(question, answer => {
            rl.close();
            process.stderr.write('\n');
            resolve(answer);
        });
        muted = true;
    });
}

export async function confirm(question: string): Promise<boolean> {
    const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
    return new Promise(resolve =>
        rl.question(question, answer => {
            rl.close();
            resolve(/^y(es)?$/i.test(answer.trim()));
        })
    );
}
