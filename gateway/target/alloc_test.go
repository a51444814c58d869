//go:build !race

// Allocation tests are built without the race detector, which allocates
// on its own (and makes sync.Pool drop items at random); make test runs
// the suite both with and without -race, so they do run.

package target

import (
	"testing"

	"github.com/hookgate/hookgate/internal/sink"
)

// TestDoAllocatesNothing: the forward path in steady state, against a sink
// that itself allocates nothing, with each kind of signing.
func TestDoAllocatesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts need a build without -race")
	}
	s := startSink(t, sink.Options{Discard: true})
	for _, tc := range forwardCases {
		t.Run(tc.name, func(t *testing.T) {
			tc.target.URL = mustURL(t, s.URL()+"/crm?static=1")
			doAllocatesNothing(t, newClient(t, tc.target))
		})
	}
}

// doAllocatesNothing sends the forward delivery through c until its pools
// and buffers are warm, then counts what a Do allocates.
func doAllocatesNothing(t *testing.T, c *Client) {
	t.Helper()
	d := forwardDelivery()
	var r Result
	do := func() {
		if err := c.Do(d, &r); err != nil || r.Status != 200 {
			t.Fatalf("Do: %v, status %d", err, r.Status)
		}
	}
	for range 100 {
		do()
	}
	if got := testing.AllocsPerRun(500, do); got != 0 {
		t.Errorf("allocs per Do = %v, want 0", got)
	}
}

// TestPipelinedDoAllocatesNothing: the same over a pipelined connection
// (pipeline = 1), whose requests, answers and timers are pooled.
func TestPipelinedDoAllocatesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts need a build without -race")
	}
	s := startSink(t, sink.Options{Discard: true})
	tc := forwardCases[0]
	tc.target.URL = mustURL(t, s.URL()+"/crm?static=1")
	tc.target.Pipeline = 1
	doAllocatesNothing(t, newClient(t, tc.target))
	if s.Conns() != 1 {
		t.Errorf("%d connections, want the one pipelined connection", s.Conns())
	}
}
