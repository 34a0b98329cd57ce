#!/usr/bin/env bash
# Installs gitleaks (the secret scanner whose rules deploy/secret-scanning/gitleaks.toml adds to)
# into .cache/tools, only when missing: its release binary from GitHub, pinned and checked
# against its SHA-256. Exits non-zero when it cannot (no network, say); tests/e2e/triage.rs then
# checks the rules with the regex crate alone and says so. Safe to run concurrently.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)/.cache/tools"
version=8.18.4
case "$(uname -m)" in
  x86_64) arch=x64 sha256=ba6dbb656933921c775ee5a2d1c13a91046e7952e9d919f9bac4cec61d628e7d ;;
  aarch64) arch=arm64 sha256=bf5f7f466ebfade1296c8bd32cf7d3f592c2aa78836aa9980ffbe2cadca7a861 ;;
  *) echo "ensure-gitleaks: no pinned gitleaks release for $(uname -m)" >&2; exit 1 ;;
esac
installed() { [ -x "$root/bin/gitleaks" ] && [ "$(cat "$root/gitleaks.version" 2>/dev/null)" = "$version" ]; }
installed && exit 0
mkdir -p "$root/bin"
exec 9>"$root/.gitleaks.lock"
flock 9
installed && exit 0
url="https://github.com/gitleaks/gitleaks/releases/download/v$version/gitleaks_${version}_linux_$arch.tar.gz"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "installing gitleaks $version into $root" >&2
curl -fsSL --connect-timeout 10 --max-time 300 -o "$work/gitleaks.tar.gz" "$url"
echo "$sha256  $work/gitleaks.tar.gz" | sha256sum --check --strict --quiet
tar -xzf "$work/gitleaks.tar.gz" -C "$work" gitleaks
install -m 0755 "$work/gitleaks" "$root/bin/gitleaks"
echo "$version" > "$root/gitleaks.version"
