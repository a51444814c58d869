# hookgate: the two commands of the quick start are `make run` and `make test`.

GO       ?= go
PLUGINS  := filter template howxm-nps smartsupp-chat threshold
WASM     := $(PLUGINS:%=plugins/bin/%.wasm)
CONFIG   ?= config.toml
SINK     ?= 127.0.0.1:9000
TESTLOG  ?= test.log

.PHONY: run test build plugins tools check bench clean

# run: build the gateway and the stock plugins, start the demo capture sink
# (it prints every delivery it receives as a JSON line), then serve config.toml.
# Ctrl-C stops both.
run: build plugins
	@./hookgate sink --listen $(SINK) --body '{"status":true,"notification":"Action processed correctly"}' & sink=$$!; \
	trap 'kill $$sink 2>/dev/null' EXIT INT TERM; \
	./hookgate serve --config $(CONFIG)

# test: every test in the repository, with the race detector. The verbose
# log goes to $(TESTLOG) (the terminal gets one line per package, and the
# failing tests' output); then the log is searched for every secret the
# tests use: none may ever be printed.
test: tools
	$(GO) vet ./...
	@$(GO) test -race -count=1 -timeout 25m -v ./... > $(TESTLOG) 2>&1; status=$$?; \
	grep -E '^(ok |FAIL|\?|panic:)' $(TESTLOG); \
	if [ $$status -ne 0 ]; then \
		echo "--- failures (full log in $(TESTLOG)):"; \
		grep -E -B2 -A40 -- '^\s*--- FAIL|^panic:' $(TESTLOG) | head -400; \
		exit $$status; \
	fi
	.ci/secrets-scan $(TESTLOG)

build:
	$(GO) build -o hookgate ./cmd/hookgate

# The plugins are ordinary Go programs built for WASI; the host calls the
# reactor's _initialize, so they are built as c-shared.
plugins: tools $(WASM)

# tools: what the tests and plugin builds need beyond Go (wat2wasm, the
# pinned AssemblyScript compiler), installed when missing; see .ci/tools.
tools:
	@bash .ci/tools

plugins/bin/%.wasm: FORCE
	@mkdir -p plugins/bin
	GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -o $@ ./plugins/$*

check: build plugins
	./hookgate check --config $(CONFIG)

# bench: the load harness (see benchmarks/README.md) and the Go benchmarks.
bench:
	$(GO) run ./benchmarks --duration 10s --rounds 3 --conns 64

clean:
	rm -rf hookgate plugins/bin data

FORCE:
