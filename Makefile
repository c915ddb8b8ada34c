# pg_tenancy. Settings come from pgrx.toml (through scripts/config.sh), not from here.
#
#   make demo          install what is missing, build, install, run sql/demo.sql in a throwaway cluster
#   make test          all tests: #[pg_test] units, pg_regress and isolation suites, multi-connection tests,
#                      docs examples, upgrades from every release, the Debian package
#
# Other targets: setup install installcheck upgrade unit multi citus bench package fmt lint clean

SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)

config        = $(shell scripts/config.sh $(1) $(2))
PG_MAJOR     := $(call config,postgres,default)
PG_CONFIG    := $(call config,pg_config,$(PG_MAJOR))
CLUSTER_ROOT := $(call config,test,cluster_root)
TEST_USER    := $(call config,test,user)

.PHONY: setup install install-debug demo test unit installcheck upgrade multi citus bench package fmt lint clean

## setup: apt packages, cargo-pgrx (pinned), cargo pgrx init; skips what is present
setup:
	scripts/setup.sh

## install: release build installed into the PostgreSQL of pgrx.toml
install:
	cargo pgrx install --release --pg-config $(PG_CONFIG)

# Debug build: what the test suites run against (much faster to build).
install-debug:
	cargo pgrx install --pg-config $(PG_CONFIG)

## demo: everything from a fresh machine to the demo's output
demo: setup install
	scripts/demo.sh

## test: every kind of test; passes as root
test: unit install-debug
	scripts/run-suites.sh releases regress isolation multi docs citus upgrade package

## unit: #[pg_test] and #[test] functions, in a cluster cargo-pgrx starts as $(TEST_USER)
unit: $(CLUSTER_ROOT)
	cargo pgrx test $(PG_MAJOR) --runas $(TEST_USER) --pgdata $(CLUSTER_ROOT)/pgrx-test

## installcheck: pg_regress, isolation and docs suites against the installed extension
installcheck: install-debug
	scripts/run-suites.sh releases regress isolation docs

## upgrade: every release updated to this version against a fresh install (docs/upgrading.md)
upgrade: install-debug
	scripts/run-suites.sh releases upgrade

## multi: multi-connection tests only
multi: install-debug
	scripts/run-suites.sh multi

## citus: the Citus suite only (a coordinator and two workers; skipped without Citus)
citus: install-debug
	scripts/run-suites.sh citus

## bench: release build, benchmarks side by side with the anchors, ratios printed
bench: install
	scripts/bench.sh

## package: a Debian package under target/package (apt-get install ./target/package/*.deb)
package:
	scripts/package-deb.sh

fmt:
	cargo fmt --all
	cargo fmt --manifest-path tests/multi/Cargo.toml
	cargo fmt --manifest-path bench/Cargo.toml

lint:
	scripts/check-releases.sh
	cargo fmt --all --check
	cargo clippy --all-targets -- -D warnings -W clippy::undocumented_unsafe_blocks -W clippy::missing_safety_doc
	for crate in tests/multi bench; do \
	  cargo fmt --manifest-path $$crate/Cargo.toml --check && \
	  CARGO_TARGET_DIR=target/client cargo clippy --manifest-path $$crate/Cargo.toml --all-targets -- -D warnings || exit 1; \
	done

$(CLUSTER_ROOT):
	mkdir -p $@
	chown $(TEST_USER) $@

## clean: build output and any throwaway cluster left behind
clean:
	-for d in $(CLUSTER_ROOT)/*/; do [ -f "$$d/data/postmaster.pid" ] && scripts/cluster.sh stop "$$(basename "$$d")"; done
	rm -rf $(CLUSTER_ROOT)
	cargo clean
