#!/usr/bin/env bash
# Installs s3s-fs (an S3-protocol server over a directory) into .cache/tools, only when missing.
# Pinned: newer versions need a newer rustc than this project's. Safe to run concurrently.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)/.cache/tools"
version=0.14.1
installed() { [ -x "$root/bin/s3s-fs" ] && [ "$(cat "$root/s3s-fs.version" 2>/dev/null)" = "$version" ]; }
installed && exit 0
mkdir -p "$root"
exec 9>"$root/.s3s-fs.lock"
flock 9
installed && exit 0
echo "installing s3s-fs $version into $root" >&2
cargo install s3s-fs --version "$version" --features binary --locked --debug --root "$root" --quiet
echo "$version" > "$root/s3s-fs.version"
