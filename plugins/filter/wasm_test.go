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
	fx := howxm(t)
	for _, tt := range []struct{ name, config string }{
		{"drop", `{"rules":[{"path":"entry.fields.field_1","op":"lte","value":6}]}`},
		{"keep", `{"mode":"any","rules":[{"path":"entry.platform","op":"eq","value":"Mac"},{"path":"x","op":"exists"}]}`},
		{"bad config", `{"rules":[{"path":"a","op":"lessthan","value":1}]}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wasmtest.Compare(t, "plugins/filter", handle, sdktest.Input{Body: fx, Config: []byte(tt.config)})
		})
	}
}

func BenchmarkWasmFilter(b *testing.B) {
	wasmtest.Benchmark(b, "plugins/filter", sdktest.Input{
		Body:   howxm(b),
		Config: []byte(`{"rules":[{"path":"event_type","op":"eq","value":"entry_submitted"},{"path":"entry.fields.field_1","op":"gte","value":6}]}`),
	})
}
