# tqflow: make help lists the targets.
#
# Every Go target works across the whole workspace through the `work`
# package pattern (Go 1.25+), never a per-module loop.

GO        ?= go
BIN       ?= bin
TESTFLAGS ?=
BENCHTIME ?= 1x
GOLANGCI_LINT ?= golangci-lint
# The tests that skip under -race and run in make test's second step.
HEAVY_TESTS ?= ^(TestMillion|TestLoaderAgreesWithOracle|TestSixtyThousandOneIndicators|TestETRealRulesets)$$
HEAVY_PKGS  ?= ./pkg/sim/tqsim/ ./services/signature-loader/service/ ./services/exporter/service/ ./test/e2e/

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
	@# Volume and real-corpus tests skip under the race detector (they take
	@# minutes there and find nothing the smaller tests do not); they run
	@# here, once, without it.
	$(GO) test -count=1 -timeout=8m -run '$(HEAVY_TESTS)' $(TESTFLAGS) $(HEAVY_PKGS)
.PHONY: test

demo: ## the CTR, MISP and ET jobs against the sandbox on an embedded NATS server, with a summary
	$(GO) run ./services/tqflow demo
.PHONY: demo

bench: ## pipeline, parser and exporter benchmarks, with their ratios to the reference
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -timeout 60m ./test/bench ./pkg/rules ./services/exporter/...
.PHONY: bench

lint: tidy-check ## gofmt, go vet, golangci-lint (.golangci.yml) in every module, JetStream internals only in pkg/bus, tidy modules
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet work
	@# golangci-lint reads one module at a time; the modules are go.work's.
	@set -e; for m in $$($(GO) list -m -f '{{.Dir}}'); do (cd $$m && $(GOLANGCI_LINT) run ./...); done
	@# forbidigo sees identifiers, not strings: JetStream's internal subjects
	@# and stream names are spelt only in pkg/bus.
	@hits=$$(git grep -nE '"\$$(KV|JS|O)\.|"(KV|OBJ)_[A-Z]|KV-Operation' -- '*.go' ':!pkg/bus/**'); \
	if [ -n "$$hits" ]; then echo "JetStream internals outside pkg/bus (use pkg/bus's helpers):"; echo "$$hits"; exit 1; fi
.PHONY: lint

tidy-check: ## fail if go mod tidy would change a module's go.mod or go.sum, each tidied on its own
	@# GOWORK=off: each module must build alone, its siblings reached through
	@# its replace directives, so that its go.mod names what it imports.
	@set -e; for m in $$($(GO) list -m -f '{{.Dir}}'); do \
		(cd $$m && GOWORK=off $(GO) mod tidy -diff) || { echo "go mod tidy would change $$m (run GOWORK=off go mod tidy there)"; exit 1; }; done
.PHONY: tidy-check

fmt: ## gofmt every Go file
	gofmt -w $$(git ls-files '*.go')
.PHONY: fmt

# Installing and packaging: the tqflow binary, the seed connectors' names
# as links to it, the systemd unit and the env file template.
PREFIX    ?= /usr/local
DESTDIR   ?=
UNITDIR   ?= /etc/systemd/system
CONFDIR   ?= /etc/tqflow
SEEDS     := tq-conn-ctr-enrichment tq-misp-export tq-conn-emerging-threats tq-emergingthreats
VERSION   ?= 0.1.0~git$(shell git rev-parse --short HEAD 2>/dev/null || echo 0)
ARCH      ?= $(shell $(GO) env GOARCH)
NFPM      ?= $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2
DIST      ?= dist

install: ## install tqflow, the seeds' names as links, the unit and (if absent) /etc/tqflow/tqflow.env
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/ ./services/tqflow
	install -D -m 0755 $(BIN)/tqflow $(DESTDIR)$(PREFIX)/bin/tqflow
	for s in $(SEEDS); do ln -sf tqflow $(DESTDIR)$(PREFIX)/bin/$$s; done
	install -d -m 0755 $(DESTDIR)$(UNITDIR)
	sed 's|/usr/bin/tqflow|$(PREFIX)/bin/tqflow|' deploy/systemd/tqflow.service > $(DESTDIR)$(UNITDIR)/tqflow.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/tqflow.service
	install -d -m 0750 $(DESTDIR)$(CONFDIR)
	test -e $(DESTDIR)$(CONFDIR)/tqflow.env || install -m 0640 deploy/package/tqflow.env $(DESTDIR)$(CONFDIR)/tqflow.env
	install -D -m 0644 deploy/package/sysusers.conf $(DESTDIR)/usr/lib/sysusers.d/tqflow.conf
	@# On this host (no DESTDIR): the tqflow user, and its group on the configuration.
	if [ -z "$(DESTDIR)" ] && command -v systemd-sysusers >/dev/null; then \
		systemd-sysusers /usr/lib/sysusers.d/tqflow.conf && chgrp tqflow $(CONFDIR) $(CONFDIR)/tqflow.env; fi
	@echo "next: tqflow init -c $(CONFDIR), then systemctl daemon-reload && systemctl enable --now tqflow"
.PHONY: install

package: ## build the .deb and .rpm (binary, seed links, unit, env template) into dist/ with nfpm
	@mkdir -p bin/package $(DIST)
	CGO_ENABLED=0 GOOS=linux GOARCH=$(ARCH) $(GO) build -trimpath -ldflags="-s -w" -o bin/package/ ./services/tqflow
	for p in deb rpm; do VERSION='$(VERSION)' ARCH='$(ARCH)' $(NFPM) package --config deploy/package/nfpm.yaml --packager $$p --target $(DIST)/ || exit 1; done
.PHONY: package

test-package: package ## install the .deb with dpkg --root, then under systemd in a container; upgrade, purge (root, dpkg, Docker, debootstrap)
	TQFLOW_DEB=$(abspath $(DIST)/tqflow_$(VERSION)_$(ARCH).deb) $(GO) test -count=1 -timeout=15m -v ./test/pkginstall
.PHONY: test-package

clean: ## remove build output and demo data
	rm -rf $(BIN) $(DIST) .data
.PHONY: clean

include Makefile.compose
