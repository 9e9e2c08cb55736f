# Sluice — the two commands are `make run` and `make test`.
#
# Every target first installs what is missing (Debian packages, quietly,
# only when absent), so a fresh Debian 12 machine needs nothing else.
#
#   make run     release build, then `sluice run wordcount` on its embedded text
#   make test    debug build with ASan+UBSan (warnings are errors), all tests;
#                then the release build's data-volume suite (10 M keys)
#   make tsan    ThreadSanitizer build, the concurrency (stress) tests
#   make bench   optimised build, the perf/ benchmarks (tables + JSON)
#   make build   release build only
#   make format  clang-format the C sources
#   make clean   remove build/

SHELL := /bin/bash
BUILD ?= build
MESON ?= meson
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Debian 12 package names. gcc's sanitizer runtimes come with gcc.
DEB_PKGS := gcc make meson ninja-build pkg-config cmake python3 \
	libhwloc-dev hwloc liburing-dev librdkafka-dev libmimalloc-dev \
	libcunit1-dev libdpdk-dev kcat iproute2 clang-format

REL := $(BUILD)/release
DBG := $(BUILD)/debug
TSN := $(BUILD)/tsan

.PHONY: all deps build run test tsan bench format clean

all: build

deps:
	@missing=""; \
	for p in $(DEB_PKGS); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' \
			|| missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "make: installing missing packages:$$missing"; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends $$missing >/dev/null || \
			{ echo "make: apt-get install failed for:$$missing" >&2; exit 1; }; \
	fi

# setup DIR ARGS: configure DIR once; reconfigure is meson's job after that.
define setup
	@if [ ! -f $(1)/build.ninja ]; then \
		$(MESON) setup $(1) $(2) >$(1).setup.log 2>&1 || \
			{ cat $(1).setup.log; rm -rf $(1); exit 1; }; \
	fi
endef

build: deps
	@mkdir -p $(BUILD)
	$(call setup,$(REL),-Dbuildtype=release -Dwerror=true)
	@ninja -C $(REL) >/dev/null || ninja -C $(REL)

run: build
	./$(REL)/jobs/sluice run wordcount

test: deps
	@mkdir -p $(BUILD)
	$(call setup,$(DBG),-Dbuildtype=debug -Db_sanitize=address,undefined -Dwerror=true)
	@ninja -C $(DBG) >/dev/null || ninja -C $(DBG)
	@$(MESON) test -C $(DBG) --print-errorlogs --num-processes 2; rc=$$?; \
		python3 tests/summary.py $(DBG)/meson-logs/testlog.json; exit $$rc
	@# Data-volume tests (10 M keys) need an optimised build without sanitizers.
	$(call setup,$(REL),-Dbuildtype=release -Dwerror=true)
	@ninja -C $(REL) >/dev/null || ninja -C $(REL)
	@$(MESON) test -C $(REL) --suite release --print-errorlogs; rc=$$?; \
		python3 tests/summary.py $(REL)/meson-logs/testlog.json; exit $$rc

tsan: deps
	@mkdir -p $(BUILD)
	$(call setup,$(TSN),-Dbuildtype=debug -Db_sanitize=thread -Dwerror=true)
	@ninja -C $(TSN) >/dev/null || ninja -C $(TSN)
	@$(MESON) test -C $(TSN) --suite stress --print-errorlogs --setup tsan; rc=$$?; \
		python3 tests/summary.py $(TSN)/meson-logs/testlog-tsan.json; exit $$rc

bench: build
	@$(MESON) test -C $(REL) --benchmark --verbose
	@echo "JSON results: $(REL)/perf/*.json"

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)
