// Minimal declarations for the parts of imap-core (from @zone-eu/wildduck) that mailmule uses.
// imap-core is JavaScript with Node-style callbacks; see ../shared/notes/imap-core.md for its contract.
declare module '@zone-eu/wildduck/imap-core' {
    export const IMAPServer: any;
    export const imapHandler: {
        compiler(response: any, asArray?: boolean, isLogging?: boolean): string;
        compileStream(response: any, isLogging?: boolean): NodeJS.ReadableStream;
        parser(command: string | Buffer): any;
    };
}
declare module '@zone-eu/wildduck/imap-core/lib/indexer/indexer' {
    const Indexer: any;
    export = Indexer;
}
declare module '@zone-eu/wildduck/lib/errors' {
    export function setGelf(gelf: { emit(...args: unknown[]): void }): void;
}
declare module 'libmime' {
    export function decodeWords(value: string): string;
    export function encodeWords(value: string, mimeWordEncoding?: string | false, maxLength?: number): string;
}
