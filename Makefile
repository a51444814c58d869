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

# test: every test twice, with the race detector and without it (the
# allocation tests, in alloc_test.go files tagged !race, are built only
# without it, so the second run proves the hot path allocates nothing), in
# shuffled order; one line per package as it finishes and the failing
# tests' output on the terminal, the verbose log of both runs in $(TESTLOG).
# Then go vet, and a search of the log for every secret the tests use: none
# may ever be printed.
TESTFLAGS ?= -count=1 -shuffle=on -timeout 25m
test: tools
	@rm -f $(TESTLOG) $(TESTLOG).counts
	@echo "== go test -race ./...   (log: $(TESTLOG))"
	@$(GO) test -race $(TESTFLAGS) -json ./... | $(GO) run .ci/testfmt.go -log $(TESTLOG) -append -counts $(TESTLOG).counts; \
		race=$$?; \
	echo "== go test ./...   (no race detector: the allocation tests run)"; \
	$(GO) test $(TESTFLAGS) -json ./... | $(GO) run .ci/testfmt.go -log $(TESTLOG) -append -counts $(TESTLOG).counts; \
		plain=$$?; \
	echo "== go vet ./..."; \
	$(GO) vet ./... && echo "vet: ok"; vet=$$?; \
	.ci/secrets-scan $(TESTLOG); scan=$$?; \
	$(GO) run .ci/testfmt.go -sum $(TESTLOG).counts; \
	test $$race = 0 -a $$plain = 0 -a $$vet = 0 -a $$scan = 0

build:
	$(GO) build -o hookgate ./cmd/hookgate

# The plugins are ordinary Go programs built for WASI; the host calls the
# reactor's _initialize, so they are built as c-shared.
plugins: $(WASM)

# tools: what the tests and plugin builds need beyond Go (wat2wasm, the
# pinned AssemblyScript compiler), installed when missing; see .ci/tools.
tools:
	@bash .ci/tools

plugins/bin/%.wasm: FORCE
	@mkdir -p plugins/bin
	GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -o $@ ./plugins/$*

# howxm-nps written in AssemblyScript (plugins/howxm-nps/README.md, "The
# same plugin in AssemblyScript"): not part of `plugins`, because it needs
# node and the compiler that `make tools` pins. The flags are the ones
# plugins/plugintest (ascFlags) builds it with for the tests.
plugins/bin/howxm-nps-as.wasm: tools FORCE
	@mkdir -p plugins/bin
	cd plugins/howxm-nps/assemblyscript && ../../assemblyscript/node_modules/.bin/asc assembly/index.ts -O3 --runtime stub --config asconfig.json -o ../../bin/howxm-nps-as.wasm

check: build plugins
	./hookgate check --config $(CONFIG)

# bench: the load harness (see benchmarks/README.md) and the Go benchmarks;
# it installs nginx, the reference row, when missing (.ci/tools bench).
bench:
	@bash .ci/tools bench
	$(GO) run ./benchmarks --duration 10s --rounds 3 --conns 64

clean:
	rm -rf hookgate plugins/bin data

FORCE:
