/** Users: the row a configured user has in the store, their password hash, what they hold. */
import type { Connection } from './connection';
import { createDefaultMailboxes, missingDefaultMailboxes } from './mailboxes';
import type { UserRow } from './types';

export interface UserSummary {
    name: string;
    mailboxes: number;
    messages: number;
    bytes: number;
    hasPassword: boolean;
}

export class Users {
    constructor(private readonly db: Connection) {}

    /** The user's row, created with the default mailboxes if missing (and any default mailbox they lack). */
    ensure(name: string): UserRow {
        const existing = this.get(name);
        const user = existing ?? this.db.write(tx => ({ id: Number(tx.stmt('INSERT INTO users (name, created_at) VALUES (?, ?)').run(name, Date.now()).lastInsertRowid), name, passwordHash: null }));
        const missing = missingDefaultMailboxes(this.db, user.id);
        if (missing.length) {
            this.db.write(tx => createDefaultMailboxes(tx, user.id, missing));
        }
        return user;
    }

    get(name: string): UserRow | null {
        return (this.db.stmt('SELECT id, name, password_hash AS passwordHash FROM users WHERE name = ?').get(name) as UserRow | undefined) ?? null;
    }

    getById(id: number): UserRow | null {
        return (this.db.stmt('SELECT id, name, password_hash AS passwordHash FROM users WHERE id = ?').get(id) as UserRow | undefined) ?? null;
    }

    /** Sets the password hash, creating the user if missing. */
    setPasswordHash(name: string, hash: string): void {
        const user = this.ensure(name);
        this.db.write(tx => tx.stmt('UPDATE users SET password_hash = ? WHERE id = ?').run(hash, user.id));
    }

    /** Per user: mailbox count, message count and bytes held. */
    summaries(): UserSummary[] {
        const rows = this.db
            .stmt(
                `SELECT u.name AS name,
                        (SELECT COUNT(*) FROM mailboxes mb WHERE mb.user_id = u.id) AS mailboxes,
                        (SELECT COUNT(*) FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id WHERE mb.user_id = u.id) AS messages,
                        (SELECT COALESCE(SUM(m.size), 0) FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id WHERE mb.user_id = u.id) AS bytes,
                        u.password_hash IS NOT NULL AS hasPassword
                 FROM users u ORDER BY u.name`
            )
            .all() as (Omit<UserSummary, 'hasPassword'> & { hasPassword: number })[];
        return rows.map(row => ({ ...row, hasPassword: Boolean(row.hasPassword) }));
    }

    /** Bytes of mail the user holds (QUOTA). */
    storageUsed(userId: number): number {
        return Number(this.db.stmt('SELECT COALESCE(SUM(m.size), 0) FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id WHERE mb.user_id = ?').pluck().get(userId));
    }
}
