package dispatch

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/queue"
	"github.com/hookgate/hookgate/gateway/target"
)

// opsSecret signs the operational events in these tests (Standard
// Webhooks: "whsec_" and base64 of the key).
const opsSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// switchable is a real HTTP server on 127.0.0.1 answering status (which
// the test changes) and keeping what it received.
type switchable struct {
	srv    *httptest.Server
	status atomic.Int64
	mu     sync.Mutex
	got    []received
}

type received struct {
	header http.Header
	body   string
}

func startSwitchable(t *testing.T, status int) *switchable {
	t.Helper()
	s := &switchable{}
	s.status.Store(int64(status))
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.got = append(s.got, received{r.Header.Clone(), string(b)})
		s.mu.Unlock()
		w.WriteHeader(int(s.status.Load()))
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *switchable) requests() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.got...)
}

func (s *switchable) target(name string) config.Target {
	u, err := url.Parse(s.srv.URL + "/" + name)
	if err != nil {
		panic(err)
	}
	return config.Target{
		Name: name, URL: u, Timeout: 3 * time.Second, MaxConns: 2, IDHeader: idHeader,
		Retry: config.Retry{MaxAttempts: 1000, Initial: 10 * time.Millisecond, Max: 30 * time.Millisecond, MaxAge: time.Hour},
	}
}

// opsTarget is s as the operations target, signing with Standard Webhooks.
func (s *switchable) opsTarget() config.Target {
	c := s.target("ops")
	c.Auth = config.Auth{Type: config.AuthStandardWebhooks, Secret: config.NewSecret(opsSecret, "")}
	c.IDHeader = ""
	return c
}

type opsEvent struct {
	Type      string         `json:"type"`
	Timestamp string         `json:"timestamp"`
	Data      map[string]any `json:"data"`
}

// verified checks r's Standard Webhooks signature with opsSecret and
// decodes the event.
func verified(t *testing.T, r received) opsEvent {
	t.Helper()
	id, ts, sig := r.header.Get("webhook-id"), r.header.Get("webhook-timestamp"), r.header.Get("webhook-signature")
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(opsSecret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "." + r.body))
	if want := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil)); id == "" || !strings.HasPrefix(id, "op_") || sig != want {
		t.Fatalf("operational event not signed: webhook-id %q, signature %q, want %q", id, sig, want)
	}
	var ev opsEvent
	if err := json.Unmarshal([]byte(r.body), &ev); err != nil {
		t.Fatalf("operational event %q: %v", r.body, err)
	}
	if _, err := time.Parse(time.RFC3339Nano, ev.Timestamp); err != nil {
		t.Fatalf("timestamp %q: %v", ev.Timestamp, err)
	}
	return ev
}

