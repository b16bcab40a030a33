/**
 * IMAP flags as the store keeps them: system flags in their canonical spelling, keywords as
 * given, no duplicates (case-insensitively), and never \Recent (not supported, RFC 9051 drops it).
 */
const SYSTEM_FLAGS = ['\\Seen', '\\Answered', '\\Flagged', '\\Deleted', '\\Draft'];
const SYSTEM_BY_LOWER = new Map(SYSTEM_FLAGS.map(flag => [flag.toLowerCase(), flag]));

export function isSystemFlag(flag: string): boolean {
    return flag.startsWith('\\');
}

export function canonicalFlags(flags: readonly string[]): string[] {
    const out: string[] = [];
    const seen = new Set<string>();
    for (const raw of flags) {
        const flag = String(raw).trim();
        if (!flag) {
            continue;
        }
        const lower = flag.toLowerCase();
        if (lower === '\\recent' || seen.has(lower)) {
            continue;
        }
        if (flag.startsWith('\\') && !SYSTEM_BY_LOWER.has(lower)) {
            // Unknown system flags cannot be stored (RFC 3501 7.1: only \* permits new keywords).
            continue;
        }
        seen.add(lower);
        out.push(SYSTEM_BY_LOWER.get(lower) ?? flag);
    }
    return out;
}
