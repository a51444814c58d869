package dispatch

import (
	"fmt"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/internal/sink"
)

// TestPipelinedTargetDeliversEach: a target with pipeline = 2 (a real
// HTTP/1.1 server, which takes pipelined requests) gets every queued
// delivery exactly once, over no more than two connections, and the
// queue empties.
func TestPipelinedTargetDeliversEach(t *testing.T) {
	const n = 300
	s := startSink(t, sink.Options{})
	cfg := targetFor("crm", s)
	cfg.MaxConns, cfg.Pipeline = 16, 2
	cfg.Timeout = 10 * time.Second // no send times out and is retried on a loaded machine
	r := start(t, "", cfg)
	ds := make([]delivery.Delivery, n)
	for i := range ds {
		ds[i] = del(fmt.Sprintf("evt_%d.0", i), "crm")
	}
	r.enqueue(ds...)
	reqs, err := s.Wait(n, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	r.waitStats("crm", "delivered", settled)
	seen := map[string]int{}
	for _, q := range reqs {
		seen[q.Header(idHeader)]++
	}
	for i := range n {
		if id := fmt.Sprintf("evt_%d.0", i); seen[id] != 1 {
			t.Errorf("%s delivered %d times, want once", id, seen[id])
		}
	}
	if len(reqs) != n {
		t.Errorf("%d requests, want %d", len(reqs), n)
	}
	if c := s.Conns(); c > 2 {
		t.Errorf("%d connections, want at most 2", c)
	}
}
