# Tally: `make run` sets up and starts the daemon; `make test` sets up and runs every test.
SWIFT ?= swift
# tzdata: the IANA time zones usage-over-time queries (--tz) read from /usr/share/zoneinfo.
# python3, python3-venv, curl: the OpenAPI check (openapi-spec-validator and schemathesis from PyPI).
# prometheus: promtool, which lints GET /metrics (scripts/metrics-check.sh).
# chromium, chromium-driver: the dashboard's check in a real browser (scripts/browser-check.sh, with selenium from PyPI).
# libnats-dev: the NATS C client the `NATS` module wraps (JetStream, for the cluster mode); nats-server: its tests run real servers.
APT_PACKAGES := liblmdb-dev libzstd-dev libnats-dev nats-server tzdata python3 python3-venv curl prometheus chromium chromium-driver
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# The libFuzzer targets of Fuzz/ (docs/FUZZING.md) and how long `make fuzz` runs each.
FUZZ_TARGETS := FuzzEventLine FuzzJSONScanner FuzzDecimal FuzzConfig FuzzSegment FuzzBackupManifest
FUZZ_SECONDS ?= 60
# Extra `swift build` flags for the fuzz package, e.g. FUZZ_BUILD_FLAGS="-j 1" on a small machine.
FUZZ_BUILD_FLAGS ?=

.PHONY: run test build deps bench bench-matrix bench-micro bench-cluster bench-cluster-start cluster-demo openapi-check metrics-check browser-check fuzz fuzz-build clean

## Install the C libraries (LMDB, zstd, NATS), nats-server and the time zone data with apt-get when they are missing.
deps:
	@missing=""; for package in $(APT_PACKAGES); do \
	  dpkg -s $$package >/dev/null 2>&1 || missing="$$missing $$package"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

build: deps
	$(SWIFT) build -c release --product tally

## Build in release and run the daemon on ./data with its socket at ./tally.sock.
run: build
	TALLY_PORTAL_SECRET="$${TALLY_PORTAL_SECRET:-tally-demo-portal-secret}" .build/release/tally serve --config config/tally.yaml --store data --socket tally.sock

## Run the whole test suite (unit, integration against the real daemon, crash recovery).
test: deps
	$(SWIFT) build --build-tests
	# One test at a time: the integration tests block threads while real daemons run, and on a
	# 2-core machine parallel tests would starve the async ones (alert delivery) of the cooperative pool.
	$(SWIFT) test --skip-build --no-parallel
	# The HTTP API against its OpenAPI document: validated, then exercised live by schemathesis.
	scripts/openapi-check.sh .build/debug/tally .build/pytools
	# GET /metrics linted by promtool (HELP and TYPE on every family, every family from the start).
	scripts/metrics-check.sh .build/debug/tally
	# The dashboard in headless Chromium: sign-in, its numbers against tally estimate, charts, forms, CSRF, portal, 390 px.
	scripts/browser-check.sh .build/debug/tally .build/pytools .build/screenshots
	# Every fuzz target for 30 s from its committed corpus: a crash fails the run.
	$(MAKE) fuzz FUZZ_SECONDS=30

## The ingest benchmark at 1M and 50M remembered identities, the archive and usage-over-time queries (see BENCHMARKS.md).
bench: build
	.build/release/tally bench ingest --events 1000000 --identities-prefill 1000000
	.build/release/tally bench ingest --events 1000000 --identities-prefill 50000000
	.build/release/tally bench archive --events 5000000
	.build/release/tally bench archive --events 2000000 --during-ingest
	.build/release/tally bench query --customers 10000
	.build/release/tally bench dashboard --customers 100000

## Three NATS servers (JetStream, R=3) and three tally nodes on this machine; Ctrl-C stops them (README, Cluster mode).
cluster-demo: build
	scripts/cluster-demo.sh .build/release/tally

## Cluster mode against single-node, side by side; the fail-over time; 1, 2 and 3 nodes pinned to cores (BENCHMARKS.md).
bench-cluster: build
	scripts/bench-cluster.sh .build/release/tally

## A node with an empty store taking 4 partitions of 1M events: from their JetStream snapshots, and replaying their logs.
bench-cluster-start: build
	scripts/bench-cluster-start.sh .build/release/tally

## The ingest matrix (customers 1k-1M x identities 1M/50M, random order), half load, 16 connections,
## and docs/ingest-vs-customers.svg from it (see BENCHMARKS.md). QUICK=1 for a few-minute version.
bench-matrix: build
	scripts/bench-matrix.sh $(if $(QUICK),--quick,)

## Micro-benchmarks (package-benchmark): parsing one line, one group commit of 8192 events.
bench-micro: deps
	cd Benchmarks && $(SWIFT) package benchmark

## Only the OpenAPI check (needs a debug build: swift build).
openapi-check: deps
	$(SWIFT) build --product tally
	scripts/openapi-check.sh .build/debug/tally .build/pytools

## Only the dashboard's browser check; its screenshots go to docs/ (the README's).
browser-check: deps
	$(SWIFT) build --product tally
	scripts/browser-check.sh .build/debug/tally .build/pytools docs

## Only the /metrics lint (needs a debug build: swift build).
metrics-check: deps
	$(SWIFT) build --product tally
	scripts/metrics-check.sh .build/debug/tally

## Build the libFuzzer targets (Fuzz/, a nested package): every Swift module with libFuzzer's
## coverage and AddressSanitizer; the toolchain brings libFuzzer, nothing to install.
fuzz-build: deps
	# SwiftPM keeps its plan of the path dependency's targets: without this, a file added to Sources/
	# is missed by an incremental fuzz build (a clean clone is not affected).
	rm -f Fuzz/.build/debug.yaml
	$(SWIFT) build --package-path Fuzz $(FUZZ_BUILD_FLAGS) -Xswiftc -sanitize=fuzzer,address

## Run each fuzz target for FUZZ_SECONDS (default 60), one at a time; fails if any crashes.
## New inputs go to .build/fuzz/corpus, crash inputs to .build/fuzz/artifacts (docs/FUZZING.md).
fuzz: fuzz-build
	scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

clean:
	rm -rf .build Benchmarks/.build Fuzz/.build
