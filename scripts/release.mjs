// `npm run release`: the release tarball that the Ansible role installs (ansible/README.md),
//   build/mailmule-<version>.tgz
// holding the compiled daemon (dist/src without the unit tests and source maps) and the packages it
// loads at run time, nothing else: the production dependency closure of package.json, walked on disk
// from this checkout's node_modules (installed by `npm ci`), without WildDuck's overridden
// dependencies (packages/README.md), and with only imap-core and its patches from WildDuck itself.
// better-sqlite3 keeps its prebuilt Node-API addons for linux x64 and arm64 (no compiler, no
// download), so one tarball serves a Raspberry Pi and a PC alike.
//
// The tarball is reproducible: file order, owners and times are fixed (times from the last commit),
// so the same tree gives the same bytes and the role's release directory (named by checksum) stays.
//
// Usage: node scripts/release.mjs [OUTDIR]   (npm run release builds dist/ first)
// Prints the tarball's path on its last line.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');
const out = path.resolve(process.argv[2] ?? path.join(ROOT, 'build'));
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const STUB = fs.realpathSync(path.join(ROOT, 'packages', 'wildduck-unused'));
/** The CPUs the release runs on: better-sqlite3 ships a prebuilt addon for each (linux, glibc). */
const ARCHES = ['x64', 'arm64'];
/** Needed to compile better-sqlite3 from source, never at run time (the prebuilt addon is used). */
const BUILD_ONLY = new Set(['node-addon-api']);

function fail(message) {
    console.error(`release: ${message}`);
    process.exit(1);
}

function run(command, args, options = {}) {
    const result = spawnSync(command, args, { encoding: 'utf8', ...options });
    if (result.status !== 0) fail(`${command} ${args.join(' ')} failed (${result.status}):\n${result.stderr}`);
    return result.stdout;
}

/** Node's lookup of `name` from the package in `from`: its own node_modules, then each one above it. */
function resolvePackage(from, name) {
    for (let dir = from; ; dir = path.dirname(dir)) {
        if (path.basename(dir) !== 'node_modules') {
            const candidate = path.join(dir, 'node_modules', name);
            if (fs.existsSync(path.join(candidate, 'package.json'))) return candidate;
        }
        if (dir === ROOT || dir === path.dirname(dir)) return null;
    }
}

/** The packages (directories under node_modules) that the production dependencies pull in. */
function runtimeClosure() {
    const found = new Map(); // relative path -> package.json
    const queue = [{ dir: ROOT, deps: pkg.dependencies, optional: {} }];
    while (queue.length) {
        const { dir, deps, optional } = queue.shift();
        for (const [name, isOptional] of [...Object.keys(deps ?? {}).map(n => [n, false]), ...Object.keys(optional ?? {}).map(n => [n, true])]) {
            if (BUILD_ONLY.has(name)) continue;
            const at = resolvePackage(dir, name);
            if (!at) {
                if (isOptional) continue;
                fail(`${name}, a dependency of ${path.relative(ROOT, dir) || 'mailmule'}, is not installed: run npm ci`);
            }
            if (fs.realpathSync(at) === STUB) continue; // overridden: imap-core never loads it
            const rel = path.relative(ROOT, at);
            if (found.has(rel)) continue;
            const manifest = JSON.parse(fs.readFileSync(path.join(at, 'package.json'), 'utf8'));
            found.set(rel, manifest);
            queue.push({ dir: at, deps: manifest.dependencies, optional: manifest.optionalDependencies });
        }
    }
    return found;
}

/** Files of a package that a running program never reads: docs, type declarations and TypeScript sources, source maps, tests and benchmarks. */
function unneeded(rel) {
    const base = path.basename(rel);
    if (/^licen[cs]e/i.test(base)) return false;
    return /\.(map|ts|mts|cts|md|markdown)$/i.test(base) || rel.split(path.sep).some(part => /^(test|tests|__tests__|benchmarks?|\.github)$/.test(part));
}

/** What is kept of the few packages whose tarball carries far more than they load. */
const KEEP = {
    // imap-core alone (with the patches applied by npm ci), and package.json, which it reads for its version.
    'node_modules/@zone-eu/wildduck': rel => rel === 'package.json' || /^LICENSE/.test(rel) || rel === 'imap-core/index.js' || rel.startsWith('imap-core/lib/'),
    // The JavaScript and the two Linux addons; not the SQLite sources (deps/, src/) or other systems' addons.
    'node_modules/better-sqlite3': rel => rel === 'package.json' || rel === 'LICENSE' || rel.startsWith('lib/') || ARCHES.some(arch => rel === `prebuilds/linux-${arch}.node`)
};

