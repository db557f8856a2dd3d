# swift-singlecell: the two commands a user needs are `make demo` and `make test`.
SHELL := /bin/bash
SWIFT ?= swift
DEMO_OUT ?= demo-output

.PHONY: bootstrap build demo test test-debug test-release bench fuzz clean nccl-plugin

bootstrap:
	@scripts/bootstrap

build: bootstrap
	$(SWIFT) build -c release --product singlecell

# The main job on the bundled data (see README).
demo: build
	@scripts/demo "$(DEMO_OUT)"

# The whole suite, in debug and in release (handle-lifetime bugs show only when optimised).
test: bootstrap test-debug test-release

test-debug:
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --disable-swift-testing

test-release:
	$(SWIFT) build -c release --build-tests -Xswiftc -enable-testing
	$(SWIFT) test -c release --skip-build --disable-swift-testing -Xswiftc -enable-testing

# NCCL backend for data-parallel training on CUDA (docs/distributed.md); downloads CUDA headers.
nccl-plugin: bootstrap
	plugins/nccl/build

bench: build
	@scripts/bench

# libFuzzer runs of every reader (FUZZ_SECONDS per reader, default 600; FUZZ_READERS to choose).
FUZZ_SECONDS ?= 600
fuzz: bootstrap
	FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz $(FUZZ_READERS)

clean:
	rm -rf .build .build-fuzz $(DEMO_OUT)
