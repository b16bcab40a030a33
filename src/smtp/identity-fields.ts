/**
 * The header fields that say who wrote or sent a message (RFC 5322 3.6.2 From and Sender, 3.6.6
 * Resent-From and Resent-Sender). A recipient's mail program shows them as the author or as
 * "on behalf of", so on submission every address in every one of them must be one of the
 * logged-in user's own, the same rule as for the envelope sender: otherwise a villager could
 * send in someone else's name under their own login.
 */
import { fieldName } from './headers';

/** Lower-case field name → the spelling used in replies. */
const IDENTITY_FIELDS = new Map([
    ['from', 'From'],
    ['sender', 'Sender'],
    ['resent-from', 'Resent-From'],
    ['resent-sender', 'Resent-Sender']
]);

// eslint-disable-next-line @typescript-eslint/no-require-imports
const addressparser = require('nodemailer/lib/addressparser') as (value: string, options?: { flatten?: boolean }) => { address?: string }[];

export type IdentityCheck =
    | { ok: true; fields: string[] }
    /** `field` as spelt in IDENTITY_FIELDS; `value` decoded as UTF-8, for the reply. */
    | { ok: false; field: string; value: string };

/** A field's unfolded value as text: header bytes are UTF-8 (RFC 6532) or, if not, shown with U+FFFD. */
function valueOf(field: string): string {
    const raw = field.slice(field.indexOf(':') + 1).replace(/\r\n[ \t]*/g, ' ');
    return Buffer.from(raw, 'binary').toString('utf8').trim();
}

/**
 * Checks `fields` (header fields as binary strings, see splitMessage) and returns them with
 * every empty identity field dropped and a From added when none with a value is left: an empty
 * `From:` is replaced by `From: <mailFrom>` where it stood, never kept beside it.
 */
export function checkIdentityFields(fields: readonly string[], allowed: readonly string[], mailFrom: string): IdentityCheck {
    const out: string[] = [];
    let hasFrom = false;
    let emptyFromAt = -1;
    for (const field of fields) {
        const name = IDENTITY_FIELDS.get(fieldName(field));
        if (!name) {
            out.push(field);
            continue;
        }
        const value = valueOf(field);
        if (!value) {
            if (name === 'From' && emptyFromAt < 0) emptyFromAt = out.length;
            continue;
        }
        const addresses = addressparser(value, { flatten: true }).map(a => (a.address ?? '').toLowerCase());
        if (!addresses.length || addresses.some(address => !allowed.includes(address))) {
            return { ok: false, field: name, value };
        }
        if (name === 'From') hasFrom = true;
        out.push(field);
    }
    if (!hasFrom) {
        const from = `From: <${mailFrom}>`;
        if (emptyFromAt >= 0) out.splice(emptyFromAt, 0, from);
        else out.push(from);
    }
    return { ok: true, fields: out };
}
