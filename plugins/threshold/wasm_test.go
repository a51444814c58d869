package main

import (
	"testing"
	"time"

	"github.com/hookgate/hookgate/plugins/sdk/sdktest"
	"github.com/hookgate/hookgate/plugins/sdk/sdktest/wasmtest"
)

// TestWasm checks the counting in the real host, whose key-value store
// lives as long as the test binary: the config's name keeps it apart.
func TestWasm(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the plugin to wasm")
	}
	cfg := []byte(`{"name": "wasm-test", "key": "visitor.id", "count": 2, "window": "1h", "target": "crm", "delay": "5m", "body": {"points": 1}}`)
	in := sdktest.Input{Body: []byte(`{"visitor": {"id": 7}}`), Config: cfg, Targets: []string{"crm"}}
	res, err := wasmtest.Run(t, "plugins/threshold", in)
	if err != nil || !res.Dropped || res.DropReason != "threshold: occurrence 1 of wasm-test:7, acting on occurrence 2" {
		t.Fatalf("first: err %v, %+v", err, res)
	}
	res, err = wasmtest.Run(t, "plugins/threshold", in)
	if err != nil || res.Dropped || len(res.Emitted) != 1 || string(res.Emitted[0].Body) != `{"points": 1}` || res.Emitted[0].Delay != 5*time.Minute {
		t.Fatalf("second: err %v, %+v", err, res)
	}
	// Bad configs fail the same way in both hosts.
	wasmtest.Compare(t, "plugins/threshold", handle, sdktest.Input{Body: in.Body, Config: []byte(`{"key": "a", "count": 0}`)})
}

func BenchmarkWasmCount(b *testing.B) {
	wasmtest.Benchmark(b, "plugins/threshold", sdktest.Input{
		Body:    []byte(`{"visitor": {"id": 27671}}`),
		Config:  []byte(`{"name": "bench", "key": "visitor.id", "count": 3, "window": "24h", "target": "crm"}`),
		Targets: []string{"crm"},
	})
}
