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

.PHONY: build test vet unit fuzz-short fuzz selftest bench demo clean hiveos hiveos-check

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/clminer

vet:
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 -timeout 10m ./...

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

# --kernel-versions 4: OpenCL devices also prove the multi-version kernel,
# finding each real block at its version's index (CPU runtimes default to 1).
selftest: build
	$(BIN) selftest --device all --kernel-versions 4 --vectors ../shared/vectors

test: vet unit fuzz-short selftest hiveos-check

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
