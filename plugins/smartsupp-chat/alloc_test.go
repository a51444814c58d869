//go:build !race

// Allocation tests are built without the race detector, which allocates
// on its own; make test runs the suite both with and without -race, so
// they do run.

package main

import (
	"testing"

	"github.com/hookgate/hookgate/plugins/sdk/sdktest"
)

// The transcript and the survey invitation of a closed chat cost no
// allocation once the plugin's buffers have grown.
func TestTranscriptAllocatesNothing(t *testing.T) {
	n, err := sdktest.Allocs(handle, sdktest.Input{Body: fixture(t), Config: []byte(cfg)}, 200)
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("allocs per call = %v, want 0", n)
	}
}
