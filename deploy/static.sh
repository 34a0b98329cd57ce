#!/usr/bin/env bash
# Builds heare-auth-server and heare-auth as fully static x86_64-unknown-linux-musl release
# binaries, checks that they are static, and prints their sizes.
#
# Output: $STATIC_TARGET_DIR/x86_64-unknown-linux-musl/release/ (default target/static/...), a
# target directory of its own so that this build neither waits for nor invalidates the host's.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
target=x86_64-unknown-linux-musl
export CARGO_TARGET_DIR="${STATIC_TARGET_DIR:-$root/target/static}"
out="$CARGO_TARGET_DIR/$target/release"

bash "$root/deploy/ensure-musl.sh"
# aws-lc-sys compiles C: with musl-gcc it links against musl's libc, not the host's glibc.
export CC_x86_64_unknown_linux_musl="${CC_x86_64_unknown_linux_musl:-musl-gcc}"
cd "$root"
"${CARGO:-cargo}" build --release --locked --target "$target" \
  -p heare-auth-server -p heare-auth --bins

status=0
for bin in heare-auth-server heare-auth; do
  path="$out/$bin"
  description="$(file -b "$path")"
  libraries="$(ldd "$path" 2>&1 || true)"
  # `file`: "static-pie linked" (or "statically linked"); ldd: no interpreter, no libraries.
  if ! grep -Eq 'static-pie linked|statically linked' <<<"$description" \
    || ! grep -Eq 'statically linked|not a dynamic executable' <<<"$libraries"; then
    printf 'FAIL: %s is not static:\n%s\n%s\n' "$bin" "$description" "$libraries" >&2
    status=1
  fi
  printf '%-18s %9s bytes  %s\n' "$bin" "$(stat -c %s "$path")" "$description"
done
exit "$status"
