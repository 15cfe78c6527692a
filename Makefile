# Edge gateway. `make run` runs the gateway on its embedded default config;
# `make test` runs every test against real Mosquitto, Pulsar and Cassandra.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
BIN := bin
STATICCHECK_VERSION := v0.8.2
export CGO_ENABLED ?= 0

.PHONY: all build run test test-short test-integration services-up services-down lint deps bench

all: build

## build: gateway, gatewayctl, sink and simulate for this machine into bin/
build:
	@mkdir -p $(BIN)
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

## deps: Debian packages and Go modules the tests need (cached after the first run)
deps:
	@test/deps.sh

## run: local Pulsar + the gateway on configs/dev.yaml (embedded broker) + the simulator; Ctrl-C stops all
run: deps build
	@test/run-dev.sh

## test: every test, starting the services it needs (once per run, shared across packages)
test: deps lint
	@test/run-tests.sh

## test-short: unit tests only, no services
test-short:
	CGO_ENABLED=1 $(GO) test -race -short -count=1 ./...

services-up: deps
	@test/services.sh up

services-down:
	@test/services.sh down

FUZZTIME ?= 5m
.PHONY: fuzz
## fuzz: every Go fuzz target for FUZZTIME each (default 5m; make test runs them for 10s)
fuzz:
	@FUZZTIME='$(FUZZTIME)' test/fuzz.sh

## lint: gofmt, go vet, staticcheck
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^vendor/')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@test -x $(BIN)/staticcheck || GOBIN=$(CURDIR)/$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(BIN)/staticcheck ./...

## bench: every benchmark against real Mosquitto, Pulsar and Cassandra (started if down), writes BENCHMARKS.md (~10 min)
bench: deps
	$(GO) run ./test/bench -out BENCHMARKS.md

# Firmware and Debian packages (packaging/README.md). Override on the command
# line, e.g. make firmware FIRMWARE_TARGETS=linux/arm64 FIRMWARE_TAGS=nogpio,noembedded DIST=dist/small
DIST ?= dist
FIRMWARE_TARGETS ?= linux/arm64 linux/arm/v7 linux/arm/v6 linux/amd64
FIRMWARE_CMDS ?= gateway gatewayctl
FIRMWARE_TAGS ?=
FIRMWARE_LDFLAGS = -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -buildid=
NFPM_VERSION ?= v2.45.2
FIRMWARE_ENV = GO='$(GO)' DIST='$(DIST)' FIRMWARE_TARGETS='$(FIRMWARE_TARGETS)' FIRMWARE_CMDS='$(FIRMWARE_CMDS)' \
	FIRMWARE_TAGS='$(FIRMWARE_TAGS)' FIRMWARE_LDFLAGS='$(FIRMWARE_LDFLAGS)' VERSION='$(VERSION)' COMMIT='$(COMMIT)'

.PHONY: firmware packages

## firmware: static, reproducible gateway and gatewayctl for every board into $(DIST)/<target>/, plus $(DIST)/SHA256SUMS
firmware:
	@$(FIRMWARE_ENV) packaging/firmware.sh

## packages: Debian packages edgegw_<version>_<arch>.deb (nfpm $(NFPM_VERSION)) into $(DIST)/ from the firmware
packages: firmware
	@$(FIRMWARE_ENV) NFPM_VERSION='$(NFPM_VERSION)' packaging/packages.sh
