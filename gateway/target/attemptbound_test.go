package target

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
)

// TestOAuth2AttemptBounded: with OAuth2 one Do could wait for a token,
// send, get a 401, wait for another token and send again: each step up to
// the target's timeout, and then a TLS diagnosis dial. That ran past the
// queue's lease (2x timeout + 1 min), after which another worker may send
// the same delivery. Now the whole attempt, token waits included, ends
// within MaxAttempt (2x timeout), inside the lease.
//
// Here every step takes 0.7x the timeout: a slow token endpoint, and a
// target that is as slow and refuses every token. Before, Do took about
// 2.8x the timeout and sent twice; now it gives up at 2x, while fetching
// the second token, before the second send. Each of the first two steps
// has 0.6 s to spare for a loaded machine.
func TestOAuth2AttemptBounded(t *testing.T) {
	const timeout = 2 * time.Second
	step := timeout * 7 / 10
	var tokens atomic.Int64
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := tokens.Add(1)
		time.Sleep(step) // a slow identity provider
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": fmt.Sprintf("%s%d", oatTokenPrefix, n), "token_type": "bearer", "expires_in": 3600})
	}))
	t.Cleanup(idp.Close)
	var sends atomic.Int64
	crm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		sends.Add(1)
		time.Sleep(step) // as slow, and it refuses every token
		w.WriteHeader(http.StatusUnauthorized)
	}))
	t.Cleanup(crm.Close)

	cfg := oauthTarget(t, crm.URL+"/hook", &tokenEndpoint{srv: idp}, "header")
	cfg.Name, cfg.Timeout = "crm", timeout
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if got := c.MaxAttempt(); got != 2*timeout {
		t.Fatalf("MaxAttempt %v, want twice the timeout", got)
	}

	var r Result
	d := delivery.Delivery{ID: []byte("evt_a.0"), Body: []byte(`{}`)}
	began := time.Now()
	err = c.Do(&d, &r)
	took := time.Since(began)
	if err == nil {
		t.Fatalf("Do: status %d, want an error: the attempt ran out of time", r.Status)
	}
	if !errors.Is(err, ErrToken) && !errors.Is(err, ErrTimeout) {
		t.Fatalf("Do: %v, want a token or timeout error", err)
	}
	if n := sends.Load(); n != 1 {
		t.Fatalf("the target got %d requests, want 1: the second send would end past the bound", n)
	}
	// The bound is what is tested: its slack (0.9 s) is for a loaded
	// machine, and less than the 1.2x the timeout the old code ran over.
	if limit := c.MaxAttempt() + 900*time.Millisecond; took > limit {
		t.Fatalf("Do took %v, more than its bound %v (and the lease is only 2x timeout + 1 min)", took, c.MaxAttempt())
	}
}
