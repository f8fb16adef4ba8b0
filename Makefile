# anx — see README.md. The two commands a new machine needs:
#   make run    build anx and serve examples/site on https://localhost:8443
#   make test   install the test peers, then run every test
.POSIX:
.PHONY: all build run test check unit e2e peers bench bench-caddy clean

GO      ?= go
BIN     := bin/anx
TOOLS   := $(CURDIR)/.tools/bin
CURL_H3 ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/anx-peers/curl-h3/bin/curl

all: build

## build: compile bin/anx
build:
	$(GO) build -trimpath -o $(BIN) ./cmd/anx

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
## asm and h1 with the Go references only (-tags purego); asm on arm64
## under qemu-aarch64 (installed by make peers)
unit:
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /e2e)
	$(GO) test -race -count=1 ./h1 -args -h1.serve=loop
	$(GO) test -race -count=1 ./h1 -args -h1.serve=goroutine
	$(GO) test -count=1 -run Alloc ./h1 ./cmd/anx
	$(GO) test -count=1 -tags purego ./asm/... ./h1
	GOARCH=arm64 $(GO) test -count=1 -exec 'qemu-aarch64 -cpu max' ./asm/...

## e2e: black-box tests of the built binary against real peers
e2e: build
	ANX_BIN=$(CURDIR)/$(BIN) ANX_CURL_H3=$(CURL_H3) PATH="$(TOOLS):$$PATH" \
	  $(GO) test -count=1 -timeout 20m ./e2e/...

## peers: install curl (with HTTP/3), h2load, h2spec, gtlsclient, Chromium, ... (needs root)
peers:
	e2e/install-peers.sh

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
