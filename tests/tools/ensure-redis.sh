#!/usr/bin/env bash
# Installs Debian's Redis (redis-server and redis-cli), and openssl for its test certificates,
# for the shared-counts tests, only when missing.
set -euo pipefail
exec bash "$(dirname "$0")/../../deploy/ensure-apt.sh" redis-server:redis-server redis-cli:redis-tools openssl:openssl
