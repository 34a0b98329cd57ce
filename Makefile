# heare-auth: `make run` starts the server on ./keys.json; `make test` passes every test.
# Both install what they need (idempotently) on a fresh machine.

CARGO ?= cargo
SOAK_SECONDS ?= 600
export PATH := $(CURDIR)/.cache/tools/bin:$(HOME)/.cargo/bin:$(PATH)

TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
WASM_OUT := $(TARGET_DIR)/wasm32-unknown-unknown/release-wasm/heare_auth_wasm.wasm
WASM_OPT := $(CURDIR)/.cache/tools/binaryen/node_modules/.bin/wasm-opt
# -Oz, but no inlining of functions into their only caller: it saves raw bytes and costs more
# gzipped ones (105,461 bytes with it, 102,158 without, of 105,850 unoptimised; bench/NOTES.md).
# The features are those rustc's wasm32 target uses by default (its target_features section).
WASM_OPT_FLAGS := -Oz --one-caller-inline-max-function-size 0 \
  --enable-bulk-memory --enable-bulk-memory-opt --enable-call-indirect-overlong \
  --enable-multivalue --enable-mutable-globals --enable-nontrapping-float-to-int \
  --enable-reference-types --enable-sign-ext
# The aes crate's compact AES: 0.3 KB less gzipped, and no slower to load an encrypted 10,000-key
# file (about 0.1 s either way: the base64, the HMAC and the parse take the time). And the
# registry's directory cut from the file names that panic locations carry, so that the package is
# the same bytes wherever CARGO_HOME is (and 0.1 KB smaller).
WASM_RUSTFLAGS := --cfg aes_compact \
  --remap-path-prefix=$(or $(CARGO_HOME),$(HOME)/.cargo)/registry/src/=
TRANSCRIPT := $(abspath $(TARGET_DIR)/transcript)
FUZZ_EXAMPLES ?= 1000
FUZZ_SECONDS ?= 300

# static, docker-context, test-static: the static build and the container image.
include deploy/deploy.mk

.PHONY: run test check lint fmt tools js-deps proxies wasm wasm-size wasm-target build bench bench-history soak clean
.PHONY: python-tools fuzz-api
.PHONY: fuzz test-fuzz

## Build and start the server on ./keys.json (PORT, HOST, KEYS_FILE override).
run:
	$(CARGO) run --release --bin heare-auth-server

## Build the release binaries (target/release/heare-auth, target/release/heare-auth-server).
build:
	$(CARGO) build --release --bins

## The WebAssembly verifier as an ES module package in wasm/pkg/, for edge workers and Node.
wasm: wasm-target
	CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="$(WASM_RUSTFLAGS)" \
	  $(CARGO) build -p heare-auth-wasm --target wasm32-unknown-unknown --profile release-wasm
	@bash tests/tools/ensure-wasm-bindgen.sh
	@bash tests/tools/ensure-binaryen.sh
	wasm-bindgen --target web --remove-name-section --remove-producers-section \
	  --out-dir wasm/pkg $(WASM_OUT)
	$(WASM_OPT) $(WASM_OPT_FLAGS) wasm/pkg/heare_auth_wasm_bg.wasm -o wasm/pkg/heare_auth_wasm_bg.wasm
	@printf 'wasm/pkg/heare_auth_wasm_bg.wasm: %s bytes, %s gzipped\n' \
	  "$$(wc -c < wasm/pkg/heare_auth_wasm_bg.wasm)" "$$(gzip -9c wasm/pkg/heare_auth_wasm_bg.wasm | wc -c)"

## What each part of the WebAssembly package costs, gzipped (bench/wasm_parts.py): the package
## built again with its function names kept, into TARGET_DIR/wasm-named.
wasm-size: wasm
	wasm-bindgen --target web --out-dir $(TARGET_DIR)/wasm-named $(WASM_OUT)
	$(WASM_OPT) $(WASM_OPT_FLAGS) --debuginfo $(TARGET_DIR)/wasm-named/heare_auth_wasm_bg.wasm \
	  -o $(TARGET_DIR)/wasm-named/heare_auth_wasm_bg.wasm
	python3 bench/wasm_parts.py $(TARGET_DIR)/wasm-named/heare_auth_wasm_bg.wasm

