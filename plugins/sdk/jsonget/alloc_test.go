//go:build !race

// Allocation tests are built without the race detector, which allocates
// on its own (and makes sync.Pool drop items at random); make test runs
// the suite both with and without -race, so they do run.

package jsonget

import (
	"os"
	"testing"
)

func TestAllocs(t *testing.T) {
	body, err := os.ReadFile("../../../testdata/howxm_entry_submitted.json")
	if err != nil {
		t.Fatal(err)
	}
	list := pack(howxmPaths...)
	var s Scratch
	other := pack("entry.serial_number")
	if n := testing.AllocsPerRun(100, func() {
		s.Eval(body, list)
		s.Eval(body, other) // alternating lists recompile
	}); n != 0 {
		t.Fatalf("allocs = %v", n)
	}
}
