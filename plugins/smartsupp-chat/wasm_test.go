package main

import (
	"testing"

	"github.com/hookgate/hookgate/plugins/sdk/sdktest"
	"github.com/hookgate/hookgate/plugins/sdk/sdktest/wasmtest"
)

// TestWasm runs cases of the fake host in the real one: same outcomes.
func TestWasm(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the plugin to wasm")
	}
	fx := fixture(t)
	for _, tt := range []struct {
		name   string
		body   []byte
		config string
	}{
		{"seed chat", fx, cfg},
		{"no email", edit(t, fx, `"dusan@domain.com"`, `""`), cfg},
		{"not a chat", []byte(`{"accountId": 1}`), cfg},
		{"bad config", fx, `{"survey_target": "surveylab"}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wasmtest.Compare(t, "plugins/smartsupp-chat", handle, sdktest.Input{Body: tt.body, Config: []byte(tt.config), Targets: targets})
		})
	}
}

func BenchmarkWasmSeedChat(b *testing.B) {
	wasmtest.Benchmark(b, "plugins/smartsupp-chat", sdktest.Input{Body: fixture(b), Config: []byte(cfg), Targets: targets})
}
