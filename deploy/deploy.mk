# Static builds and the container image, included by the main Makefile (deploy/README.md).
# Uses $(CARGO); leaves the including Makefile's default goal alone wherever it is included.

deploy_default_goal := $(.DEFAULT_GOAL)
IMAGE_ROOT ?= target/image-root

.PHONY: static docker-context test-static

## Both binaries, fully static (x86_64-unknown-linux-musl), in target/static/; prints their sizes.
static:
	@CARGO="$(CARGO)" bash deploy/static.sh

## The container image's filesystem in target/image-root/, listed entry by entry with the total.
docker-context: static
	@bash deploy/image-root.sh $(IMAGE_ROOT)

## The static server chrooted into the image with an empty environment and 1,000 keys: /verify
## answers 200 and 403, the binary is under 6 MB and the idle RSS under 10 MB.
test-static:
	@CARGO="$(CARGO)" bash deploy/test-static.sh

.DEFAULT_GOAL := $(deploy_default_goal)
