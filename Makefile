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

.PHONY: all build demo test test-start unit r-base e2e generate check-generate lint bench bench-smoke bench-soak tools clean

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/surge

## demo: a three-region test on the embedded default (no external services).
demo: build
	$(BIN) demo

## test: everything CI runs: lint, generated code, unit + integration tests
## with -race, and the system tests against the built binary. Each skipped
## test is printed with its reason, and the total of skips ends the output.
## Under CI (CI=true, as .ci/run sets) a test whose service, tool or
## privilege is missing fails instead of skipping (internal/ciskip).
test: test-start lint check-generate check-dashboards unit fuzz e2e bench-smoke
	@n=$$(wc -l < $(SKIPS)); echo "make test: $$n skipped"; cat $(SKIPS)

# Go tests run through scripts/testsum: go test's usual output, plus one
# line per skipped test and a count at the end; skips are collected in
# $(SKIPS) for make test's total.
SKIPS   := .cache/test-skips
TESTSUM := $(TOOLS)/testsum -skips $(CURDIR)/$(SKIPS)
$(TOOLS)/testsum: $(wildcard scripts/testsum/*.go)
	$(GO) build -o $@ ./scripts/testsum

test-start:
	@mkdir -p .cache && rm -f $(SKIPS) && touch $(SKIPS)

# The client's raw-syscall writer (agent/httpclient/rawsys_linux.go) is
# built only without -race, so its package runs once more without it.
unit: $(TOOLS)/testsum r-base
	@set -o pipefail; $(GO) test -json -race -count=1 -timeout 20m ./... | $(TESTSUM)
	@set -o pipefail; $(GO) test -json -count=1 -timeout 5m ./agent/httpclient/... | $(TESTSUM)

## r-base: R (Debian's r-base-core), the judge's reference (controller/judge
# TestAgreesWithR compares with R's wilcox.test).
r-base:
	@command -v Rscript >/dev/null || { echo "installing r-base-core (the judge's reference)"; \
	  export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq --no-install-recommends r-base-core >/dev/null; }

## e2e: system tests with the built binary as separate processes.
# It starts a real InfluxDB 1.8 (scripts/influxdb.sh), Prometheus
# (scripts/prometheus.sh) and toxiproxy (scripts/toxiproxy.sh) and stops
# them on exit; a service that does not start fails the target, naming it
# (its tests would otherwise skip).
e2e: build $(TOOLS)/kustomize $(TOOLS)/actionlint $(TOOLS)/testsum
	@set -eo pipefail; trap 'scripts/influxdb.sh stop; scripts/prometheus.sh stop; scripts/toxiproxy.sh stop; scripts/regions.sh down >/dev/null 2>&1 || true' EXIT; \
	  env=$$(scripts/influxdb.sh start) && [[ $$env == *SURGE_INFLUX_URL=* ]] \
	    || { echo "e2e: InfluxDB did not start (scripts/influxdb.sh start failed, see above): the InfluxDB system tests cannot run" >&2; exit 1; }; \
	  eval "$$(sed 's/^/export /' <<<"$$env")"; \
	  env=$$(scripts/prometheus.sh start) && [[ $$env == *SURGE_PROM_URL=* ]] \
	    || { echo "e2e: Prometheus did not start (scripts/prometheus.sh start failed, see above): the Prometheus system tests cannot run" >&2; exit 1; }; \
	  eval "$$(sed 's/^/export /' <<<"$$env")"; \
	  env=$$(scripts/toxiproxy.sh start) && [[ $$env == *SURGE_TOXIPROXY_URL=* ]] \
	    || { echo "e2e: toxiproxy did not start (scripts/toxiproxy.sh start failed, see above): the toxiproxy system tests cannot run" >&2; exit 1; }; \
	  eval "$$(sed 's/^/export /' <<<"$$env")"; \
	  SURGE_BIN=$(CURDIR)/$(BIN) KUSTOMIZE=$(CURDIR)/$(TOOLS)/kustomize ACTIONLINT=$(CURDIR)/$(TOOLS)/actionlint $(GO) test -json -race -count=1 -tags e2e -timeout 20m ./cmd/surge/e2e/... | $(TESTSUM)

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
	$(GO) vet -tags e2e ./cmd/surge/e2e/...
	staticcheck ./...
	staticcheck -tags e2e ./cmd/surge/e2e/...
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

# actionlint for the example CI workflow (examples/ci; TestCIValidateScript).
ACTIONLINT_VERSION := v1.7.12
$(TOOLS)/actionlint:
	GOBIN=$(CURDIR)/$(TOOLS) $(GO) install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)

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
