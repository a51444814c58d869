//go:build !race

// Allocation tests are built without the race detector, which allocates
// on its own (and makes sync.Pool drop items at random); make test runs
// the suite both with and without -race, so they do run.

package jsonw

import "testing"

func TestWriterAllocatesNothingOnceGrown(t *testing.T) {
	var w Writer
	write := func() {
		w.Reset()
		w.ObjectStart()
		w.Key("name")
		w.String("Dusan Kmet \"VIP\"")
		w.Key("n")
		w.Int(55039)
		w.Key("f")
		w.Float(1.5)
		w.ObjectEnd()
	}
	write()
	if n := testing.AllocsPerRun(100, write); n != 0 {
		t.Fatalf("allocs per document = %v, want 0", n)
	}
}
