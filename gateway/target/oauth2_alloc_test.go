//go:build !race

package target

import (
	"testing"

	"github.com/hookgate/hookgate/internal/sink"
)

// TestDoOAuth2AllocatesNothing: with a cached token, an oauth2 target's
// forward path allocates nothing, like every other kind of auth.
func TestDoOAuth2AllocatesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts need a build without -race")
	}
	s := startSink(t, sink.Options{Discard: true})
	e := startTokenEndpoint(t)
	c := newClient(t, oauthTarget(t, s.URL()+"/crm?static=1", e, ""))
	d := forwardDelivery()
	var r Result
	do := func() {
		if err := c.Do(d, &r); err != nil || r.Status != 200 {
			t.Fatalf("Do: %v, status %d", err, r.Status)
		}
	}
	for range 100 { // warm pools and buffers, and fetch the token
		do()
	}
	if got := testing.AllocsPerRun(500, do); got != 0 {
		t.Errorf("allocs per Do = %v, want 0", got)
	}
	if e.requests.Load() != 1 {
		t.Errorf("%d token requests, want 1", e.requests.Load())
	}
}
