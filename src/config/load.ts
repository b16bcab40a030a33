/**
 * Reads and validates mailmule.yaml and accounts.yaml.
 *
 * Every problem is reported as `file:line:col key.path: message`, pointing at the value that is
 * wrong (or at the object that lacks a required key), so the admin can open the file at that spot.
 */
import fs from 'node:fs';
import path from 'node:path';
import { LineCounter, parseDocument, isMap, visit, type Node } from 'yaml';
import type { ZodType, z } from 'zod';
import { accountMapSchema, credentialsSchema, gatewaySchema, type AccountMap, type Credentials, type GatewayConfig, type LocalUser, type UpstreamAccount } from './schema';

export class ConfigError extends Error {
    readonly problems: string[];
    constructor(problems: string[]) {
        super(problems.join('\n'));
        this.name = 'ConfigError';
        this.problems = problems;
    }
}

/** An upstream account with its credentials resolved, ready for the uplink. */
export interface ResolvedAccount extends Omit<UpstreamAccount, 'credentials' | 'credentialsFile'> {
    name: string;
    credentials: Credentials | null;
    /** The file the credentials came from, for messages that must not include the secret itself. */
    credentialsSource: string | null;
}

export interface ResolvedUser extends Omit<LocalUser, 'accounts'> {
    accounts: ResolvedAccount[];
}

export interface LoadedConfig {
    /** Absolute path of mailmule.yaml. */
    file: string;
    gateway: GatewayConfig;
    /** Absolute paths derived from the gateway file. */
    paths: { dataDir: string; accounts: string; tlsCert: string | null; tlsKey: string | null };
    accountsFile: string;
    users: ResolvedUser[];
}

type PathKey = string | number;

function formatKeyPath(keys: readonly PathKey[]): string {
    let out = '';
    for (const key of keys) {
        if (typeof key === 'number') {
            out += `[${key}]`;
        } else {
            out += out ? `.${key}` : key;
        }
    }
    return out || '(top level)';
}

