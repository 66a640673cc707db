# clminer: see README.md. `make test` is what CI runs.
GO      ?= go
BIN     ?= bin/clminer
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
FUZZTIME ?= 4s
# Long fuzz runs for `make fuzz`.
FUZZLONG ?= 2m

export CGO_ENABLED = 1
# go-nvml's nvml.h marks dozens of NVML calls deprecated (clminer calls none
# of them) and cgo compiles them all: without this a build prints ~150 lines
# of warnings that would bury a real one.
export CGO_CFLAGS ?= -O2 -g -Wno-deprecated-declarations

# The portable build: on x86-64 glibc, bin/clminer runs on glibc 2.27 and
# later (Ubuntu 18.04, the Hive OS images), whatever glibc builds it, and
# keeps cgo for the OpenCL and NVML bindings (both dlopen their libraries).
# cmd/clminer/glibc/compat.h says how. netgo and osusergo keep the resolver
# and user lookups in Go (no libresolv, no NSS). PORTABLE=0 builds against
# the build machine's glibc as plain `go build` does.
PORTABLE ?= $(shell [ "$$(uname -sm)" = "Linux x86_64" ] && getconf GNU_LIBC_VERSION >/dev/null 2>&1 && echo 1 || echo 0)
GLIBC_MAX := 2.27
BUILD_TAGS := netgo osusergo
ifeq ($(PORTABLE),1)
BUILD_TAGS += glibc_compat
BUILD_ENV := CGO_CFLAGS='$(CGO_CFLAGS) -include $(CURDIR)/cmd/clminer/glibc/compat.h' \
	CGO_LDFLAGS='-Wl,--wrap=__libc_start_main -Wl,--no-as-needed -l:libpthread.so.0 -l:libdl.so.2 -Wl,--as-needed'
endif

.PHONY: build glibc-check test vet unit fuzz-short fuzz selftest bench demo clean hiveos hiveos-check

build:
	$(BUILD_ENV) $(GO) build -trimpath -tags '$(BUILD_TAGS)' -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/clminer

# The binary asks for no glibc symbol version newer than GLIBC_MAX and, with
# OLD_GLIBC set to an unpacked older libc6 (.ci/run fetches Debian bullseye's),
# starts and mines under that older loader.
glibc-check: build
	@PORTABLE=$(PORTABLE) GLIBC_MAX=$(GLIBC_MAX) OLD_GLIBC='$(OLD_GLIBC)' cmd/clminer/glibc/check.sh $(BIN)

# gofmt too: an unformatted file is a diff in everyone's next change.
vet:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt -w these files:"; echo "$$out"; exit 1; fi

# The OpenCL package builds about twenty kernel variants on POCL with a cold
# cache (CI's), several minutes on two cores: 20m leaves it room.
unit:
	$(GO) test -race -count=1 -timeout 20m ./...

# Every fuzz target, briefly: seconds, so that a parser regression on the
# committed corpus or a shallow new crash fails CI. A bare "context deadline
# exceeded" with no failing input is Go 1.26's coordinator racing its own
# -fuzztime (go.dev/issue/75804, fixed in 1.27): that target runs once more;
# any failing input, panic or second failure fails the build.
fuzz-short:
	@$(GO) list -f '{{.ImportPath}} {{.Dir}}' ./... | while read pkg dir; do \
	  for t in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/func //'); do \
	    echo "fuzz $$pkg $$t ($(FUZZTIME))"; \
	    for try in 1 2; do \
	      out=$$($(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg 2>&1) && { echo "$$out" | tail -1; break; }; \
	      if [ $$try = 1 ] && echo "$$out" | grep -q 'context deadline exceeded' && ! echo "$$out" | grep -q -e 'Failing input written' -e 'panic:'; then \
	        echo "  go1.26's fuzz coordinator raced its own -fuzztime deadline (go.dev/issue/75804; no input failed): once more"; \
	        continue; \
	      fi; \
	      echo "$$out"; exit 1; \
	    done; \
	  done; \
	done

fuzz:
	$(MAKE) fuzz-short FUZZTIME=$(FUZZLONG)

# The vectors built into the binary (work/vectors/builtin): nothing outside
# the checkout. --kernel-versions 4: OpenCL devices also prove the
# multi-version kernel, finding each real block at its version's index (CPU
# runtimes default to 1).
selftest: build
	$(BIN) selftest --device all --kernel-versions 4

test: vet unit fuzz-short selftest hiveos-check glibc-check

# Hive OS custom-miner archive: clminer/ with the binary and the h-*.sh
# scripts of deploy/hiveos (see its README). Hive's installer takes the
# archive name's last "-"-separated field as the version and the rest as the
# miner's name, so the version (git describe: v1.0.0-3-gabc1234-dirty) is
# written with "_" for "-" and anything else outside [A-Za-z0-9._].
HIVE_OUT := bin/hiveos
hive_version = $(shell printf '%s' '$(1)' | tr -c 'A-Za-z0-9._' '_')
HIVE_VERSION := $(call hive_version,$(VERSION))
hiveos: build
	rm -rf $(HIVE_OUT) && mkdir -p $(HIVE_OUT)/clminer
	cp $(BIN) $(HIVE_OUT)/clminer/clminer
	cp deploy/hiveos/h-config.sh deploy/hiveos/h-run.sh deploy/hiveos/h-stats.sh deploy/hiveos/README.md $(HIVE_OUT)/clminer/
	sed 's/@VERSION@/$(HIVE_VERSION)/' deploy/hiveos/h-manifest.conf > $(HIVE_OUT)/clminer/h-manifest.conf
	tar -C $(HIVE_OUT) -czf $(HIVE_OUT)/clminer-$(HIVE_VERSION).tar.gz clminer
	@echo "$(HIVE_OUT)/clminer-$(HIVE_VERSION).tar.gz"

# The archive holds what Hive runs, executable, with the version filled in,
# and Hive's installer reads its name as miner "clminer" (checked also for a
# version git describe writes with dashes). The scripts themselves are
# tested as Hive runs them in cmd/clminer/hiveos_test.go.
hiveos-check: hiveos
	@for f in clminer h-config.sh h-run.sh h-stats.sh; do \
	  tar -tvzf $(HIVE_OUT)/clminer-$(HIVE_VERSION).tar.gz clminer/$$f | grep -q '^-rwx' || { echo "hiveos: clminer/$$f missing or not executable"; exit 1; }; \
	done
	@tar -xOzf $(HIVE_OUT)/clminer-$(HIVE_VERSION).tar.gz clminer/h-manifest.conf | grep -qx 'CUSTOM_VERSION=$(HIVE_VERSION)' || { echo "hiveos: version not in h-manifest.conf"; exit 1; }
	@for archive in $(HIVE_OUT)/clminer-$(HIVE_VERSION).tar.gz clminer-$(call hive_version,v1.2.3-4-gabcdef0-dirty).tar.gz; do \
	  base=$$(basename -s .tar.gz "$$archive"); ver=$$(echo "$$base" | awk -F- '{ print $$NF }'); name=$$(echo "$$base" | sed "s/-$$ver\$$//"); \
	  [ "$$name" = clminer ] || { echo "hiveos: Hive's installer reads $$base as miner \"$$name\", not clminer"; exit 1; }; \
	done
	@echo "hiveos archive ok"

bench: build
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./gpu/cpu/
	$(GO) test -run '^$$' -bench HostCost -benchtime 10x -count 3 ./work/miner/
	$(BIN) bench --device all

demo: build
	$(BIN) demo

clean:
	rm -rf bin
