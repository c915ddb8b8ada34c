# pg_tenancy. Settings come from pgrx.toml (through scripts/config.sh), not from here.
#
#   make demo          install what is missing, build, install, run sql/demo.sql in a throwaway cluster
#   make test          all tests: #[pg_test] units, pg_regress and isolation suites, multi-connection tests,
#                      docs examples, upgrades from every release, the Debian package, Citus; then the
#                      same on every other tested major (see test-major)
#   make test PG=pg17  the tests of one major (any target takes PG=pgNN)
#
# Other targets: setup install installcheck upgrade unit multi citus bench package fmt lint clean

SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)

# PG=pgNN (scripts/config.sh reads it) picks another major than the default;
# $(shell) does not see make's exports, so it is passed by hand there.
export PG
config        = $(shell PG=$(PG) scripts/config.sh $(1) $(2))
PG_MAJOR      := $(call config,postgres,default)
DEFAULT_MAJOR := $(shell PG= scripts/config.sh postgres default)
OTHER_MAJORS  := $(filter-out $(DEFAULT_MAJOR),$(call config,postgres,tested))
PG_CONFIG     := $(call config,pg_config,$(PG_MAJOR))
CLUSTER_ROOT  := $(call config,test,cluster_root)
TEST_USER     := $(call config,test,user)

# Another major builds with its own feature, into its own target directory:
# going back and forth between majors rebuilds nothing.
ifneq ($(PG_MAJOR),$(DEFAULT_MAJOR))
PGRX_FEATURES := --no-default-features --features $(PG_MAJOR)
export CARGO_TARGET_DIR := $(CURDIR)/target/$(PG_MAJOR)
endif

.PHONY: setup install install-debug demo test test-default test-major unit installcheck upgrade multi citus bench package fmt lint clean

## setup: apt packages, cargo-pgrx (pinned), cargo pgrx init; skips what is present
setup:
	scripts/setup.sh

## install: release build installed into the PostgreSQL of pgrx.toml
install:
	cargo pgrx install --release --pg-config $(PG_CONFIG) $(PGRX_FEATURES)

# Debug build: what the test suites run against (much faster to build).
install-debug:
	cargo pgrx install --pg-config $(PG_CONFIG) $(PGRX_FEATURES)

## demo: everything from a fresh machine to the demo's output
demo: setup install
	scripts/demo.sh

## test: every kind of test on the default major, then the others; passes as root
ifeq ($(PG),)
test: test-default $(addprefix test-,$(OTHER_MAJORS))
else ifeq ($(PG_MAJOR),$(DEFAULT_MAJOR))
test: test-default
else
test: test-major
endif

test-default: unit install-debug
	scripts/run-suites.sh releases regress isolation multi docs citus upgrade package

# Another major: every suite but the check of the released files (the same on
# every major). Citus runs on the majors of pgrx.toml [citus] (15 to 17);
# the upgrade suite updates from the releases the major can build (pgrx.toml
# [releases]: none before 0.3.0 on 16 and later); pg_partman is Debian's, for
# 15 only; the package is built from the debug build (the release build with
# fat LTO takes minutes per major, and is the default major's to test).
test-major: unit install-debug
	scripts/run-suites.sh regress isolation multi docs citus upgrade
	PROFILE=debug scripts/run-suites.sh package

test-pg%:
	$(MAKE) --no-print-directory test PG=pg$*

## unit: #[pg_test] and #[test] functions, in a cluster cargo-pgrx starts as $(TEST_USER)
unit: $(CLUSTER_ROOT)
	cargo pgrx test $(PG_MAJOR) --runas $(TEST_USER) --pgdata $(CLUSTER_ROOT)/pgrx-test$(if $(PGRX_FEATURES),-$(PG_MAJOR))

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

CLIPPY_LINTS := -D warnings -W clippy::undocumented_unsafe_blocks -W clippy::missing_safety_doc

lint:
	scripts/check-releases.sh
	cargo fmt --all --check
	cargo clippy --all-targets -- $(CLIPPY_LINTS)
	# The version branches of the other majors are code too.
	for major in $(OTHER_MAJORS); do \
	  CARGO_TARGET_DIR=target/$$major cargo clippy --all-targets --no-default-features --features $$major -- $(CLIPPY_LINTS) || exit 1; \
	done
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
