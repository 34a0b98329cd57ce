#!/usr/bin/env bash
# Installs what the static x86_64-unknown-linux-musl build needs, only when missing: the Rust
# target; musl-gcc (Debian's musl-tools) for the C of aws-lc-sys, which rustls uses for S3 over
# TLS; and `file`, which deploy/static.sh uses to check that the binaries are static.
set -euo pipefail
target=x86_64-unknown-linux-musl
if ! rustup target list --installed | grep -qx "$target"; then
  rustup target add "$target"
fi
bash "$(dirname "$0")/ensure-apt.sh" musl-gcc:musl-tools file:file