function copyTree(from, to, keep) {
    for (const entry of fs.readdirSync(from, { withFileTypes: true, recursive: true })) {
        const source = path.join(entry.parentPath, entry.name);
        const rel = path.relative(from, source);
        if (rel.split(path.sep).includes('node_modules')) continue; // nested packages are copied on their own
        if (!entry.isFile() || unneeded(rel) || (keep && !keep(rel.split(path.sep).join('/')))) continue;
        fs.mkdirSync(path.join(to, path.dirname(rel)), { recursive: true });
        fs.copyFileSync(source, path.join(to, rel));
    }
}

for (const required of ['dist/src/cli/main.js', 'dist/share/man/man1/mailmule.1', 'node_modules/.package-lock.json']) {
    if (!fs.existsSync(path.join(ROOT, required))) fail(`${required} is missing: run npm ci and npm run build first`);
}
for (const arch of ARCHES) {
    if (!fs.existsSync(path.join(ROOT, `node_modules/better-sqlite3/prebuilds/linux-${arch}.node`))) fail(`better-sqlite3 has no prebuilt addon for linux-${arch}`);
}

const name = `mailmule-${pkg.version}`;
const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'mailmule-release-'));
const top = path.join(stage, name);
try {
    fs.mkdirSync(top);
    copyTree(path.join(ROOT, 'dist', 'src'), path.join(top, 'dist', 'src'), rel => !rel.endsWith('.test.js'));
    // The manual page and bash completion the build generates (src/cli/reference.ts); the role installs them.
    copyTree(path.join(ROOT, 'dist', 'share'), path.join(top, 'dist', 'share'));
    for (const dir of ['config', 'systemd']) copyTree(path.join(ROOT, dir), path.join(top, dir));
    fs.copyFileSync(path.join(ROOT, 'README.md'), path.join(top, 'README.md'));

    const closure = runtimeClosure();
    for (const rel of [...closure.keys()].sort()) copyTree(path.join(ROOT, rel), path.join(top, rel), KEEP[rel]);

    // The package as installed: no scripts (patch-package already ran), no dev dependencies, no overrides.
    const shipped = {
        name: pkg.name,
        version: pkg.version,
        description: pkg.description,
        license: pkg.license,
        private: true,
        type: pkg.type,
        bin: pkg.bin,
        engines: pkg.engines,
        dependencies: pkg.dependencies
    };
    fs.writeFileSync(path.join(top, 'package.json'), JSON.stringify(shipped, null, 2) + '\n');
    const commit = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim() || null;
    const info = { name: pkg.name, version: pkg.version, commit, platform: 'linux', arches: ARCHES, nodeMajor: Number(pkg.engines.node.replace(/\D*(\d+).*/, '$1')), packages: closure.size };
    fs.writeFileSync(path.join(top, 'build-info.json'), JSON.stringify(info, null, 2) + '\n');

    // Every runtime dependency loads from the staged tree alone (not from this checkout's node_modules).
    // reflect-metadata before @peculiar/x509, as src/tls/issue.ts loads them: x509 needs the polyfill installed.
    const first = ['better-sqlite3', 'reflect-metadata'];
    const check = [...first, ...Object.keys(pkg.dependencies).filter(d => !first.includes(d) && d !== '@zone-eu/wildduck'), '@zone-eu/wildduck/imap-core'];
    run(process.execPath, ['-e', `for (const m of ${JSON.stringify(check)}) require(m); new (require('better-sqlite3'))(':memory:').close();`], { cwd: top, env: { ...process.env, NODE_PATH: '' } });

    // Reproducible: sorted, numeric root owner, every time the last commit's (or SOURCE_DATE_EPOCH).
    const epoch = process.env.SOURCE_DATE_EPOCH || spawnSync('git', ['log', '-1', '--format=%ct'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim() || '0';
    fs.mkdirSync(out, { recursive: true });
    const tarball = path.join(out, `${name}.tgz`);
    const tar = spawnSync('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', `--mtime=@${epoch}`, '--mode=u+rw,go+r,go-w', '-C', stage, '-cf', '-', name], { maxBuffer: 1 << 30 });
    if (tar.status !== 0) fail(`tar failed: ${tar.stderr}`);
    const gzip = spawnSync('gzip', ['-9', '-n'], { input: tar.stdout, maxBuffer: 1 << 30 });
    if (gzip.status !== 0) fail(`gzip failed: ${gzip.stderr}`);
    fs.writeFileSync(tarball, gzip.stdout);
    console.error(`release: ${closure.size} packages, ${(tar.stdout.length / 1e6).toFixed(1)} MB unpacked, ${(gzip.stdout.length / 1e6).toFixed(1)} MB compressed`);
    console.log(tarball);
} finally {
    fs.rmSync(stage, { recursive: true, force: true });
}
