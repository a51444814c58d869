//go:build !race

// Allocation tests are built without the race detector, which allocates
// on its own (and makes sync.Pool drop items at random); make test runs
// the suite both with and without -race, so they do run.

package metrics

import (
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/record"
	"github.com/hookgate/hookgate/plugins/abi"
)

// TestHotPathAllocs proves the per-request calls allocate nothing in
// steady state (AllocsPerRun makes one warm-up call first, which is when
// a target's (outcome, class) pair is resolved).
func TestHotPathAllocs(t *testing.T) {
	reg := New("dev")
	rm := reg.Route("howxm")
	pm := reg.Plugin("filter")
	var obs CallObserver = reg.PluginObserver("template")
	tm := reg.Target("crm")
	var nilRoute *RouteMetrics
	d := 1234 * time.Microsecond
	attempt := delivery.Attempt{Status: 200, Duration: d, Outcome: delivery.AttemptSuccess}
	answer := record.Answer{Route: "howxm", Status: 401, Code: "bad_signature", Took: d}
	cases := []struct {
		name string
		f    func()
	}{
		{"route request+observe", func() { rm.Request(); rm.Observe(d) }},
		{"route reject", func() { rm.Reject(ReasonQueueFull) }},
		{"route reject out of range", func() { rm.Reject(Reason(99)) }},
		{"route duplicate+dropped", func() { rm.Duplicate(); rm.Dropped() }},
		{"plugin call ok", func() { pm.Call(d, "") }},
		{"plugin call error", func() { pm.Call(d, abi.KindTimeout) }},
		{"plugin call unknown kind", func() { pm.Call(d, "nope") }},
		{"plugin call through the interface", func() { obs.Call(d, abi.KindTrap) }},
		{"target attempt", func() { tm.Attempt(delivery.AttemptRetry, 503, d) }},
		{"target attempt no answer", func() { tm.Attempt(delivery.AttemptRetry, 0, d) }},
		{"target attempted (the recorder)", func() { tm.Attempted(nil, 1, &attempt) }},
		{"route answered (the recorder)", func() { rm.Answered(&answer) }},
		{"nil handle", func() { nilRoute.Request(); nilRoute.Observe(d) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(1000, c.f); n != 0 {
				t.Fatalf("%v allocations per call, want 0", n)
			}
		})
	}
}
