#!/usr/bin/env bash
# Builds the release tarball that the Ansible role installs (ansible/README.md):
#   build/mailmule-<version>-linux-<arch>.tgz
# an `npm pack` of the compiled daemon with its production node_modules bundled, including
# better-sqlite3's addon (prebuilds/linux-<arch>.node: Node-API, prebuilt in the npm package for x64
# and arm64, so nothing is compiled here).
#
# node_modules is installed for THIS machine's CPU architecture: build on a machine of the Pi's
# architecture (arm64) with Node.js 24. The role checks build-info.json against the target and
# refuses a mismatch.
#
# Usage: scripts/build-tarball.sh [--reuse] [OUTDIR]
#   --reuse   skip `npm install` and the TypeScript build: pack node_modules/ and dist/ as they are
#   OUTDIR    where the tarball goes (default: build/)
# Prints the tarball's path on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."

reuse=0
if [ "${1:-}" = --reuse ]; then reuse=1; shift; fi
out=$(realpath -m "${1:-build}")

if [ "$reuse" = 0 ]; then
    # npm install rather than npm ci: see .ci/run (missing optional platform packages).
    npm install --no-audit --no-fund
    npm run build
fi
addon=node_modules/better-sqlite3/prebuilds/linux-$(node -p process.arch).node
[ -f "$addon" ] || { echo "build-tarball: $addon is missing: run npm install first" >&2; exit 1; }
[ -f dist/src/cli/main.js ] || { echo "build-tarball: dist/ is missing: run npm run build first" >&2; exit 1; }

version=$(node -p 'require("./package.json").version')
arch=$(node -p process.arch)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

mkdir -p "$stage/dist" "$out"
cp -a dist/src "$stage/dist/"
# The manual page and bash completion that `npm run build` generates (src/cli/reference.ts).
cp -a dist/share "$stage/dist/"
# Source maps and the unit tests compiled beside the code (src/**/*.test.ts) are not part of a release.
find "$stage/dist" \( -name '*.map' -o -name '*.test.js' \) -delete
cp -a README.md package-lock.json config systemd "$stage/"
cp -a node_modules "$stage/"

# The package as installed: no dev dependencies or scripts, every dependency bundled.
node -e '
const fs = require("fs");
const pkg = JSON.parse(fs.readFileSync("package.json", "utf8"));
delete pkg.devDependencies;
delete pkg.scripts;
pkg.private = true;
pkg.files = ["dist/src/", "config/", "systemd/", "README.md", "build-info.json"];
pkg.bundleDependencies = Object.keys(pkg.dependencies);
fs.writeFileSync(process.argv[1] + "/package.json", JSON.stringify(pkg, null, 2) + "\n");
fs.writeFileSync(process.argv[1] + "/build-info.json", JSON.stringify({
    name: pkg.name, version: pkg.version, platform: process.platform, arch: process.arch,
    node: process.version, modules: process.versions.modules
}, null, 2) + "\n");
' "$stage"

cd "$stage"
npm prune --omit=dev --no-audit --no-fund >/dev/null
file=$(npm pack --silent --pack-destination "$out" | tail -1)
target="$out/mailmule-$version-linux-$arch.tgz"
mv "$out/$file" "$target"
if ! grep -qx "package/$addon" <<<"$(tar tzf "$target")"; then
    echo "build-tarball: $target lacks $addon" >&2
    exit 1
fi
echo "$target"
