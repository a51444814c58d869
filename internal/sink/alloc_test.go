//go:build !race

// Allocation tests are built without the race detector, which allocates
// on its own (and makes sync.Pool drop items at random); make test runs
// the suite both with and without -race, so they do run.

package sink

import (
	"testing"

	"github.com/valyala/fasthttp"
)

// TestDiscardAllocatesNothing measures client and server together: the
// fasthttp client with reused request and response allocates nothing, so
// any allocation would be the sink's.
func TestDiscardAllocatesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts need a build without -race")
	}
	s := start(t, Options{Discard: true, RetryAfter: "1"})
	c := &fasthttp.HostClient{Addr: s.Addr(), MaxConns: 1}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod("POST")
	req.SetRequestURI(s.URL() + "/load")
	req.SetBodyString(`{"n":1}`)
	do := func() {
		if err := c.Do(req, resp); err != nil || resp.StatusCode() != 200 {
			t.Fatalf("Do: %v, status %d", err, resp.StatusCode())
		}
	}
	for range 100 { // warm pools and buffers
		do()
	}
	if got := testing.AllocsPerRun(200, do); got != 0 {
		t.Errorf("allocs per request = %v, want 0", got)
	}
}
