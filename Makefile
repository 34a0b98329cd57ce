# heare-auth: `make run` starts the server on ./keys.json; `make test` passes every test.
# Both install what they need (idempotently) on a fresh machine.

CARGO ?= cargo
export PATH := $(CURDIR)/.cache/tools/bin:$(HOME)/.cargo/bin:$(PATH)

WASM_OUT := target/wasm32-unknown-unknown/release-wasm/heare_auth_wasm.wasm

# static, docker-context, test-static: the static build and the container image.
include deploy/deploy.mk

.PHONY: run test check lint fmt tools js-deps proxies wasm wasm-target build bench clean

## Build and start the server on ./keys.json (PORT, HOST, KEYS_FILE override).
run:
	$(CARGO) run --release --bin heare-auth-server

## Build the release binaries (target/release/heare-auth, target/release/heare-auth-server).
build:
	$(CARGO) build --release --bins

## The WebAssembly verifier as an ES module package in wasm/pkg/, for edge workers and Node.
wasm: wasm-target
	$(CARGO) build -p heare-auth-wasm --target wasm32-unknown-unknown --profile release-wasm
	@bash tests/tools/ensure-wasm-bindgen.sh
	wasm-bindgen --target web --remove-name-section --remove-producers-section \
	  --out-dir wasm/pkg $(WASM_OUT)
	@printf 'wasm/pkg/heare_auth_wasm_bg.wasm: %s bytes, %s gzipped\n' \
	  "$$(wc -c < wasm/pkg/heare_auth_wasm_bg.wasm)" "$$(gzip -9c wasm/pkg/heare_auth_wasm_bg.wasm | wc -c)"

## Every test: unit tests of each crate, the end-to-end tests of the real binaries, and the
## WebAssembly package in Node and in workerd, the static server alone in its image, and the
## server behind real nginx and Caddy.
test: tools wasm js-deps proxies test-static
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
	  $(CARGO) nextest run --workspace; \
	else \
	  $(CARGO) test --workspace --all-targets; \
	fi
	node --test wasm/tests/*.test.mjs wasm/examples/worker/test/*.test.mjs

## Benchmarks: every figure of BENCHMARKS.md and bench/throughput.svg, measured in one run
## (installs wrk and nginx when missing). `make bench BENCH_ARGS=--quick` for short runs.
bench: wasm static
	@bash bench/ensure-tools.sh
	$(CARGO) build --release --bins
	$(CARGO) build --release -p heare-auth-core --example load
	python3 bench/run.py $(BENCH_ARGS)
	python3 bench/report.py

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

js-deps:
	@bash tests/tools/ensure-npm-deps.sh

## nginx (nginx-light) and Caddy from Debian, for tests/e2e/proxy.rs.
proxies:
	@bash tests/tools/ensure-proxies.sh

wasm-target:
	@bash tests/tools/ensure-wasm-target.sh

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
