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
test: deps
	@test/run-tests.sh

## test-short: unit tests only, no services
test-short:
	CGO_ENABLED=1 $(GO) test -race -short -count=1 ./...

services-up: deps
	@test/services.sh up

services-down:
	@test/services.sh down

## lint: gofmt, go vet, staticcheck
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^vendor/')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@test -x $(BIN)/staticcheck || GOBIN=$(CURDIR)/$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(BIN)/staticcheck ./...