// waitEvent waits for the operations target to receive an event of typ
// and returns it, verified.
func waitEvent(t *testing.T, ops *switchable, typ string) opsEvent {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second) // a failure timeout only
	for {
		for _, r := range ops.requests() {
			if ev := verified(t, r); ev.Type == typ {
				return ev
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event; the operations target got %d requests", typ, len(ops.requests()))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *rig) waitBreaker(tgt, state string) {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for r.d.BreakerState(tgt) != state {
		if time.Now().After(deadline) {
			r.t.Fatalf("target %s: breaker %q, want %q", tgt, r.d.BreakerState(tgt), state)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestAutoDisable: a target failing for its disable_after is disabled:
// its deliveries are kept and not attempted, the operations target hears
// of it (signed), and Enable lets the kept deliveries drain.
func TestAutoDisable(t *testing.T) {
	crm, ops := startSwitchable(t, 503), startSwitchable(t, 200)
	c := crm.target("crm")
	c.DisableAfter = 300 * time.Millisecond
	r := start(t, "", c, ops.opsTarget())
	r.d.SetOperations(config.Operations{Target: "ops", Events: config.OperationEvents, HighWater: 0.8})
	r.enqueue(del("evt_a.0", "crm"), del("evt_b.0", "crm"), del("evt_c.0", "crm"))

	r.waitBreaker("crm", BreakerDisabled)
	ev := waitEvent(t, ops, config.EventTargetDisabled)
	if ev.Data["target"] != "crm" || ev.Data["disable_after"] != "300ms" || ev.Data["failing_since"] == "" ||
		!strings.Contains(ev.Data["last_error"].(string), "503") {
		t.Fatalf("target.disabled data: %v", ev.Data)
	}
	// Kept and not attempted: once the attempt in flight when it was
	// disabled is done, the target hears nothing more.
	r.waitStats("crm", "nothing in flight", func(s queue.TargetStats) bool { return s.Leased == 0 })
	n := len(crm.requests())
	time.Sleep(10 * r.d.poll) // ten polls: a disabled lane would have claimed again by now
	if got := len(crm.requests()); got != n {
		t.Fatalf("a disabled target got %d more attempts", got-n)
	}
	if q := r.d.Status()["crm"]; q.Depth != 3 || q.Dead != 0 || q.Breaker != BreakerDisabled || q.FailingSince.IsZero() {
		t.Fatalf("status while disabled: %+v", q)
	}

	crm.status.Store(200)
	if was, err := r.d.Enable("crm"); err != nil || !was {
		t.Fatalf("Enable: %v, %v", was, err)
	}
	r.waitStats("crm", "drained", settled)
	if q := r.d.Status()["crm"]; q.Dead != 0 || q.Breaker != BreakerClosed || !q.FailingSince.IsZero() {
		t.Fatalf("status after enable: %+v", q)
	}
	rec := waitEvent(t, ops, config.EventTargetRecovered)
	if rec.Data["target"] != "crm" || rec.Data["was_disabled"] != true {
		t.Fatalf("target.recovered data: %v", rec.Data)
	}
	if was, err := r.d.Enable("crm"); err != nil || was {
		t.Fatalf("Enable of an enabled target: %v, %v", was, err)
	}
	if _, err := r.d.Enable("nope"); err != ErrUnknownTarget {
		t.Fatalf("Enable of an unknown target: %v", err)
	}
}

// TestDisabledAcrossRestarts: the failure clock and the disabled switch
// are kept in the queue store. A restart neither resets the clock nor
// enables the target; a restart with a changed config enables it, and its
// kept deliveries drain.
func TestDisabledAcrossRestarts(t *testing.T) {
	crm := startSwitchable(t, 503)
	dir := t.TempDir()
	c := crm.target("crm")
	c.DisableAfter = time.Hour

	// The clock survives a restart.
	r := start(t, dir, c)
	r.enqueue(del("evt_a.0", "crm"), del("evt_b.0", "crm"))
	deadline := time.Now().Add(10 * time.Second)
	for r.d.FailingSince("crm").IsZero() {
		if time.Now().After(deadline) {
			t.Fatal("no failure clock after failed attempts")
		}
		time.Sleep(5 * time.Millisecond)
	}
	since := r.d.FailingSince("crm")
	r.stop()
	r = start(t, dir, c)
	if got := r.d.FailingSince("crm"); !got.Equal(since) {
		t.Fatalf("after a restart the target is failing since %v, want %v", got, since)
	}

	// Disabled, it stays disabled across a restart with the same config.
	c.DisableAfter = 100 * time.Millisecond // a changed config: the clock goes on, measured against the new limit
	r.stop()
	r = start(t, dir, c)
	r.waitBreaker("crm", BreakerDisabled)
	r.waitStats("crm", "nothing in flight", func(s queue.TargetStats) bool { return s.Leased == 0 })
	r.stop()
	n := len(crm.requests())
	r = start(t, dir, c)
	if got := r.d.BreakerState("crm"); got != BreakerDisabled {
		t.Fatalf("after a restart with the same config the breaker is %q, want disabled", got)
	}
	time.Sleep(10 * r.d.poll)
	if got := len(crm.requests()); got != n {
		t.Fatalf("a disabled target got %d attempts after a restart", got-n)
	}
	if q := r.d.Status()["crm"]; q.Depth != 2 || q.Dead != 0 {
		t.Fatalf("status: %+v", q)
	}

	// A changed config enables it.
	r.stop()
	crm.status.Store(200)
	c.Timeout = 2 * time.Second
	r = start(t, dir, c)
	r.waitStats("crm", "drained", settled)
	if q := r.d.Status()["crm"]; q.Dead != 0 || q.Breaker != BreakerClosed {
		t.Fatalf("status after a changed config: %+v", q)
	}
}

// TestOperationsLoopGuard: when the operations target fails too, the
// death of its own deliveries is never reported to it: one event about
// another target's dead letter costs its attempts and one dead letter,
// and nothing follows.
func TestOperationsLoopGuard(t *testing.T) {
	crm, ops := startSwitchable(t, 400), startSwitchable(t, 503)
	oc := ops.opsTarget()
	oc.Retry.MaxAttempts = 2
	r := start(t, "", crm.target("crm"), oc)
	r.d.SetOperations(config.Operations{Target: "ops", Events: config.OperationEvents, HighWater: 0.8})
	r.enqueue(del("evt_a.0", "crm")) // 400: dead at once, one delivery.dead event
	r.enqueue(del("evt_b.0", "ops")) // a delivery of its own dying: no event

	r.waitStats("crm", "dead", func(s queue.TargetStats) bool { return s.Dead == 1 })
	r.waitStats("ops", "both dead", func(s queue.TargetStats) bool { return s.Dead == 2 && s.Depth == 0 })
	time.Sleep(10 * r.d.poll) // anything the deaths caused would be queued by now
	if q := r.d.Status()["ops"]; q.Dead != 2 || q.Depth != 0 {
		t.Fatalf("the operations target's queue: %+v (an event about itself was queued)", q)
	}
	got := ops.requests()
	if len(got) != 4 { // 2 attempts each of evt_b.0 and the one delivery.dead event
		t.Fatalf("the operations target got %d requests, want 4", len(got))
	}
	var events int
	for _, rq := range got {
		if rq.header.Get("webhook-id") != "" && strings.HasPrefix(rq.header.Get("webhook-id"), "op_") {
			ev := verified(t, rq)
			if ev.Type != config.EventDeliveryDead || ev.Data["delivery_id"] != "evt_a.0" || ev.Data["target"] != "crm" ||
				ev.Data["status"] != float64(400) || ev.Data["attempts"] != float64(1) {
				t.Fatalf("event: %+v", ev)
			}
			events++
		}
	}
	if events != 2 {
		t.Fatalf("%d attempts of operational events, want 2 (one event, two attempts)", events)
	}
}

// TestQueueHighWater: the queue passing high_water of its budget is one
// queue.high_water event naming the deepest target, sent once.
func TestQueueHighWater(t *testing.T) {
	crm, ops := startSwitchable(t, 503), startSwitchable(t, 200)
	c, oc := crm.target("crm"), ops.opsTarget()
	st, err := queue.Open(queue.Options{Path: t.TempDir(), Sync: queue.SyncBatch, MaxDepth: 10})
	if err != nil {
		t.Fatal(err)
	}
	set, err := target.NewSet([]config.Target{c, oc})
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, store: st, set: set, d: New(st, set, []config.Target{c, oc}, Options{Poll: 20 * time.Millisecond})}
	r.d.SetOperations(config.Operations{Target: "ops", Events: []string{config.EventQueueHighWater}, HighWater: 0.5})
	r.d.Start()
	t.Cleanup(r.stop)
	for i := range 6 {
		r.enqueue(del(fmt.Sprintf("evt_%d.0", i), "crm"))
	}
	ev := waitEvent(t, ops, config.EventQueueHighWater)
	if ev.Data["deepest_target"] != "crm" || ev.Data["max_depth"] != float64(10) || ev.Data["depth"].(float64) < 5 {
		t.Fatalf("queue.high_water data: %v", ev.Data)
	}
	time.Sleep(10 * r.d.poll) // still above the mark: no second event
	if n := len(ops.requests()); n != 1 {
		t.Fatalf("the operations target got %d requests, want 1", n)
	}
}
