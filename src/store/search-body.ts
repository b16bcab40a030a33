/**
 * The decoded text of a message's text parts, for BODY and TEXT search: the text imap-core's
 * `getMaildata(tree).text` gives (indexer.js), which is what the store has always kept, made
 * without the rest of what getMaildata does for WildDuck and the store never used: an HTML
 * rendering of every text part, a random "magic" number and random names for unnamed
 * attachments (crypto.randomBytes, once or more per message), the tree's bodies detached (and
 * put back by the caller), and html-to-text's options compiled again for every HTML part (its
 * `htmlToText` compiles per call; `compile` once is its fast path, with the same output).
 * Together about a fifth of analysing a downloaded message (a CPU profile of 2,750 real ones).
 *
 * getMaildata's walk is kept step for step, its quirks included (the body of a forwarded
 * single-part message is not searched; a charset is compared after stripping all but [a-z0-9];
 * where getMaildata throws, this throws, and the caller stores an empty text as before), so that a message's stored text is the same either way: search-body.test.ts
 * compares the two on real mail. The helpers are the ones imap-core loads, from where it loads them.
 */
import { createRequire } from 'node:module';
import type { MimeNode } from './mime';

/** HTML parts longer than this are not turned into text (indexer.js MAX_HTML_PARSE_LENGTH). */
const MAX_HTML_PARSE_LENGTH = 2 * 1024 * 1024;
/** A text part larger than this is detached by getMaildata, and so named in its cid: map. */
const MAX_INLINE_TEXT = 300 * 1024;
const TEXT_TYPES = ['text/plain', 'text/html', 'text/rfc822-headers', 'message/delivery-status'];

interface TextHelpers {
    htmlToText: (html: string) => string;
    decodeFlowed: (text: string, delSp: boolean) => string;
    decodeCharset: (bytes: Buffer, charset: string) => string;
    decodeQp: (text: string) => Buffer;
    decodeBase64: (text: string) => Buffer;
}

let helpers: TextHelpers | undefined;

function loadHelpers(): TextHelpers {
    if (!helpers) {
        const fromIndexer = createRequire(require.resolve('@zone-eu/wildduck/imap-core/lib/indexer/indexer'));
        const { compile } = fromIndexer('html-to-text') as { compile: (options: object) => (html: string) => string };
        const libmime = fromIndexer('libmime') as { decodeFlowed(text: string, delSp: boolean): string };
        const libcharset = fromIndexer('libmime/lib/charset') as { decode(bytes: Buffer, charset: string): string };
        const libqp = fromIndexer('libqp') as { decode(text: string): Buffer };
        const libbase64 = fromIndexer('libbase64') as { decode(text: string): Buffer };
        helpers = {
            // htmlToText(html) is compile({})(html): the same conversion, its options compiled once.
            htmlToText: compile({}),
            decodeFlowed: (text, delSp) => libmime.decodeFlowed(text, delSp),
            decodeCharset: (bytes, charset) => libcharset.decode(bytes, charset),
            decodeQp: text => libqp.decode(text),
            decodeBase64: text => libbase64.decode(text)
        };
    }
    return helpers;
}

/** A Content-Type or Content-Disposition as the parser leaves it (read as loosely as indexer.js does). */
interface LooseParams {
    value?: string;
    params: Record<string, string | undefined>;
}

/** getMaildata(tree).text; throws where getMaildata would (see the header). */
export function searchBodyText(tree: MimeNode): string {
    const { htmlToText, decodeFlowed, decodeCharset, decodeQp, decodeBase64 } = loadHelpers();
    const textContent: string[] = [];
    /** Content-ID → the attachment id getMaildata gives the part, for its cid: links. */
    const cidMap = new Map<string, string>();
    let idcount = 0;

    const walk = (start: MimeNode, alternative: boolean): void => {
        let node = start;
        const header = node.parsedHeader as Record<string, unknown>;
        const parsedContentType = header['content-type'] as LooseParams | undefined;
        const parsedDisposition = header['content-disposition'] as LooseParams | undefined;
        const transferEncoding = ((header['content-transfer-encoding'] as string | undefined) || '7bit').toLowerCase().trim();
        const contentType = ((parsedContentType && parsedContentType.value) || (node.rootNode ? 'text/plain' : 'application/octet-stream')).toLowerCase().trim();
        alternative = alternative || contentType === 'multipart/alternative';

        let flowed = false;
        let delSp = false;
        if (parsedContentType && parsedContentType.params.format && parsedContentType.params.format.toLowerCase().trim() === 'flowed') {
            flowed = true;
            if (parsedContentType.params.delsp && parsedContentType.params.delsp.toLowerCase().trim() === 'yes') delSp = true;
        }
        const disposition = ((parsedDisposition && parsedDisposition.value) || '').toLowerCase().trim() || false;
        const isMultipart = contentType.split('/')[0] === 'multipart';
        let isInlineText = false;

        if (TEXT_TYPES.includes(contentType) && (!disposition || disposition === 'inline')) {
            isInlineText = true;
            if (node.body && node.body.length) {
                // The parser gives every part a Content-Type (text/plain by default); were one missing, this throws as in indexer.js.
                const charset = parsedContentType!.params.charset || 'windows-1257';
                let content: Buffer | string = node.body;
                if (transferEncoding === 'base64') content = decodeBase64(content.toString());
                else if (transferEncoding === 'quoted-printable') content = decodeQp(content.toString());
                if (
                    !['ascii', 'usascii', 'utf8'].includes(
                        charset
                            .replace(/[^a-z0-9]+/g, '')
                            .trim()
                            .toLowerCase()
                    )
                ) {
                    content = decodeCharset(content, charset);
                }
                content = flowed ? decodeFlowed(content.toString(), delSp) : content.toString();
                if (contentType === 'text/html') {
                    if (!alternative) {
                        try {
                            if (content && content.length < MAX_HTML_PARSE_LENGTH) textContent.push(htmlToText(content).trim());
                        } catch {
                            // As indexer.js: an HTML part that cannot be converted adds nothing.
                        }
                    }
                } else {
                    textContent.push(content.trim());
                }
            }
        }

        // The parts getMaildata detaches get an attachment id, which its cid: links are rewritten to.
        if (!isMultipart && node.body && node.body.length && (!isInlineText || (node.size ?? 0) > MAX_INLINE_TEXT)) {
            // indexer.js leftPad, which throws (a RangeError, so an empty text) past 99,999 such parts.
            idcount++;
            const attachmentId = `ATT${'0'.repeat(5 - String(idcount).length)}${idcount}`;
            // eslint-disable-next-line @typescript-eslint/no-base-to-string -- as indexer.js: whatever the parser left there, as text
            const contentId = String(header['content-id'] || '')
                .replace(/<|>/g, '')
                .trim();
            cidMap.set(contentId, attachmentId);
        }

        if (node.message) node = node.message;
        if (Array.isArray(node.childNodes)) node.childNodes.forEach(child => walk(child, alternative));
    };
    walk(tree, false);

    return textContent
        .filter(text => text.trim())
        .map(text => text.replace(/\bcid:([^\s"']+)/g, (match, cid: string) => (cidMap.has(cid) ? `attachment:${cidMap.get(cid)}` : match)))
        .join('\n')
        .trim();
}
