# heare-auth: `make run` starts the server on ./keys.json; `make test` passes every test.
# Both install what they need (idempotently) on a fresh machine.

CARGO ?= cargo
export PATH := $(CURDIR)/.cache/tools/bin:$(HOME)/.cargo/bin:$(PATH)

.PHONY: run test check lint fmt tools wasm-target build clean

## Build and start the server on ./keys.json (PORT, HOST, KEYS_FILE override).
run:
	$(CARGO) run --release --bin heare-auth-server

## Build the release binaries (target/release/heare-auth, target/release/heare-auth-server).
build:
	$(CARGO) build --release --bins

## Every test: unit tests of each crate and the end-to-end tests of the real binaries.
test: tools
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
	  $(CARGO) nextest run --workspace; \
	else \
	  $(CARGO) test --workspace --all-targets; \
	fi

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

wasm-target:
	@bash tests/tools/ensure-wasm-target.sh

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
