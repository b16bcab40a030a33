import type { ResolvedUser } from '../config';

/**
 * Resolves a login name to a configured local user: the user name itself, name@localDomain,
 * or any of the user's upstream account addresses (what K-9 users tend to type), case-insensitively.
 */
export function findLocalUser(users: readonly ResolvedUser[], login: string, localDomain: string): ResolvedUser | null {
    const wanted = login.trim().toLowerCase();
    if (!wanted) return null;
    for (const user of users) {
        const name = user.name.toLowerCase();
        if (wanted === name || wanted === `${name}@${localDomain.toLowerCase()}`) return user;
        if (user.accounts.some(account => account.address.toLowerCase() === wanted)) return user;
    }
    return null;
}
