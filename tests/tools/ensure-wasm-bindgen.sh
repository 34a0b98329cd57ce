#!/usr/bin/env bash
# Installs wasm-bindgen-cli into .cache/tools at exactly the wasm-bindgen version in Cargo.lock
# (the CLI and the library must match), only when missing. Safe to run concurrently.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
root="$repo/.cache/tools"
version="$(awk '$0 == "name = \"wasm-bindgen\"" { getline; gsub(/"/, "", $3); print $3; exit }' "$repo/Cargo.lock")"
[ -n "$version" ] || { echo "wasm-bindgen is not in Cargo.lock" >&2; exit 1; }
installed() { [ "$("$root/bin/wasm-bindgen" --version 2>/dev/null)" = "wasm-bindgen $version" ]; }
installed && exit 0
mkdir -p "$root"
exec 9>"$root/.wasm-bindgen.lock"
flock 9
installed && exit 0
echo "installing wasm-bindgen-cli $version into $root" >&2
# Its own lock file first; if a crate it pins was yanked since, let cargo resolve afresh.
cargo install wasm-bindgen-cli --version "$version" --locked --debug --root "$root" --quiet ||
  cargo install wasm-bindgen-cli --version "$version" --debug --root "$root" --quiet
