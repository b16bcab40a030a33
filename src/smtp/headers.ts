/**
 * Just enough header handling for submission: split the header block into fields (a line
 * starting with space or tab continues the previous field, RFC 5322 2.2.3), drop or add whole
 * fields, and put the message back together. MIME structure is never touched here.
 */
export interface SplitMessage {
    /** Header fields, each with its folded continuation lines, without the final CRLF. */
    fields: string[];
    /** Everything after the blank line that ends the header (may be empty). */
    body: Buffer;
    /** False when the message had no blank line (all header, no body). */
    hasBody: boolean;
}

export function splitMessage(raw: Buffer): SplitMessage {
    // No header fields at all: the message starts with the blank line, and all of it is body.
    if (raw[0] === 13 && raw[1] === 10) return { fields: [], body: raw.subarray(2), hasBody: true };
    const end = raw.indexOf('\r\n\r\n');
    const headerText = (end >= 0 ? raw.subarray(0, end) : raw).toString('binary');
    const body = end >= 0 ? raw.subarray(end + 4) : Buffer.alloc(0);
    const fields: string[] = [];
    for (const line of headerText.split('\r\n')) {
        if (!line) continue;
        if ((line[0] === ' ' || line[0] === '\t') && fields.length) {
            fields[fields.length - 1] += '\r\n' + line;
        } else {
            fields.push(line);
        }
    }
    return { fields, body, hasBody: end >= 0 };
}

export function fieldName(field: string): string {
    const colon = field.indexOf(':');
    return (colon > 0 ? field.slice(0, colon) : field).trim().toLowerCase();
}

/** The unfolded values of every field with this name, in order. */
export function fieldValues(fields: readonly string[], name: string): string[] {
    return fields
        .filter(f => fieldName(f) === name)
        .map(field =>
            field
                .slice(field.indexOf(':') + 1)
                .replace(/\r\n[ \t]*/g, ' ')
                .trim()
        );
}

/** The unfolded value of the first field with this name, or null. */
export function fieldValue(fields: readonly string[], name: string): string | null {
    const field = fields.find(f => fieldName(f) === name);
    if (!field) return null;
    return field
        .slice(field.indexOf(':') + 1)
        .replace(/\r\n[ \t]*/g, ' ')
        .trim();
}

export function joinMessage(fields: readonly string[], body: Buffer): Buffer {
    return Buffer.concat([Buffer.from(fields.join('\r\n') + '\r\n\r\n', 'binary'), body]);
}
