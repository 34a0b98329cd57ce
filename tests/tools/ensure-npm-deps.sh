#!/usr/bin/env bash
# Installs the JS test dependencies (workerd) into wasm/node_modules with `npm ci`, only when
# missing or when package-lock.json changed. Safe to run concurrently.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
dir="$repo/wasm"
stamp="$dir/node_modules/.installed-lock.json"
current() { cmp -s "$dir/package-lock.json" "$stamp"; }
current && exit 0
mkdir -p "$repo/.cache"
exec 9>"$repo/.cache/.npm-deps.lock"
flock 9
current && exit 0
echo "installing the JS test dependencies into $dir/node_modules" >&2
(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
cp "$dir/package-lock.json" "$stamp"
