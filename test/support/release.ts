/**
 * The release tarball (`npm run release`, scripts/release.mjs) for the tests that install it:
 * built from this checkout's dist/ (npm test has just built it) and node_modules, or, when
 * MAILMULE_RELEASE_TARBALL names one, that tarball as it is.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { runProcess, describeRun } from './run-process';

export const ROOT = path.resolve(__dirname, '..', '..', '..');

/** The path of a release tarball, built into `outDir` unless MAILMULE_RELEASE_TARBALL is set. */
export async function releaseTarball(outDir: string): Promise<string> {
    const given = process.env.MAILMULE_RELEASE_TARBALL;
    if (given) {
        assert.ok(fs.existsSync(given), `MAILMULE_RELEASE_TARBALL=${given} does not exist`);
        return path.resolve(given);
    }
    const build = await runProcess(process.execPath, [path.join(ROOT, 'scripts', 'release.mjs'), outDir], { timeoutMs: 240_000, cwd: ROOT });
    assert.equal(build.code, 0, describeRun('scripts/release.mjs', build));
    const tarball = build.stdout.trim().split('\n').pop() ?? '';
    assert.ok(fs.existsSync(tarball), `scripts/release.mjs printed ${tarball}, which does not exist`);
    return tarball;
}
