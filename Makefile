# Strata: `make run` and `make test` are the only set-up commands a fresh machine needs.
SHELL := /bin/bash
SWIFT ?= $(shell command -v swift 2>/dev/null || echo /opt/swift/usr/bin/swift)
CONFIG ?= config.toml
SUDO := $(shell [ "$$(id -u)" = "0" ] || echo sudo)

# System packages: RocksDB (C API + pkg-config file) and Lua 5.1 with its cjson and bit modules to build; the reference servers and real clients to test
# and benchmark against.
RUN_PACKAGES := librocksdb-dev zlib1g-dev libsnappy-dev libzstd-dev pkg-config liblua5.1-0-dev lua-cjson-dev lua-bitop-dev
TEST_PACKAGES := $(RUN_PACKAGES) etcd-client etcd-server curl golang-go golang-etcd-server-dev redis-server redis-tools \
	python3-venv tcl
BENCH_PACKAGES := $(TEST_PACKAGES)

# Release builds link the Swift runtime and Foundation statically: one self-contained binary (only RocksDB and the C
# and C++ runtimes are shared libraries), which also keeps ~5 MiB of the runtime's shared-library pages out of RSS.
# Every function in its own section, so the link can put those a server runs together (Package.swift,
# scripts/strata.order).
RELEASE := -c release --static-swift-stdlib -Xswiftc -Xfrontend -Xswiftc -function-sections
FORMATTED := Sources Storage Tests Bench Protocols/Etcd/Server Protocols/Redis Protocols/Iceberg Package.swift

.PHONY: pyclients redis-suite run test build build-release bench deps-run deps-test deps-bench clean format lint clientv3check clientv3bench symbol-order nulletcd

run: deps-run build-release
	.build/release/strata serve --config $(CONFIG)

# The bar CI holds: formatting (swift-format, strict) and every import a declared dependency (`make lint`: a
# front-end cannot reach the RocksDB handle through the core's dependencies), warnings as errors (Package.swift),
# then every test.
test: deps-test clientv3check pyclients lint
	$(SWIFT) build --build-tests
	STRATA_BINARY=$(CURDIR)/.build/debug/strata CLIENTV3CHECK_BINARY=$(CURDIR)/.build/clientv3check \
		$(SWIFT) test --skip-build

# Go's clientv3 test driver, built offline in GOPATH mode against the etcd 3.4 client sources (and their
# dependencies) that Debian's golang-etcd-server-dev installs under /usr/share/gocode.
clientv3check:
	GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE=$(CURDIR)/.build/gocache GOFLAGS= \
		go build -o .build/clientv3check ./Tests/ClientV3Check

# redis-py 5.x (RESP2) and 8.x (RESP3) in venvs under .build, for the Redis client tests.
pyclients: deps-test
	@scripts/python-clients.sh

# Redis 7.0's own Tcl suite against a fresh Strata per unit (not part of `make test`: the suite is not ours to ship):
#   make redis-suite SUITE=<the tests tree of a Redis 7.0.15 source checkout: runtest + tests/> [UNITS="unit/expire …"]
redis-suite: deps-test
	@test -n "$(SUITE)" || { echo "usage: make redis-suite SUITE=<path to a Redis 7.0 tests tree>"; exit 2; }
	$(SWIFT) build --product strata
	scripts/redis-suite.sh $(SUITE) $(UNITS)

build:
	$(SWIFT) build

build-release:
	$(SWIFT) build $(RELEASE) --product strata

bench: deps-bench build-release clientv3bench nulletcd
	$(SWIFT) build $(RELEASE) --product StrataBench
	$(SWIFT) build $(RELEASE) --product StrataEtcdBench
	$(SWIFT) build $(RELEASE) --product StrataIcebergBench
	.build/release/StrataBench 100000
	python3 Bench/startup.py --strata .build/release/strata --runs 20
	python3 Bench/etcd_compare.py --write docs/benchmarks.md
	python3 Bench/etcd_compare.py --client clientv3 --write docs/benchmarks.md
	python3 Bench/redis_compare.py --strata .build/release/strata --write docs/benchmarks.md
	python3 Bench/iceberg_bench.py --strata .build/release/strata --bench .build/release/StrataIcebergBench \
		--write docs/benchmarks.md

# The clientv3-driven load generator of the etcd comparison (Bench/ClientV3Bench), built like clientv3check.
clientv3bench:
	GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE=$(CURDIR)/.build/gocache GOFLAGS= \
		go build -o .build/clientv3bench ./Bench/ClientV3Bench

# An etcd that stores nothing (Bench/NullEtcd): what `etcdctl check perf` can generate on this machine at best.
nulletcd: deps-test
	GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE=$(CURDIR)/.build/gocache GOFLAGS= \
		go build -o .build/nulletcd ./Bench/NullEtcd

# Re-records scripts/strata.order (the release link's function order) with valgrind; see the script.
symbol-order: deps-bench build-release
	$(SWIFT) build $(RELEASE) --product StrataEtcdBench
	scripts/symbol-order.sh .build/release/strata .build/release/StrataEtcdBench

# Installs whichever of the listed Debian packages are missing (apt-get update only when something is).
deps-run:
	@scripts/apt-install.sh $(RUN_PACKAGES)
deps-test:
	@scripts/apt-install.sh $(TEST_PACKAGES)
deps-bench:
	@scripts/apt-install.sh $(BENCH_PACKAGES)

format:
	$(SWIFT) format --in-place --recursive $(FORMATTED)

lint:
	$(SWIFT) format lint --strict --recursive $(FORMATTED)
	python3 scripts/check-imports.py

clean:
	rm -rf .build
