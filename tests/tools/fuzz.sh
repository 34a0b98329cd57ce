#!/usr/bin/env bash
# Builds the fuzz targets (fuzz/) and runs each for SECONDS, from the committed seeds in
# fuzz/corpus/<target>/ and what earlier runs found (target/fuzz/corpus/<target>/; the committed
# corpus is only read). Fails on the first crash, hang or broken property, and says where the
# input is and how to replay it. FUZZ_QUICK=1 (`make test`'s short runs) builds the targets
# unoptimised and without AddressSanitizer, in about 70 s rather than 170 s on two cores (the
# targets are safe Rust, so the sanitizer mostly guards the C underneath); `make fuzz` builds
# them optimised, with it.
#   tests/tools/fuzz.sh SECONDS [TARGET...]      (no TARGET: every target)
set -euo pipefail
seconds="${1:?usage: tests/tools/fuzz.sh SECONDS [TARGET...]}"
shift
repo="$(cd "$(dirname "$0")/../.." && pwd)"
bash "$repo/tests/tools/ensure-cargo-fuzz.sh"
export PATH="$repo/.cache/tools/bin:$PATH"
cd "$repo/fuzz"
build=(-O -s address)
[ "${FUZZ_QUICK:-0}" = 1 ] && build=(--dev -s none)
cargo +nightly fuzz build "${build[@]}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo +nightly fuzz list)
work="${CARGO_TARGET_DIR:-$repo/target}/fuzz"
for target in "${targets[@]}"; do
  found="$work/corpus/$target" artifacts="$work/artifacts/$target"
  mkdir -p "$found" "$artifacts"
  dict=()
  [ -f "dicts/$target.dict" ] && dict=("-dict=dicts/$target.dict")
  echo "fuzz: $target for ${seconds}s" >&2
  before="$(ls "$artifacts" | wc -l)"
  # New inputs go to the first directory only: the committed seeds stay as they are.
  if ! cargo +nightly fuzz run "${build[@]}" "$target" "$found" "corpus/$target" -- \
      -max_total_time="$seconds" -timeout=10 -print_final_stats=0 \
      -artifact_prefix="$artifacts/" "${dict[@]}" 2>"$work/$target.log"; then
    # The panic's message, else the end of the log (a sanitizer's report, a timeout).
    sed -n '/panicked at/,/^stack backtrace/p' "$work/$target.log" | head -n 30 >&2
    grep -q 'panicked at' "$work/$target.log" || tail -n 30 "$work/$target.log" >&2
    if [ "$(ls "$artifacts" | wc -l)" -gt "$before" ]; then
      input="$(ls -t "$artifacts" | head -n 1)"
      echo "fuzz: $target failed on $artifacts/$input" >&2
      echo "  replay: (cd fuzz && cargo +nightly fuzz run ${build[*]} $target $artifacts/$input)" >&2
    fi
    echo "  log: $work/$target.log" >&2
    exit 1
  fi
  grep -E '^#[0-9]+[[:space:]]+DONE' "$work/$target.log" >&2 || tail -n 1 "$work/$target.log" >&2
done
