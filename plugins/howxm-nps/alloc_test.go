//go:build !race

// Allocation tests are built without the race detector, which allocates
// on its own (and makes sync.Pool drop items at random); make test runs
// the suite both with and without -race, so they do run.

package main

import (
	"testing"

	"github.com/hookgate/hookgate/plugins/sdk/sdktest"
)

func TestTicketAllocatesNothing(t *testing.T) {
	low := edit(t, fixture(t), `"field_1": 10`, `"field_1": 3`)
	n, err := sdktest.Allocs(handle, sdktest.Input{Body: low, Config: []byte(crm)}, 200)
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("allocs per call = %v, want 0", n)
	}
}
