package main

import (
	"testing"

	"github.com/hookgate/hookgate/plugins/sdk/sdktest"
	"github.com/hookgate/hookgate/plugins/sdk/sdktest/wasmtest"
)

// TestWasm runs the cases of the fake host in the real one: the outcomes
// must be the same.
func TestWasm(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the plugin to wasm")
	}
	fx := fixture(t)
	low := edit(t, fx, `"field_1": 10`, `"field_1": 3`)
	tests := []struct {
		name   string
		body   []byte
		config string
	}{
		{"seed payload dropped", fx, crm},
		{"low score emits a ticket", low, crm},
		{"no target replaces the body", low, `{"max_score": 6}`},
		{"wrong type", edit(t, low, `"field_1": 3`, `"field_1": "great"`), crm},
		{"bad config fails", low, `{"max_score": "six"}`},
		{"unknown target fails", low, `{"target": "nope"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wasmtest.Compare(t, "plugins/howxm-nps", handle, sdktest.Input{Body: tt.body, Config: []byte(tt.config), Targets: []string{"crm"}})
		})
	}
}

func BenchmarkWasmTicket(b *testing.B) {
	body := edit(b, fixture(b), `"field_1": 10`, `"field_1": 3`)
	wasmtest.Benchmark(b, "plugins/howxm-nps", sdktest.Input{Body: body, Config: []byte(crm), Targets: []string{"crm"}})
}

func BenchmarkWasmDrop(b *testing.B) {
	wasmtest.Benchmark(b, "plugins/howxm-nps", sdktest.Input{Body: fixture(b), Config: []byte(crm), Targets: []string{"crm"}})
}
