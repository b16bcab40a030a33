/**
 * APPEND in a literal8 (RFC 3516 4.4): every part whose Content-Transfer-Encoding is binary is
 * stored base64-encoded instead, as Dovecot does.
 *
 * Why: BODYSTRUCTURE and FETCH BODY[...] must describe and return such a part as though it were
 * in an encoding IMAP4rev1 can carry (RFC 3516 6), and a plain literal cannot carry the NUL that
 * binary data may hold (RFC 3501 9, CHAR8). RFC 3516 4.4 lets the server change the encoding of
 * literal8 data as long as nothing is lost: FETCH BINARY[part] decodes the base64 back to the very
 * bytes appended, and BINARY.SIZE counts them.
 *
 * Everything else is kept byte for byte: header fields other than that Content-Transfer-Encoding,
 * preambles, epilogues, delimiters, other parts. Multipart and message/rfc822 entities are walked
 * into, never encoded themselves: RFC 2046 5.1 and 5.2.1 allow only 7bit, 8bit and binary there.
 */

/** Base64 line length (RFC 2045 6.8: at most 76 characters). */
const BASE64_LINE = 76;
/** Entities nested deeper than this are kept as they are (a bound on recursion for hostile input). */
const MAX_DEPTH = 50;

interface HeaderField {
    /** Offset of the field's first character and of the character after its last line break. */
    start: number;
    end: number;
    name: string;
    /** The value with folding undone. */
    value: string;
    /** The line break that ends the field, as written ("" when the entity ends on it). */
    lineBreak: string;
}

interface Header {
    fields: HeaderField[];
    /** Offset where the body begins (after the empty line), or the entity's end when there is none. */
    bodyStart: number;
}

/** `raw` with every binary part base64-encoded; `raw` itself when it has none. */
export function binaryPartsToBase64(raw: Buffer): Buffer {
    // latin1 maps each byte to one character and back, so offsets and bytes are kept exactly.
    const text = raw.toString('latin1');
    if (!/content-transfer-encoding/i.test(text) || !/binary/i.test(text)) return raw;
    const out: string[] = [];
    let changed = false;
    const convert = (start: number, end: number, defaultType: string, depth: number): void => {
        if (depth > MAX_DEPTH) {
            out.push(text.slice(start, end));
            return;
        }
        const header = readHeader(text, start, end);
        const contentType = parseContentType(lastField(header, 'content-type')?.value ?? defaultType);
        const encodingField = lastField(header, 'content-transfer-encoding');
        const encoding = encodingField ? stripComments(encodingField.value).toLowerCase() : '';

        if (contentType.type === 'multipart' && contentType.boundary) {
            out.push(text.slice(start, header.bodyStart));
            const childType = contentType.subtype === 'digest' ? 'message/rfc822' : 'text/plain';
            convertMultipartBody(text, header.bodyStart, end, contentType.boundary, out, (partStart, partEnd) => convert(partStart, partEnd, childType, depth + 1));
        } else if (contentType.type === 'message' && /^(rfc822|global)$/.test(contentType.subtype) && ['', '7bit', '8bit', 'binary'].includes(encoding)) {
            out.push(text.slice(start, header.bodyStart));
            convert(header.bodyStart, end, 'text/plain', depth + 1);
        } else if (encodingField && encoding === 'binary') {
            changed = true;
            out.push(text.slice(start, encodingField.start));
            out.push(`${encodingField.name}: base64${encodingField.lineBreak}`);
            out.push(text.slice(encodingField.end, header.bodyStart));
            out.push(base64Lines(raw.subarray(header.bodyStart, end)));
        } else {
            out.push(text.slice(start, end));
        }
    };
    convert(0, text.length, 'text/plain', 0);
    return changed ? Buffer.from(out.join(''), 'latin1') : raw;
}

/** The header fields of the entity at [start, end), up to the first empty line. */
function readHeader(text: string, start: number, end: number): Header {
    const fields: HeaderField[] = [];
    let pos = start;
    while (pos < end) {
        const newline = text.indexOf('\n', pos);
        const lineEnd = newline < 0 || newline >= end ? end : newline + 1;
        const line = text.slice(pos, lineEnd);
        if (line === '\n' || line === '\r\n') return { fields, bodyStart: lineEnd };
        const content = line.replace(/\r?\n$/, '');
        const lineBreak = line.slice(content.length);
        const current = fields[fields.length - 1];
        if (current && /^[ \t]/.test(line)) {
            // A folded continuation of the field before (RFC 5322 2.2.3).
            current.value += ' ' + content.trim();
            current.end = lineEnd;
            current.lineBreak = lineBreak;
        } else {
            const colon = content.indexOf(':');
            fields.push({
                start: pos,
                end: lineEnd,
                name: colon < 0 ? '' : content.slice(0, colon).trim(),
                value: colon < 0 ? '' : content.slice(colon + 1).trim(),
                lineBreak
            });
        }
        pos = lineEnd;
    }
    return { fields, bodyStart: end };
}

