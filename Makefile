# tqflow: make help lists the targets.
#
# Every Go target works across the whole workspace through the `work`
# package pattern (Go 1.25+), never a per-module loop.

GO        ?= go
BIN       ?= bin
TESTFLAGS ?=
BENCHTIME ?= 1x
GOLANGCI_LINT ?= golangci-lint

.DEFAULT_GOAL := help

help: ## show the targets
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z0-9_-]+:.*?##/ {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
.PHONY: help

build: ## build the tqflow binary and each service's into bin/
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/ ./services/tqflow ./services/fetcher ./services/enricher ./services/writer ./services/exporter ./services/signature-loader
.PHONY: build

test: ## vet, every test of the workspace with the race detector, then the volume tests without it
	$(GO) vet work
	$(GO) test -race -shuffle=on -count=1 -timeout=9m $(TESTFLAGS) work
	@# Volume tests whose figures mean nothing under the race detector skip
	@# there; they run here, once, without it.
	$(GO) test -count=1 -timeout=5m -run '^TestMillion$$' $(TESTFLAGS) ./pkg/sim/tqsim/
.PHONY: test

demo: ## the CTR, MISP and ET jobs against the sandbox on an embedded NATS server, with a summary
	$(GO) run ./services/tqflow demo
.PHONY: demo

bench: ## pipeline, parser and exporter benchmarks, with their ratios to the reference
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -timeout 60m ./test/bench ./pkg/rules ./services/exporter/...
.PHONY: bench

lint: ## gofmt, go vet, golangci-lint (.golangci.yml) in every module, JetStream internals only in pkg/bus
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet work
	@# golangci-lint reads one module at a time; the modules are go.work's.
	@set -e; for m in $$($(GO) list -m -f '{{.Dir}}'); do (cd $$m && $(GOLANGCI_LINT) run ./...); done
	@# forbidigo sees identifiers, not strings: JetStream's internal subjects
	@# and stream names are spelt only in pkg/bus.
	@hits=$$(git grep -nE '"\$$(KV|JS|O)\.|"(KV|OBJ)_[A-Z]|KV-Operation' -- '*.go' ':!pkg/bus/**'); \
	if [ -n "$$hits" ]; then echo "JetStream internals outside pkg/bus (use pkg/bus's helpers):"; echo "$$hits"; exit 1; fi
.PHONY: lint

fmt: ## gofmt every Go file
	gofmt -w $$(git ls-files '*.go')
.PHONY: fmt

clean: ## remove build output and demo data
	rm -rf $(BIN) .data
.PHONY: clean

include Makefile.compose
