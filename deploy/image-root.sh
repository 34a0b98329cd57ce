#!/usr/bin/env bash
# Assembles the filesystem of the container image in DIR (replacing it) and lists every entry:
# the two static binaries, the CA bundle, and an empty /data for the keys file, owned by the
# image's user so that the CLI can write there. The Dockerfile's final stage copies exactly this.
#
# Usage: image-root.sh DIR [BIN_DIR] [CA_BUNDLE]
#   BIN_DIR    the static binaries (default target/static/x86_64-unknown-linux-musl/release)
#   CA_BUNDLE  default /etc/ssl/certs/ca-certificates.crt
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${1:?usage: image-root.sh DIR [BIN_DIR] [CA_BUNDLE]}"
bin_dir="${2:-$root/target/static/x86_64-unknown-linux-musl/release}"
ca="${3:-/etc/ssl/certs/ca-certificates.crt}"
user=65534:65534
umask 022

for f in "$bin_dir/heare-auth-server" "$bin_dir/heare-auth" "$ca"; do
  [ -f "$f" ] || { echo "image-root: missing $f (run deploy/static.sh first)" >&2; exit 1; }
done
rm -rf "$dir"
mkdir -p "$dir"
install -D -m 0755 "$bin_dir/heare-auth-server" "$dir/usr/local/bin/heare-auth-server"
install -D -m 0755 "$bin_dir/heare-auth" "$dir/usr/local/bin/heare-auth"
install -D -m 0644 "$ca" "$dir/etc/ssl/certs/ca-certificates.crt"
install -d -m 0755 "$dir/data"
if [ "$(id -u)" -eq 0 ]; then
  chown "$user" "$dir/data"
else
  echo "image-root: not root, so /data is not owned by $user here (it is in the image)" >&2
fi

# One line per entry: mode, owner, bytes, path inside the image; then the files' total.
(cd "$dir" && find . -mindepth 1 -printf '%M %U:%G %y %s /%P\n') | sort -k5 \
  | awk '{ printf "%s %-11s %10s  %s\n", $1, $2, ($3 == "d" ? "-" : $4), $5 }'
total=$(find "$dir" -type f -printf '%s\n' | awk '{ t += $1 } END { print t + 0 }')
printf 'total: %s bytes in %s files\n' "$total" "$(find "$dir" -type f | wc -l)"
