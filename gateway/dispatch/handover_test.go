package dispatch

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/queue"
	"github.com/hookgate/hookgate/gateway/target"
)

// heldTarget is a real HTTP server on 127.0.0.1 that answers status, and
// holds every request whose body is held until release is closed.
type heldTarget struct {
	srv      *httptest.Server
	status   atomic.Int64
	held     string
	arrived  chan struct{} // closed when the held request arrived
	release  chan struct{}
	requests atomic.Int64
}

func startHeld(t *testing.T, held string) *heldTarget {
	t.Helper()
	h := &heldTarget{held: held, arrived: make(chan struct{}), release: make(chan struct{})}
	h.status.Store(503)
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.requests.Add(1)
		if string(b) == h.held {
			close(h.arrived)
			<-h.release
		}
		w.WriteHeader(int(h.status.Load()))
	}))
	t.Cleanup(func() {
		select {
		case <-h.release:
		default:
			close(h.release)
		}
		h.srv.Close()
	})
	return h
}

func (h *heldTarget) target(disableAfter time.Duration) config.Target {
	u, _ := url.Parse(h.srv.URL + "/crm")
	// A failed delivery waits an hour: in these tests only the attempts
	// the test makes happen.
	return config.Target{
		Name: "crm", URL: u, Timeout: 3 * time.Second, MaxConns: 2, IDHeader: idHeader, DisableAfter: disableAfter,
		Retry: config.Retry{MaxAttempts: 1000, Initial: time.Hour, Max: time.Hour, MaxAge: 24 * time.Hour},
	}
}

// reloadDuringAttempt starts the failure clock of target crm (one failed
// attempt), puts a second attempt in flight and holds it, swaps in lanes
// built from next, then lets the held attempt end with status, and waits
// until the old lanes have stopped: their last attempt has been judged.
// The held attempt ends once after has passed since the clock started.
func reloadDuringAttempt(t *testing.T, h *heldTarget, cfg, next config.Target, status int, after time.Duration) *rig {
	t.Helper()
	r := start(t, "", cfg)
	r.enqueue(del("evt_a.0", "crm"))
	deadline := time.Now().Add(10 * time.Second) // a failure timeout only
	for r.d.FailingSince("crm").IsZero() {
		if time.Now().After(deadline) {
			t.Fatal("no failure clock after a failed attempt")
		}
		time.Sleep(5 * time.Millisecond)
	}
	held := del("evt_b.0", "crm")
	held.Body = []byte(h.held)
	r.enqueue(held)
	select {
	case <-h.arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the second attempt never reached the target")
	}
	set, err := target.NewSet([]config.Target{next}) // a reload builds new clients
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	old, err := r.d.Swap(r.d.Lanes(set, []config.Target{next}))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(r.d.FailingSince("crm").Add(after)))
	h.status.Store(int64(status))
	close(h.release)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := old.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	old.Wait()
	return r
}

// TestReloadHandsOverTheClock: a reload swaps in new lanes while the old
// ones may still run an attempt. What that attempt shows (a success ends
// the run of failures; a failure past disable_after disables the target)
// reaches the new lane of the same target. Before, the new lane read the
// state from the store as it started and never heard of it: it kept a
// clock that the success had ended, or went on claiming for a target the
// old lane had disabled.
func TestReloadHandsOverTheClock(t *testing.T) {
	t.Run("success", func(t *testing.T) {
		h := startHeld(t, `{"n":"held"}`)
		c := h.target(time.Hour)
		r := reloadDuringAttempt(t, h, c, c, 200, 0)
		if since := r.d.FailingSince("crm"); !since.IsZero() {
			t.Fatalf("the target delivered, but the new lane still has it failing since %v", since)
		}
		r.waitStats("crm", "the held delivery acked", func(s queue.TargetStats) bool { return s.Depth == 1 && s.Leased == 0 })
	})
	t.Run("disable", func(t *testing.T) {
		h := startHeld(t, `{"n":"held"}`)
		c := h.target(200 * time.Millisecond)
		r := reloadDuringAttempt(t, h, c, c, 503, 250*time.Millisecond)
		if got := r.d.BreakerState("crm"); got != BreakerDisabled {
			t.Fatalf("the old lane's last attempt disabled the target, but the new lane's breaker is %q", got)
		}
		n := h.requests.Load()
		r.d.cur.Load().lanes["crm"].notify()
		time.Sleep(10 * r.d.poll) // a lane that claims would have by now
		if got := h.requests.Load(); got != n {
			t.Fatalf("a disabled target got %d more attempts", got-n)
		}
	})
	t.Run("changed config", func(t *testing.T) {
		// A reload that changes the target enables it: the old config's
		// last failure does not disable the new one.
		h := startHeld(t, `{"n":"held"}`)
		c := h.target(200 * time.Millisecond)
		next := c
		next.Timeout = 2 * time.Second
		r := reloadDuringAttempt(t, h, c, next, 503, 250*time.Millisecond)
		if got := r.d.BreakerState("crm"); got != BreakerClosed {
			t.Fatalf("the old config's last failure set the new config's breaker to %q", got)
		}
	})
}
