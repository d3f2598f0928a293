# foyer — build, test, benchmark. `make test` is the one test command
# (README, .ci/run): it installs what it needs, then runs every check and
# the whole suite with -race inside a loopback-only network namespace.

GO      ?= go
PKGS    := ./...
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
# staticcheck, pinned: `make check` runs it after go vet.
STATICCHECK := v0.8.2

.PHONY: all build deps check test bench fuzz clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/ ./cmd/...

deps:
	scripts/deps.sh

check: deps
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK) $(PKGS)
	@cp go.mod /tmp/foyer.go.mod && cp go.sum /tmp/foyer.go.sum && $(GO) mod tidy && \
	  if ! cmp -s go.mod /tmp/foyer.go.mod || ! cmp -s go.sum /tmp/foyer.go.sum; then \
	    cp /tmp/foyer.go.mod go.mod; cp /tmp/foyer.go.sum go.sum; echo "go.mod/go.sum are not tidy"; exit 1; fi

# FOYER_REQUIRE_TOOLS=1: a test that needs redis-server (or another tool
# deps.sh installs) fails instead of skipping when it is missing.
test: check
	$(GO) test -race -count=1 -run xxxNONExxx $(PKGS) >/dev/null   # compile everything with network
	scripts/vulncheck.sh   # with network: it needs the vulnerability database
	FOYER_REQUIRE_TOOLS=1 scripts/netns.sh $(GO) test -race -count=1 -timeout 30m $(PKGS)
	@echo "--- a short run of every fuzz target"
	$(MAKE) --no-print-directory fuzz
	@echo "--- alert rules, scrape config and dashboard queries (promtool)"
	scripts/promtool-check.sh
	@echo "--- the signalling suite again, as three nodes sharing Redis"
	FOYER_REQUIRE_TOOLS=1 FOYER_TEST_NODES=3 scripts/netns.sh $(GO) test -race -count=1 -timeout 30m ./signaling/

# A short run of every fuzz target (FUZZTIME each; `make fuzz FUZZTIME=10m`
# for a longer one). New crashers are written under testdata/fuzz and kept
# as regression seeds, which every `go test` then runs. The default is a
# count, not a duration: Go 1.26's fuzz coordinator can report a spurious
# "context deadline exceeded" when a -fuzztime duration ends while a worker
# is busy (golang/go#75804, fixed in Go 1.27); a count has no deadline.
FUZZTIME ?= 10000x
FUZZ_TARGETS := ./signaling/:FuzzDecodeInbound ./signaling/:FuzzFrameCall ./directory/:FuzzParseProvision ./turn/:FuzzParseUsername ./api/:FuzzParseCSV ./media/:FuzzValidateSDP
fuzz:
	@for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; fn=$${t##*:}; echo "--- fuzz $$fn ($$pkg, $(FUZZTIME))"; \
	  scripts/netns.sh $(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done

bench: deps
	scripts/netns.sh $(GO) test -run '^$$' -bench . -benchmem -benchtime 2s $(PKGS)

clean:
	rm -rf bin
