#!/usr/bin/env bash
# Installs binaryen (wasm-opt, which `make wasm` runs on wasm-bindgen's output) from npm into
# .cache/tools/binaryen, at the version below, only when missing. Safe to run concurrently.
#
# Not Debian's package, nor any wasm-opt already on PATH: Debian 12's binaryen 108 rewrites the
# export of wasm-bindgen's externref table as the function table, and the package then fails in
# `initSync`; and a fixed version keeps the package the same bytes on every machine.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
root="$repo/.cache/tools/binaryen"
version=132.0.0
installed() {
  [ -x "$root/node_modules/.bin/wasm-opt" ] &&
    grep -q "\"version\": \"$version\"" "$root/node_modules/binaryen/package.json" 2>/dev/null
}
installed && exit 0
command -v npm >/dev/null 2>&1 || { echo "make wasm needs npm (Node.js 20 or later) for binaryen" >&2; exit 1; }
mkdir -p "$root"
exec 9>"$root/.lock"
flock 9
installed && exit 0
echo "installing binaryen $version (wasm-opt) into $root" >&2
npm install --prefix "$root" --no-audit --no-fund --loglevel=error "binaryen@$version"