function describeIssue(issue: z.core.$ZodIssue): string {
    switch (issue.code) {
        case 'invalid_type': {
            const expected = String(issue.expected);
            if (issue.input === undefined) {
                return `required ${expected === 'object' ? 'section' : expected} is missing`;
            }
            const article = /^[aeiou]/.test(expected) ? 'an' : 'a';
            return `expected ${article} ${expected}`;
        }
        case 'invalid_value':
            return `expected one of ${issue.values.map(v => JSON.stringify(v)).join(', ')}`;
        case 'unrecognized_keys':
            return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map(k => JSON.stringify(k)).join(', ')}`;
        case 'too_small':
            return issue.origin === 'string' ? 'must not be empty' : `must be at least ${String(issue.minimum)}`;
        case 'too_big':
            return `must be at most ${String(issue.maximum)}`;
        case 'invalid_format':
            return issue.format === 'email' ? 'expected an email address' : issue.format === 'url' ? 'expected a URL' : issue.message;
        case 'invalid_union': {
            // Unions here are "number or string with a unit": the string branch's message says what fits.
            const messages = issue.errors
                .flat()
                .map(e => e.message)
                .filter(m => !m.startsWith('Invalid input'));
            return messages[0] ?? 'value has the wrong form';
        }
        default:
            return issue.message;
    }
}

/** Finds the YAML node for a key path; falls back to the nearest existing ancestor. */
function locate(doc: ReturnType<typeof parseDocument>, keys: readonly PathKey[]): Node | null {
    for (let depth = keys.length; depth >= 0; depth--) {
        const node = depth === 0 ? doc.contents : (doc.getIn(keys.slice(0, depth), true) as Node | undefined);
        if (node && typeof node === 'object' && 'range' in node && node.range) {
            // For a missing key inside an existing map, point at the map; for an unknown key point at the key itself.
            return node;
        }
    }
    return null;
}

/** Finds the key node (not the value) of `keys`, for unknown-key errors. */
function locateKey(doc: ReturnType<typeof parseDocument>, parent: readonly PathKey[], key: string): Node | null {
    const container = parent.length ? doc.getIn(parent, true) : doc.contents;
    if (container && isMap(container)) {
        for (const pair of container.items) {
            const k = pair.key as Node | null;
            if (k && typeof k === 'object' && 'value' in k && String((k as { value: unknown }).value) === key) {
                return k;
            }
        }
    }
    return null;
}

/**
 * Parses one YAML file against a schema. Throws ConfigError listing every problem with file:line:col.
 */
export function parseYamlFile<S extends ZodType>(file: string, schema: S): z.output<S> {
    let text: string;
    try {
        text = fs.readFileSync(file, 'utf8');
    } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        throw new ConfigError([`${file}: cannot read file (${code === 'ENOENT' ? 'no such file' : (code ?? String(err))})`]);
    }
    const name = path.basename(file);
    const lineCounter = new LineCounter();
    const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
    const where = (offset: number): string => {
        const pos = lineCounter.linePos(offset);
        return `${name}:${pos.line}:${pos.col}`;
    };
    if (doc.errors.length) {
        // Some yaml messages end by quoting the offending source ('Unexpected scalar token in YAML stream: "…"',
        // 'Block scalar header includes extra characters: …'), which on a credentials line is the secret
        // itself. line:col already points at it, so that tail is dropped.
        throw new ConfigError(doc.errors.map(err => `${where(err.pos[0])} ${err.message.split('\n')[0].replace(/(\w): .*$/, '$1')}`));
    }
    let data: unknown;
    try {
        data = doc.toJS() ?? {};
    } catch {
        // toJS throws on an unresolved alias, e.g. an unquoted password starting with "*"; its message
        // would quote the rest of that value, so point at the alias instead of repeating it.
        let offset = 0;
        visit(doc, {
            Alias(_key, node) {
                if (!node.resolve(doc)) {
                    offset = node.range?.[0] ?? 0;
                    return visit.BREAK;
                }
            }
        });
        throw new ConfigError([`${where(offset)} unresolved alias: a value starting with * must be quoted`]);
    }
    // reportInput: zod 4 leaves `input` out of issues by default, and describeIssue needs it to tell
    // a wrong type ("expected a number") from a missing key ("required number is missing").
    const result = schema.safeParse(data, { reportInput: true });
    if (result.success) {
        return result.data;
    }
    const problems = result.error.issues.map(issue => {
        const keys = issue.path as PathKey[];
        if (issue.code === 'unrecognized_keys') {
            return issue.keys
                .map(key => {
                    const node = locateKey(doc, keys, key) ?? locate(doc, keys);
                    const offset = node?.range?.[0] ?? 0;
                    return `${where(offset)} ${formatKeyPath([...keys, key])}: unknown key`;
                })
                .join('\n');
        }
        const node = locate(doc, keys);
        const offset = node?.range?.[0] ?? 0;
        return `${where(offset)} ${formatKeyPath(keys)}: ${describeIssue(issue)}`;
    });
    throw new ConfigError(problems.flatMap(p => p.split('\n')));
}

/**
 * A file holding upstream secrets must be readable by its owner only. Returns a problem or null.
 */
export function checkSecretFileMode(file: string): string | null {
    let stat: fs.Stats;
    try {
        stat = fs.statSync(file);
    } catch {
        return null;
    }
    if (stat.mode & 0o077) {
        const mode = (stat.mode & 0o777).toString(8).padStart(3, '0');
        return `${file}: holds upstream credentials but is readable by group or others (mode ${mode}); run: chmod 600 ${file}`;
    }
    return null;
}

function resolveAccounts(accountsFile: string, map: AccountMap): ResolvedUser[] {
    const problems: string[] = [];
    const baseDir = path.dirname(accountsFile);
    let inlineSecrets = false;
    const users = map.users.map(user => ({
        ...user,
        accounts: user.accounts.map(account => {
            const { credentials, credentialsFile, ...rest } = account;
            let resolved: Credentials | null = credentials ?? null;
            let source: string | null = credentials ? accountsFile : null;
            if (credentials) {
                inlineSecrets = true;
            }
            if (credentialsFile) {
                const file = path.resolve(baseDir, credentialsFile);
                const modeProblem = checkSecretFileMode(file);
                if (modeProblem) {
                    problems.push(modeProblem);
                } else {
                    try {
                        resolved = parseYamlFile(file, credentialsSchema);
                        source = file;
                    } catch (err) {
                        if (err instanceof ConfigError) {
                            problems.push(...err.problems);
                        } else {
                            throw err;
                        }
                    }
                }
            }
            return { ...rest, name: account.name ?? account.address, credentials: resolved, credentialsSource: source };
        })
    }));
    if (inlineSecrets) {
        const modeProblem = checkSecretFileMode(accountsFile);
        if (modeProblem) {
            problems.unshift(modeProblem);
        }
    }
    if (problems.length) {
        throw new ConfigError(problems);
    }
    return users;
}

/**
 * Upstream accounts that have neither `credentials` nor `credentialsFile`, each as a problem
 * pointing at the account in accounts.yaml (file:line:col like every config error). Loading
 * allows them (the schema leaves both optional), but such an account cannot log in to send or
 * receive: `mailmule check` refuses it rather than let the first night run find out.
 */
export function accountsWithoutCredentials(config: LoadedConfig): string[] {
    const missing: PathKey[][] = [];
    config.users.forEach((user, u) =>
        user.accounts.forEach((account, a) => {
            if (!account.credentials) missing.push(['users', u, 'accounts', a]);
        })
    );
    if (!missing.length) return [];
    const lineCounter = new LineCounter();
    const doc = parseDocument(fs.readFileSync(config.accountsFile, 'utf8'), { lineCounter });
    return missing.map(keys => {
        const pos = lineCounter.linePos(locate(doc, keys)?.range?.[0] ?? 0);
        return `${path.basename(config.accountsFile)}:${pos.line}:${pos.col} ${formatKeyPath(keys)}: no credentials; give credentials (password or oauth2) or credentialsFile`;
    });
}

/** Loads mailmule.yaml and the account map it names. */
export function loadConfig(file: string): LoadedConfig {
    const absolute = path.resolve(file);
    const gateway = parseYamlFile(absolute, gatewaySchema);
    const baseDir = path.dirname(absolute);
    const accountsFile = path.resolve(baseDir, gateway.accounts);
    const map = parseYamlFile(accountsFile, accountMapSchema);
    const users = resolveAccounts(accountsFile, map);
    return {
        file: absolute,
        gateway,
        accountsFile,
        paths: {
            dataDir: path.resolve(baseDir, gateway.dataDir),
            accounts: accountsFile,
            tlsCert: gateway.tls.cert ? path.resolve(baseDir, gateway.tls.cert) : null,
            tlsKey: gateway.tls.key ? path.resolve(baseDir, gateway.tls.key) : null
        },
        users
    };
}

/** Where the CLI looks when -c is not given. */
export function defaultConfigPath(): string {
    const system = '/etc/mailmule/mailmule.yaml';
    return fs.existsSync(system) ? system : path.resolve('config/mailmule.yaml');
}

/** Every address a local user may send as or receive at: their accounts plus name@localDomain. */
export function addressesOf(user: ResolvedUser, localDomain: string): string[] {
    return [`${user.name}@${localDomain}`.toLowerCase(), ...user.accounts.map(a => a.address.toLowerCase())];
}