## Every test: unit tests of each crate, the end-to-end tests of the real binaries, and the
## WebAssembly package in Node and in workerd, the static server alone in its image, the
## server behind real nginx and Caddy, and a short schemathesis run against openapi.yaml.
## Everything the binaries print in the Rust tests is copied to TRANSCRIPT, and searched for
## the secrets they made and used at the end (tests/tools/check-transcript.py).
test: tools wasm js-deps proxies python-tools test-static test-fuzz
	rm -rf $(TRANSCRIPT)
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
	  HEARE_AUTH_TRANSCRIPT=$(TRANSCRIPT) $(CARGO) nextest run --workspace; \
	else \
	  HEARE_AUTH_TRANSCRIPT=$(TRANSCRIPT) $(CARGO) test --workspace --all-targets; \
	fi
	node --test wasm/tests/*.test.mjs wasm/examples/worker/test/*.test.mjs
	$(CARGO) build --bin heare-auth-server
	SERVER=$(TARGET_DIR)/debug/heare-auth-server bash tests/tools/fuzz-api.sh 5
	python3 tests/tools/check-transcript.py $(TRANSCRIPT)

## The HTTP API against openapi.yaml, at length: schemathesis with every check and a fixed seed,
## FUZZ_EXAMPLES test cases per operation (FUZZ_SEED for another seed), on the release server.
fuzz-api: python-tools
	$(CARGO) build --release --bin heare-auth-server
	SERVER=$(TARGET_DIR)/release/heare-auth-server bash tests/tools/fuzz-api.sh $(FUZZ_EXAMPLES)

## The cargo-fuzz targets of fuzz/ (keys files, encrypted files, /verify and /auth, timestamps)
## for FUZZ_SECONDS (300) each, on nightly, with AddressSanitizer; a crash fails it and is kept
## in target/fuzz/. test-fuzz: 10 s each, built unoptimised and without the sanitizer (in less
## than half the time), part of `make test`.
fuzz:
	bash tests/tools/fuzz.sh $(FUZZ_SECONDS)

test-fuzz:
	FUZZ_QUICK=1 bash tests/tools/fuzz.sh 10

## Benchmarks: every figure of BENCHMARKS.md and bench/throughput.svg, measured in one run
## (installs wrk, nginx and redis-server when missing). `make bench BENCH_ARGS=--quick` for
## short runs.
bench: wasm-size static
	@bash bench/ensure-tools.sh
	@bash tests/tools/ensure-redis.sh
	$(CARGO) build --release --bins
	$(CARGO) build --release -p heare-auth-core --example load
	python3 bench/run.py $(BENCH_ARGS)
	python3 bench/report.py

## What later features cost: the server built at earlier commits against the current one, each
## paired with nginx (bench/history.py; target/bench/history.json, in BENCHMARKS.md at the next
## bench/report.py). Builds each commit once into target/bench/history-target.
bench-history:
	@bash bench/ensure-tools.sh
	$(CARGO) build --release --bins
	python3 bench/history.py $(BENCH_ARGS)

## Soak: SOAK_SECONDS (600) of mixed traffic while the CLI changes keys in s3s-fs, and for the
## middle third 3 more servers sharing counts through Redis; every answer checked, propagation
## timed, RSS and descriptors watched, usage in Redis compared. Writes target/bench/soak.json and
## the Soak section of BENCHMARKS.md (even when a check fails, marked so); fails if any check
## does. Needs Python 3.10 or newer.
soak:
	@python3 -c 'import sys; sys.exit(sys.version_info < (3, 10) and "make soak needs Python 3.10 or newer; python3 is " + sys.version.split()[0])'
	@bash tests/tools/ensure-s3s-fs.sh
	@bash tests/tools/ensure-redis.sh
	$(CARGO) build --release --bins
	python3 bench/soak.py --seconds $(SOAK_SECONDS); status=$$?; \
	  if [ -f target/bench/soak.json ]; then python3 bench/report.py --soak || status=1; fi; \
	  exit $$status

## Formatting, lints, and the core's wasm32 build: the static half of CI.
lint: wasm-target
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) build -p heare-auth-core --target wasm32-unknown-unknown

## Exactly what CI runs (.ci/run).
check: lint test

## Test tools, installed into .cache/tools only when missing.
tools:
	@bash tests/tools/ensure-s3s-fs.sh
	@bash tests/tools/ensure-redis.sh

js-deps:
	@bash tests/tools/ensure-npm-deps.sh

## schemathesis (tests/tools/fuzz-api.sh) and prometheus-client, in .cache/venv.
python-tools:
	@bash tests/tools/ensure-python-tools.sh

## nginx (nginx-light) and Caddy from Debian, for tests/e2e/proxy.rs.
proxies:
	@bash tests/tools/ensure-proxies.sh

wasm-target:
	@bash tests/tools/ensure-wasm-target.sh

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
