package transforms

import (
	"bytes"
	"os"
	"testing"
)

// TestExampleWasm keeps testdata/example.wasm (used by Example) equal to the
// hand-assembled trivial guest.
func TestExampleWasm(t *testing.T) {
	want := handleModule(i32const(0))
	got, err := os.ReadFile("testdata/example.wasm")
	if err != nil || !bytes.Equal(got, want) {
		if os.Getenv("HOOKGATE_UPDATE") != "" {
			if err := os.WriteFile("testdata/example.wasm", want, 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Fatalf("testdata/example.wasm is stale (%v); run with HOOKGATE_UPDATE=1", err)
	}
}
