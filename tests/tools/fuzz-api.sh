#!/usr/bin/env bash
# Checks the real server against openapi.yaml with schemathesis: every check (no 5xx, documented
# statuses, content types, headers and response schemas), a fixed seed, and at most EXAMPLES
# test cases per operation.
#
#   tests/tools/fuzz-api.sh [EXAMPLES]     (default: $FUZZ_EXAMPLES, else 20)
#
# FUZZ_SEED changes the seed (default 1); SERVER names the server binary (default: the newer of
# target/release and target/debug); SCHEMATHESIS the schemathesis to run (default: the one
# tests/tools/ensure-python-tools.sh installs into .cache/venv).
# Exits non-zero on any failure, or if the server logged a panic.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
examples="${1:-${FUZZ_EXAMPLES:-20}}"
seed="${FUZZ_SEED:-1}"
schemathesis="${SCHEMATHESIS:-$repo/.cache/venv/bin/schemathesis}"
target="${CARGO_TARGET_DIR:-$repo/target}"

server="${SERVER:-}"
if [ -z "$server" ]; then
  for candidate in "$target/release/heare-auth-server" "$target/debug/heare-auth-server"; do
    if [ -x "$candidate" ] && { [ -z "$server" ] || [ "$candidate" -nt "$server" ]; }; then
      server="$candidate"
    fi
  done
fi
[ -x "$server" ] || { echo "fuzz-api: no server binary; build it first (cargo build --bin heare-auth-server)" >&2; exit 2; }
[ -x "$schemathesis" ] || { echo "fuzz-api: $schemathesis missing; run tests/tools/ensure-python-tools.sh" >&2; exit 2; }

work="$(mktemp -d "${TMPDIR:-/tmp}/heare-auth-fuzz-api.XXXXXX")"
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# The keys that openapi.yaml's examples name (tests/e2e/contract.rs serves the same file): valid
# and scoped, expired, disabled, and one allowed a single request an hour.
cp "$repo/tests/fixtures/spec-keys.json" "$work/keys.json"

# Where the defaults do not fit this API: a rate-limited key is valid data answered 429; and
# schemathesis puts control characters in the credential headers, whose values OpenAPI cannot
# constrain, which the HTTP layer refuses with 400 (documented for /auth). Under /auth/ it
# sends no generated `Authorization`, which would outrank the keys of the `X-API-Key` examples:
# there the valid, scoped and rate-limited keys get their 200, 403 and 429. Of schemathesis's
# warnings only missing test data is kept: most answers of an API that refuses keys are 401, 403
# and 429, which the others take for a client missing credentials or a schema too lax.
cat > "$work/schemathesis.toml" <<'EOF'
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "401", "403", "404", "429"]

[[operations]]
include-path-regex = "^/auth"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "429"]

[[operations]]
include-path = "/auth/{path}"
generation.with-security-parameters = false
EOF

# A clean environment: nothing of the caller's (S3_BUCKET, say) reaches the server.
env -i RUST_LOG=info KEYS_FILE="$work/keys.json" REFRESH_INTERVAL=0 \
  "$server" --host 127.0.0.1 --port 0 2> "$work/server.log" &
pid=$!
port=""
for _ in $(seq 200); do
  port="$(sed -n 's/.*"event":"startup".*"address":"127\.0\.0\.1:\([0-9]*\)".*/\1/p' "$work/server.log")"
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$port" ]; then
  echo "fuzz-api: the server did not start:" >&2
  cat "$work/server.log" >&2
  exit 1
fi

# The rate-limited key (the one with a rate_limit) allows one request an hour: spend it, so that
# its examples get 429.
python3 -c 'import json, sys, urllib.request as u
keys = json.load(open(sys.argv[2]))["keys"]
secret = next(k["secret"] for k in keys if "rate_limit" in k)
u.urlopen(u.Request(sys.argv[1], headers={"X-API-Key": secret}))' \
  "http://127.0.0.1:$port/auth" "$work/keys.json"

echo "fuzz-api: $server on 127.0.0.1:$port, $examples examples per operation, seed $seed" >&2
status=0
(cd "$repo" && "$schemathesis" --config-file "$work/schemathesis.toml" run openapi.yaml \
  --url "http://127.0.0.1:$port" --checks all --seed "$seed" --max-examples "$examples" \
  --generation-database none --warnings missing_test_data --no-color) || status=$?

if grep -q "panicked" "$work/server.log"; then
  echo "fuzz-api: the server panicked:" >&2
  grep -A5 "panicked" "$work/server.log" >&2
  status=1
fi
exit "$status"
