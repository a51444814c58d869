package sdk_test

import (
	"os"
	"testing"

	"github.com/hookgate/hookgate/plugins/sdk/sdktest"
	"github.com/hookgate/hookgate/plugins/sdk/sdktest/wasmtest"
)

// BenchmarkWasmSDK measures what the SDK adds to a call in the real host,
// on the Howxm payload: nothing, reading the body, one Get, a top-level
// ForEach, a Scanner walk, an emit.
func BenchmarkWasmSDK(b *testing.B) {
	body, err := os.ReadFile("../../testdata/howxm_entry_submitted.json")
	if err != nil {
		b.Fatal(err)
	}
	for _, mode := range []string{"nothing", "body", "get", "scan", "foreach", "emit"} {
		b.Run(mode, func(b *testing.B) {
			wasmtest.Benchmark(b, "plugins/sdk/internal/testguest", sdktest.Input{
				Body: body, Config: []byte(`{"mode":"` + mode + `"}`), Targets: []string{"crm"},
			})
		})
	}
}
