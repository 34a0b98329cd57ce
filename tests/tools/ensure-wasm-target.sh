#!/usr/bin/env bash
# Installs the wasm32-unknown-unknown target for the active toolchain, only when missing.
set -euo pipefail
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi
