//go:build !race

// Allocation tests are built without the race detector, which allocates
// on its own; make test runs the suite both with and without -race, so
// they do run.

package main

import (
	"os"
	"testing"

	"github.com/hookgate/hookgate/plugins/sdk/sdktest"
)

// Kept or dropped, a call allocates nothing once the plugin's buffers
// have grown (the load harness's chain3 runs the first rule on every
// event).
func TestFilterAllocatesNothing(t *testing.T) {
	body, err := os.ReadFile("../../testdata/howxm_entry_submitted.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []string{
		`{"rules": [{"path": "event_type", "op": "eq", "value": "entry_submitted"}]}`,
		`{"rules": [{"path": "event_type", "op": "eq", "value": "entry_deleted"}]}`,
	} {
		n, err := sdktest.Allocs(handle, sdktest.Input{Body: body, Config: []byte(cfg)}, 200)
		if err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatalf("config %s: allocs per call = %v, want 0", cfg, n)
		}
	}
}
