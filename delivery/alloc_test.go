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

func TestDefaultsAllocatesNothing(t *testing.T) {
	ev := &Event{ID: []byte("evt_1"), Route: "r", Method: []byte("PUT"), Path: []byte("/v2"), Query: []byte("email=a+b%40c&z=1"),
		Headers: []KV{{Key: []byte("Content-Type"), Value: []byte("application/json")}, {Key: []byte("Host"), Value: []byte("gw")}},
		Body:    []byte(`{}`)}
	in := Original{Method: []byte("POST"), Path: []byte("/hooks/x")}
	targets := []string{"crm", "sms"}
	var ds []Delivery
	step := func() { ds = Defaults(ds[:0], ev, in, 42, targets) }
	step()
	if n := testing.AllocsPerRun(100, step); n != 0 {
		t.Fatalf("allocs per call = %v, want 0", n)
	}
}
