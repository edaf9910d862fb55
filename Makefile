# surge — build, test and generate. Tools are built from pinned versions into
# .cache/bin (git-ignored) the first time they are needed.

SHELL := /bin/bash
export PATH := $(CURDIR)/.cache/bin:$(PATH)
GO ?= go

BUF_VERSION          := v1.75.0
PROTOC_GEN_GO        := v1.36.12
PROTOC_GEN_GO_GRPC   := v1.5.1
STATICCHECK_VERSION  := v0.8.2

TOOLS := .cache/bin
BIN   := bin/surge
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: all build demo test unit e2e generate check-generate lint bench bench-smoke bench-soak tools clean

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/surge

## demo: a three-region test on the embedded default (no external services).
demo: build
	$(BIN) demo

## test: everything CI runs: lint, generated code, unit + integration tests
## with -race, and the system tests against the built binary.
test: lint check-generate check-dashboards unit fuzz e2e bench-smoke

unit:
	$(GO) test -race -count=1 -timeout 20m ./...

## e2e: system tests with the built binary as separate processes.
# It starts a real InfluxDB 1.8 (scripts/influxdb.sh) and toxiproxy
# (scripts/toxiproxy.sh) and stops them on exit.
e2e: build $(TOOLS)/kustomize
	@set -e; trap 'scripts/influxdb.sh stop; scripts/toxiproxy.sh stop; scripts/regions.sh down >/dev/null 2>&1 || true' EXIT; \
	  eval "$$(scripts/influxdb.sh start | sed 's/^/export /')"; \
	  eval "$$(scripts/toxiproxy.sh start | sed 's/^/export /')"; \
	  SURGE_BIN=$(CURDIR)/$(BIN) KUSTOMIZE=$(CURDIR)/$(TOOLS)/kustomize $(GO) test -race -count=1 -tags e2e -timeout 20m ./cmd/surge/e2e/...

$(TOOLS)/buf:
	GOBIN=$(CURDIR)/$(TOOLS) $(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
$(TOOLS)/protoc-gen-go:
	GOBIN=$(CURDIR)/$(TOOLS) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO)
$(TOOLS)/protoc-gen-go-grpc:
	GOBIN=$(CURDIR)/$(TOOLS) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC)
$(TOOLS)/staticcheck:
	GOBIN=$(CURDIR)/$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

tools: $(TOOLS)/buf $(TOOLS)/protoc-gen-go $(TOOLS)/protoc-gen-go-grpc $(TOOLS)/staticcheck

generate: $(TOOLS)/buf $(TOOLS)/protoc-gen-go $(TOOLS)/protoc-gen-go-grpc
	buf lint
	buf generate

## check-generate: the committed gen/ matches the proto files.
check-generate: generate
	@git diff --exit-code -- gen/ || { echo "gen/ is stale: run make generate and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- gen/)" || { git status --porcelain -- gen/; echo "gen/ has untracked files: run make generate and commit"; exit 1; }

lint: $(TOOLS)/staticcheck $(TOOLS)/buf
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^gen/')); \
	  test -z "$$unformatted" || { echo "gofmt needed: $$unformatted"; exit 1; }
	$(GO) vet ./...
	staticcheck ./...
	buf lint
	scripts/buf-breaking.sh

bench:
	scripts/bench.sh

bench-smoke:
	scripts/bench.sh --smoke

## bench-soak: goal 7's soak alone (a controller, an agent and a target at
# a constant rate for BENCH_SOAK, 10m by default); records it in
# docs/bench-soak.json, which `make bench` reports until the next soak.
# `BENCH_SOAK=10m make bench` runs it inside a full bench instead.
bench-soak:
	scripts/bench.sh --soak-only $${BENCH_SOAK:-10m}

clean:
	rm -rf bin

## dashboards: generate the Grafana dashboards from Go (deploy/grafana/gen).
.PHONY: dashboards check-dashboards kustomize
dashboards:
	$(GO) run ./deploy/grafana/gen -out deploy/grafana/dashboards

## check-dashboards: the committed dashboards are exactly what the generator
## writes (regenerated into a temp dir and compared file by file).
check-dashboards:
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	  $(GO) run ./deploy/grafana/gen -out "$$tmp" && \
	  diff -r "$$tmp" deploy/grafana/dashboards || { echo "deploy/grafana/dashboards is stale: run make dashboards and commit"; exit 1; }

# kustomize for the deploy tests (v5.7.1: its api v0.20.1 builds with Go 1.26).
KUSTOMIZE_VERSION := v5.7.1
$(TOOLS)/kustomize:
	GOBIN=$(CURDIR)/$(TOOLS) $(GO) install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)
kustomize: $(TOOLS)/kustomize

## fuzz: each fuzz target for its count of executions, one at a time (go
## test -fuzz takes one target per run). Counts, not a duration: Go 1.26's
## coordinator can fail a duration-bounded run with a bare "context deadline
## exceeded" when a worker is busy as the time runs out (golang/go#75804,
## fixed in Go 1.27); a count has no deadline. -timeout still ends a hung
## target (with its stacks). The partition system test's namespaces are
## removed by e2e's exit trap (scripts/regions.sh down), even on failure.
.PHONY: fuzz
FUZZ_TARGETS := ./hist:FuzzMergeProto:200000x ./plan:FuzzParse:150000x
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; rest=$${t#*:}; name=$${rest%%:*}; n=$${rest#*:}; \
	  echo "fuzz $$pkg $$name for $$n"; \
	  $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $$n -timeout 10m $$pkg; \
	done
