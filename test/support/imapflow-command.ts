/**
 * Raw IMAP commands on an ImapFlow connection, for tests that need what imapflow's API does not
 * show: a failed command's response code, untagged responses of a given kind, or a command
 * imapflow has no call for (LIST with an arbitrary reference, COPY to a mailbox that is not there).
 */
import type { ImapFlow } from 'imapflow';
import { withTimeout } from './wait';

const WAIT_MS = 5000;

/**
 * A response as imapflow's parser gives it. Its attributes are an untyped tree of atoms, strings,
 * sections and lists that each test walks by position, as the response's grammar lays it out.
 */
export interface ParsedResponse {
    tag: string;
    command: string;
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    attributes?: any[];
}

/** The parts of ImapFlow that are not in its public API. */
export interface ImapFlowInternals {
    exec(
        command: string,
        attributes?: unknown[] | false,
        options?: { untagged?: Record<string, (untagged: ParsedResponse) => Promise<void>> }
    ): Promise<{ response: ParsedResponse; next: () => void }>;
    run(command: string, ...args: unknown[]): Promise<unknown>;
    _inflate?: unknown;
}

export function internals(client: ImapFlow): ImapFlowInternals {
    return client as unknown as ImapFlowInternals;
}

export interface CommandResult {
    status: 'OK' | 'NO' | 'BAD';
    /** The response code, e.g. "TRYCREATE" or "MODIFIED 3" ('' when none). */
    code: string;
    text: string;
    /** Untagged responses of the kinds asked for, in arrival order. */
    untagged: ParsedResponse[];
}

/** How imapflow rejects a command the server answered NO or BAD. */
interface CommandRejection {
    responseStatus?: string;
    response?: ParsedResponse;
}

function describeTagged(response: ParsedResponse | undefined): { code: string; text: string } {
    const attributes = response?.attributes ?? [];
    const section: ({ value?: string } | { value?: string }[])[] = attributes[0]?.section ?? [];
    const valueOf = (part: { value?: string } | undefined) => part?.value ?? '';
    const code = section
        .map(part => (Array.isArray(part) ? `(${part.map(valueOf).join(' ')})` : valueOf(part)))
        .join(' ')
        .toUpperCase();
    const text = attributes
        .filter(attribute => attribute && attribute.type === 'TEXT')
        .map(attribute => String(attribute.value))
        .join(' ');
    return { code, text };
}

export const atom = (value: string) => ({ type: 'ATOM', value });
export const str = (value: string) => ({ type: 'STRING', value });
export const sequence = (value: string | number) => ({ type: 'SEQUENCE', value: String(value) });

/**
 * Sends one command on imapflow's connection and returns how the server answered. It does not
 * update imapflow's idea of the session state, so use it for commands that leave the selected
 * mailbox alone (or on a client that is not reused afterwards).
 */
export async function command(client: ImapFlow, name: string, attributes: unknown[] = [], collect: string[] = []): Promise<CommandResult> {
    const untagged: ParsedResponse[] = [];
    const handlers: Record<string, (response: ParsedResponse) => Promise<void>> = {};
    for (const kind of collect) {
        handlers[kind] = response => {
            untagged.push(response);
            return Promise.resolve();
        };
    }
    try {
        const { response, next } = await withTimeout(internals(client).exec(name, attributes.length ? attributes : false, { untagged: handlers }), WAIT_MS, name);
        next();
        return { status: 'OK', ...describeTagged(response), untagged };
    } catch (err) {
        const rejection = err as CommandRejection | null;
        if (rejection && (rejection.responseStatus === 'NO' || rejection.responseStatus === 'BAD')) {
            return { status: rejection.responseStatus, ...describeTagged(rejection.response), untagged };
        }
        throw err;
    }
}
