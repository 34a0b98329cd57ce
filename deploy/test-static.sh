#!/usr/bin/env bash
# The static build as the container would run it: builds the musl binaries, assembles the image
# filesystem in a temporary directory, writes 1,000 keys into its /data/keys.json (the last one
# with the real CLI, as the image's user), then starts the server under chroot with an empty
# environment and checks /verify, the binary's size and the idle memory.
#
# Limits (MB = 1,000,000 bytes): SIZE_LIMIT (server binary, default 6000000) and RSS_LIMIT
# (VmRSS of the idle server, default 10000000). Exits non-zero on any unmet check.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
size_limit="${SIZE_LIMIT:-6000000}"
rss_limit="${RSS_LIMIT:-10000000}"
keys=1000
user=65534:65534

fail() { echo "test-static: FAIL: $*" >&2; exit 1; }

bash "$root/deploy/ensure-apt.sh" curl:curl
bash "$root/deploy/static.sh"

image="$(mktemp -d "${TMPDIR:-/tmp}/heare-auth-image.XXXXXX")"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$image"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

chmod 0755 "$image"
bash "$root/deploy/image-root.sh" "$image" >/dev/null

# How to run a binary of the image: chrooted into it as its user when we may (root), otherwise
# from the host with the same empty environment and the paths rewritten into the directory.
if [ "$(id -u)" -eq 0 ] && chroot --userspec="$user" "$image" /usr/local/bin/heare-auth --version >/dev/null 2>&1; then
  chrooted=1 data=/data mode="chroot $image, user $user"
  chroot="$(command -v chroot)"  # env -i leaves no PATH to find it by
else
  chrooted=0 data="$image/data" mode="no chroot (not permitted): binaries run from $image"
fi
# run BIN ARGS...: execs BIN (a path in the image) with an empty environment but for
# "${run_env[@]}"; call it in a subshell, whose pid becomes the program's.
run_env=()
run() {
  local bin="$1"
  shift
  if [ "$chrooted" = 1 ]; then
    exec env -i "${run_env[@]}" "$chroot" --userspec="$user" "$image" "$bin" "$@"
  fi
  cd "$image/data" && exec env -i "${run_env[@]}" "$image$bin" "$@"
}
echo "test-static: running in $mode"

# 999 keys written directly (names, small metadata, random hashes), then one created by the CLI,
# whose secret the test verifies with.
{
  printf '{\n  "keys": [\n'
  head -c $(((keys - 1) * 32)) /dev/urandom | od -An -v -tx1 | tr -d ' \n' | fold -w 64 \
    | awk '{ printf "%s    {\"id\": \"key_bulk%05d\", \"secret_hash\": \"%s\", \"name\": \"Service %d\", \"created_at\": \"2026-01-01T00:00:00.000000Z\", \"metadata\": {\"team\": \"team-%d\", \"tier\": \"standard\"}}", (NR > 1 ? ",\n" : ""), NR, $1, NR, NR % 40 }'
  printf '\n  ]\n}\n'
} > "$image/data/keys.json"
chown -R "$user" "$image/data" 2>/dev/null || true

run_env=("KEYS_FILE=$data/keys.json")
created="$(run /usr/local/bin/heare-auth create --name "Static test" --metadata '{"team": "deploy"}' \
  --no-refresh --json 2>&1)" || fail "heare-auth create: $created"
key_id="$(sed -nE 's/.*"id":"(key_[^"]+)".*/\1/p' <<<"$created")"
secret="$(sed -nE 's/.*"secret":"(sec_[^"]+)".*/\1/p' <<<"$created")"
[ -n "$key_id" ] && [ -n "$secret" ] || fail "unexpected create output: $created"
run_env=()

log="$image/server.log"
(run /usr/local/bin/heare-auth-server --host 127.0.0.1 --port 0 --keys-file "$data/keys.json") \
  2>"$log" &
server_pid=$!

address=""
for _ in $(seq 100); do
  address="$(sed -nE 's/.*"event":"startup".*"address":"([^"]+)".*/\1/p' "$log" | head -1)"
  [ -n "$address" ] && break
  kill -0 "$server_pid" 2>/dev/null || fail "server exited: $(cat "$log")"
  sleep 0.1
done
[ -n "$address" ] || fail "no startup line in 10 s: $(cat "$log")"
grep -q "\"keys_loaded\":$keys," "$log" || fail "expected $keys keys loaded: $(cat "$log")"
[ "$(cat "/proc/$server_pid/comm")" = heare-auth-serv ] || fail "pid $server_pid is not the server"
[ -z "$(tr '\0' '\n' < "/proc/$server_pid/environ")" ] || fail "the server's environment is not empty"
if [ "$chrooted" = 1 ]; then
  grep -Eq "^Uid:\s+${user%%:*}\s" "/proc/$server_pid/status" || fail "the server is not running as $user"
fi

verify() {
  curl -sS -o "$image/body" -w '%{http_code}' "http://$address/verify" \
    -H 'Content-Type: application/json' -d "{\"api_key\": \"$1\"}"
}
status="$(verify "$secret")"
[ "$status" = 200 ] && grep -q "\"key_id\":\"$key_id\"" "$image/body" \
  || fail "real key: HTTP $status $(cat "$image/body")"
status="$(verify "sec_wrong")"
[ "$status" = 403 ] || fail "wrong key: HTTP $status $(cat "$image/body"), expected 403"

sleep 1
rss_kib="$(awk '/^VmRSS:/ { print $2 }' "/proc/$server_pid/status")"
rss=$((rss_kib * 1024))
size="$(stat -c %s "$image/usr/local/bin/heare-auth-server")"
printf 'test-static: server binary %s bytes (limit %s)\n' "$size" "$size_limit"
printf 'test-static: idle VmRSS with %s keys: %s kB = %s bytes (limit %s)\n' \
  "$keys" "$rss_kib" "$rss" "$rss_limit"
[ "$size" -le "$size_limit" ] || fail "server binary is $size bytes, over $size_limit"
[ "$rss" -le "$rss_limit" ] || fail "idle RSS is $rss bytes, over $rss_limit"
echo "test-static: ok (verify 200 with $key_id, wrong key 403)"