/** The last field of that name: imap-core's MIME parser also takes the last one when a field repeats. */
function lastField(header: Header, name: string): HeaderField | undefined {
    for (let i = header.fields.length - 1; i >= 0; i--) {
        if (header.fields[i].name.toLowerCase() === name) return header.fields[i];
    }
    return undefined;
}

/** Type, subtype and boundary of a Content-Type value, read as imap-core's parser reads them. */
function parseContentType(value: string): { type: string; subtype: string; boundary: string } {
    const [media, ...params] = value.split(';');
    const [type = '', ...subtype] = media.trim().toLowerCase().split('/');
    let boundary = '';
    for (const param of params) {
        const [key, ...rest] = param.split('=');
        if (key.trim().toLowerCase() === 'boundary') boundary = rest.join('=').replace(/^['"\s]*|['"\s]*$/g, '');
    }
    return { type: type.trim(), subtype: subtype.join('/').trim(), boundary };
}

/** A structured field value without its comments (RFC 5322 3.2.2) and surrounding white space. */
function stripComments(value: string): string {
    let out = '';
    let depth = 0;
    for (let i = 0; i < value.length; i++) {
        const char = value[i];
        if (char === '\\' && depth > 0) i++;
        else if (char === '(') depth++;
        else if (char === ')' && depth > 0) depth--;
        else if (depth === 0) out += char;
    }
    return out.trim();
}

/**
 * The body of a multipart at [start, end): preamble, delimiter lines and epilogue are copied, each
 * part is handed to `convertPart`. The line break before a delimiter belongs to the delimiter
 * (RFC 2046 5.1.1), so it is not part of the body before it.
 */
function convertMultipartBody(text: string, start: number, end: number, boundary: string, out: string[], convertPart: (start: number, end: number) => void): void {
    const delimiter = '--' + boundary;
    let pos = start;
    let partStart = -1;
    while (pos < end) {
        const found = findDelimiterLine(text, pos, end, delimiter);
        if (!found) break;
        if (partStart < 0) {
            out.push(text.slice(start, found.lineStart));
        } else {
            const breakLength = text[found.lineStart - 1] === '\n' ? (text[found.lineStart - 2] === '\r' ? 2 : 1) : 0;
            const partEnd = Math.max(partStart, found.lineStart - breakLength);
            convertPart(partStart, partEnd);
            out.push(text.slice(partEnd, found.lineStart));
        }
        out.push(text.slice(found.lineStart, found.lineEnd));
        pos = found.lineEnd;
        if (found.close) {
            out.push(text.slice(pos, end));
            return;
        }
        partStart = pos;
    }
    if (partStart < 0) {
        out.push(text.slice(start, end));
    } else {
        // No close-delimiter: the last part runs to the end.
        convertPart(partStart, end);
    }
}

/** The next line in [from, end) that is `delimiter` or `delimiter--`, with optional trailing white space. */
function findDelimiterLine(text: string, from: number, end: number, delimiter: string): { lineStart: number; lineEnd: number; close: boolean } | null {
    let at = text.indexOf(delimiter, from);
    while (at >= 0 && at < end) {
        const newline = text.indexOf('\n', at);
        const lineEnd = newline < 0 || newline >= end ? end : newline + 1;
        if (at === from || text[at - 1] === '\n') {
            const rest = text.slice(at + delimiter.length, lineEnd).replace(/\r?\n$/, '');
            if (/^[ \t]*$/.test(rest)) return { lineStart: at, lineEnd, close: false };
            if (/^--[ \t]*$/.test(rest)) return { lineStart: at, lineEnd, close: true };
        }
        at = text.indexOf(delimiter, at + 1);
    }
    return null;
}

/** `data` in base64, in lines of 76 characters joined by CRLF, without a line break after the last. */
function base64Lines(data: Buffer): string {
    const encoded = data.toString('base64');
    const lines: string[] = [];
    for (let i = 0; i < encoded.length; i += BASE64_LINE) lines.push(encoded.slice(i, i + BASE64_LINE));
    return lines.join('\r\n');
}
