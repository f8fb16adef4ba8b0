# anx — see README.md. The two commands a new machine needs:
#   make run    build anx and serve examples/site on https://localhost:8443
#   make test   install the test peers, then run every test
.POSIX:
.PHONY: all build build-race testrun run test check unit e2e stress unit-stress e2e-stress fuzz peers bench bench-caddy clean

GO      ?= go
BIN     := bin/anx
BIN_RACE := bin/anx-race
TOOLS   := $(CURDIR)/.tools/bin
CURL_H3 ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/anx-peers/curl-h3/bin/curl
# TESTRUN runs `go test -json ARGS` (internal/testrun): it prints failures
# and one line per package, lists every skip and fails on a skip that
# internal/testrun/skips.txt does not allow.
TESTRUN := bin/testrun $(TESTRUNFLAGS) --
# The packages whose unit tests also run on arm64 under qemu-aarch64.
ARM64_PKGS := ./asm/... ./core/... ./h1 ./h2 ./h3 ./tls/... ./certs
# make stress: how many times each unit test runs, how many e2e runs, how
# long each fuzz target fuzzes.
STRESS_COUNT ?= 20
STRESS_E2E   ?= 5
FUZZTIME     ?= 1m

all: build

## build: compile bin/anx
build:
	$(GO) build -trimpath -o $(BIN) ./cmd/anx

## build-race: compile bin/anx-race, with the race detector (what make e2e tests)
build-race:
	$(GO) build -race -trimpath -o $(BIN_RACE) ./cmd/anx

## testrun: compile bin/testrun, which runs the test suites (internal/testrun)
testrun:
	$(GO) build -o bin/testrun ./internal/testrun

## run: build and serve examples/site on the built-in defaults
run: build
	./$(BIN) run --root examples/site

## test: install the peers, then check formatting, vet, unit tests (-race) and e2e tests
test: peers check unit e2e

## check: gofmt, go vet (also of the arm64 and purego builds: asmdecl), go mod tidy
check:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	GOARCH=arm64 $(GO) vet ./asm/... ./h1
	$(GO) vet -tags purego ./asm/... ./h1
	$(GO) mod tidy -diff

## unit: every package's tests with the race detector (e2e excluded); h1's
## tests once more in each other way of serving (see h1/helpers_test.go);
## the allocation tests without -race in every way of serving; asm and h1
## with the Go references only (-tags purego); ARM64_PKGS on arm64 under
## qemu-aarch64 (installed and registered with binfmt_misc by make peers)
unit: testrun
	$(TESTRUN) -race -count=1 $$($(GO) list ./... | grep -v /e2e)
	$(TESTRUN) -race -count=1 ./h1 -args -h1.serve=loop
	$(TESTRUN) -race -count=1 ./h1 -args -h1.serve=goroutine
	$(TESTRUN) -count=1 -run Alloc ./h1 ./cmd/anx ./core/proxy ./core/chunked
	$(TESTRUN) -count=1 -run Alloc ./h1 -args -h1.serve=loop
	$(TESTRUN) -count=1 -run Alloc ./h1 -args -h1.serve=goroutine
	$(TESTRUN) -count=1 -tags purego ./asm/... ./h1
	GOARCH=arm64 $(TESTRUN) -count=1 -timeout 30m -exec 'qemu-aarch64 -cpu max' $(ARM64_PKGS)

## e2e: black-box tests of anx built with -race (bin/anx-race) against real peers
e2e: build-race testrun
	ANX_BIN=$(CURDIR)/$(BIN_RACE) ANX_CURL_H3=$(CURL_H3) PATH="$(TOOLS):$$PATH" \
	  $(TESTRUN) -count=1 -timeout 30m ./e2e/...

## stress: hunt flakes, with one core kept busy (not part of make test): every
## unit test STRESS_COUNT times under -race, the e2e suite STRESS_E2E times in a
## row, then each fuzz target for FUZZTIME
stress: build-race testrun
	$(MAKE) unit-stress e2e-stress fuzz TESTRUNFLAGS=-busy

unit-stress:
	$(TESTRUN) -race -count=$(STRESS_COUNT) -timeout 60m $$($(GO) list ./... | grep -v /e2e)

e2e-stress:
	i=0; while [ $$i -lt $(STRESS_E2E) ]; do i=$$((i + 1)); echo "e2e run $$i of $(STRESS_E2E)"; \
	  $(MAKE) e2e || exit 1; done

## fuzz: run each fuzz target for FUZZTIME (part of make stress)
fuzz:
	for pkg in $$($(GO) list ./...); do \
	  for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$target for $(FUZZTIME)"; \
	    $(GO) test -run='^$$' -fuzz="^$$target$$" -fuzztime=$(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

## peers: install curl (with HTTP/3), h2load, h2spec, gtlsclient, Chromium, ... (needs root),
## and nginx, e2e's plain upstream of the proxy tests (with bench/install.sh's services kept stopped)
peers:
	e2e/install-peers.sh
	e2e/bench/install.sh

## bench: anx beside nginx, h2o (and Caddy if `make bench-caddy` ran) on loopback; writes e2e/bench/out/
bench: build
	e2e/bench/install.sh
	PATH="$(TOOLS):$$PATH" $(GO) run ./e2e/bench -anx $(BIN) $(BENCHFLAGS)

## bench-caddy: go install Caddy v2.11.9 into .tools/bin for make bench (large download)
bench-caddy:
	mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) GOFLAGS= $(GO) install github.com/caddyserver/caddy/v2/cmd/caddy@v2.11.9

## clean: remove bin/ and .tools/
clean:
	rm -rf bin .tools
