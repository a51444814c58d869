//go:build !race

// Allocation tests are built without the race detector, which allocates
// on its own (and makes sync.Pool drop items at random); make test runs
// the suite both with and without -race, so they do run.

package delivery

import "testing"

func TestSteadyStateAllocatesNothing(t *testing.T) {
	var o Outcome
	var ev Event
	body := []byte(`{"entry":{"serial_number":1215}}`)
	step := func() {
		ev.Reset()
		ev.Body = append(ev.Body, body...)
		ev.Headers = Set(ev.Headers, []byte("Content-Type"), []byte("application/json"))
		o.Reset()
		for i := 0; i < 2; i++ {
			d := o.Add()
			d.Body = append(d.Body, ev.Body...)
			d.Headers = Set(d.Headers, []byte("X-Score"), []byte("3"))
			d.Query = Append(d.Query, []byte("crk"), []byte("ss-208-55039"))
		}
	}
	step()
	if n := testing.AllocsPerRun(100, step); n != 0 {
		t.Fatalf("allocs per event = %v, want 0", n)
	}
}
