#!/usr/bin/env bash
# Installs what `make fuzz` and `make test-fuzz` need, only what is missing: the nightly
# toolchain (cargo-fuzz builds with sanitizers, which need it) and cargo-fuzz into .cache/tools,
# pinned. Safe to run concurrently.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)/.cache/tools"
version=0.13.2
# RUSTUP_AUTO_INSTALL=0 keeps `cargo +nightly` from installing it on first use: do it here.
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "installing the nightly Rust toolchain" >&2
  rustup toolchain install nightly --profile minimal
fi
installed() { [ "$("$root/bin/cargo-fuzz" --version 2>/dev/null)" = "cargo-fuzz $version" ]; }
installed && exit 0
mkdir -p "$root"
exec 9>"$root/.cargo-fuzz.lock"
flock 9
installed && exit 0
echo "installing cargo-fuzz $version into $root" >&2
cargo install cargo-fuzz --version "$version" --locked --debug --root "$root" --quiet
