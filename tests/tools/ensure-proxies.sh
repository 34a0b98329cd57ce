#!/usr/bin/env bash
# Installs nginx (nginx-light, which has auth_request) and Caddy from Debian for the proxy tests
# (tests/e2e/proxy.rs), only when missing. Safe to run concurrently.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
# nginx lives in /usr/sbin, which a non-root PATH may lack.
export PATH="$PATH:/usr/sbin:/sbin"
installed() { command -v nginx >/dev/null 2>&1 && command -v caddy >/dev/null 2>&1; }
installed && exit 0
mkdir -p "$repo/.cache"
exec 9>"$repo/.cache/.proxies.lock"
flock 9
installed && exit 0
bash "$repo/deploy/ensure-apt.sh" nginx:nginx-light caddy:caddy
