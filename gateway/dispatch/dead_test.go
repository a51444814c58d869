package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/queue"
	"github.com/hookgate/hookgate/gateway/target"
	"github.com/hookgate/hookgate/internal/sink"
)

func TestReplayDeliversOnce(t *testing.T) {
	s := startSink(t, sink.Options{Statuses: []int{400, 200, 400, 400}, Status: 200, Body: `{"error":"bad"}`})
	r := start(t, "", targetFor("crm", s))

	r.enqueue(del("evt_j.0", "crm"))
	r.waitStats("crm", "dead", func(st queue.TargetStats) bool { return st.Dead == 1 })

	dead, next, err := r.d.DeadList(queue.Filter{Target: "crm"}, "", 50)
	if err != nil || len(dead) != 1 || next != "" {
		t.Fatalf("DeadList: %d dead, next %q, %v", len(dead), next, err)
	}
	dl := dead[0]
	if string(dl.Delivery.ID) != "evt_j.0" || string(dl.Delivery.Body) != `{"n":"evt_j.0"}` || len(dl.Attempts) != 1 ||
		dl.Attempts[0].Status != 400 || string(dl.Attempts[0].Body) != `{"error":"bad"}` || dl.Attempts[0].Outcome != delivery.AttemptDead {
		t.Fatalf("dead letter %+v", dl)
	}

	if err := r.d.Replay("evt_j.0"); err != nil {
		t.Fatalf("Replay: %v", err)
	}
	reqs, err := s.Wait(2, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	r.waitStats("crm", "delivered", func(st queue.TargetStats) bool { return st.Depth == 0 && st.Dead == 0 })
	time.Sleep(200 * time.Millisecond)
	if n := s.Count(); n != 2 || reqs[1].Header(idHeader) != "evt_j.0" {
		t.Fatalf("after replay the target got %d requests, want 2 (the first refused, the replay)", n)
	}
	if err := r.d.Replay("evt_j.0"); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("second Replay = %v, want queue.ErrNotFound", err)
	}

	// Replay all of a route.
	r.enqueue(del("evt_k.0", "crm"))
	r.enqueue(del("evt_k.1", "crm"))
	r.waitStats("crm", "dead", func(st queue.TargetStats) bool { return st.Dead == 2 })
	if n, left, err := r.d.ReplayAll(queue.Filter{Route: "r"}, 1); err != nil || n != 1 || left != 1 {
		t.Fatalf("replay one of a route: %d replayed, %d remaining, %v", n, left, err)
	}
	if n, left, err := r.d.ReplayAll(queue.Filter{Route: "r"}, 0); err != nil || n != 1 || left != 0 {
		t.Fatalf("replay the rest of a route: %d replayed, %d remaining, %v", n, left, err)
	}
	reqs, err = s.Wait(6, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var last []string
	for _, q := range reqs[4:] {
		last = append(last, q.Header(idHeader))
	}
	slices.Sort(last)
	if !slices.Equal(last, []string{"evt_k.0", "evt_k.1"}) {
		t.Fatalf("replayed ids %v", last)
	}
	r.waitStats("crm", "delivered", func(st queue.TargetStats) bool { return st.Depth == 0 && st.Dead == 0 })

	crm := r.d.Status()["crm"]
	if crm.Depth != 0 || crm.Dead != 0 || crm.Breaker != BreakerClosed || crm.OldestAge != 0 {
		t.Fatalf("Status: %+v", crm)
	}
	// The admin API's shape: /admin/queue and /admin/targets show the same.
	if b, err := json.Marshal(crm); err != nil || string(b) != `{"depth":0,"leased":0,"bytes":0,"oldest_pending_seconds":0,"dead":0,"breaker":"closed"}` {
		t.Fatalf("Status JSON = %s, %v", b, err)
	}
	if _, _, err := r.d.DeadList(queue.Filter{}, "zz", 10); !errors.Is(err, queue.ErrBadCursor) {
		t.Fatalf("DeadList with a bad cursor = %v, want queue.ErrBadCursor", err)
	}
}

func TestShutdownAndRestart(t *testing.T) {
	t.Run("stop finishes the attempt in flight", func(t *testing.T) {
		s := startSink(t, sink.Options{Delay: 300 * time.Millisecond})
		cfg := targetFor("crm", s)
		cfg.MaxConns = 1
		r := start(t, "", cfg)
		r.enqueue(del("evt_l.0", "crm"), del("evt_l.1", "crm"), del("evt_l.2", "crm"))
		if _, err := s.Wait(1, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.d.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		st := r.store.Stats()["crm"]
		if st.Depth != 2 || st.Leased != 0 || s.Count() != 1 {
			t.Fatalf("after stop: %+v, %d sent; want the one in flight acked, 2 waiting, none leased", st, s.Count())
		}
		r.stop()

		// Restart: the rest go out.
		s2 := startSink(t, sink.Options{})
		r2 := start(t, r.dir, targetFor("crm", s2))
		reqs, err := s2.Wait(2, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		got := []string{reqs[0].Header(idHeader), reqs[1].Header(idHeader)}
		slices.Sort(got)
		if !slices.Equal(got, []string{"evt_l.1", "evt_l.2"}) {
			t.Fatalf("after restart got %v", got)
		}
		r2.waitStats("crm", "delivered", settled)
	})
	t.Run("a crash re-delivers what was in flight", func(t *testing.T) {
		s := startSink(t, sink.Options{Delay: 2 * time.Second})
		cfg := targetFor("crm", s)
		cfg.MaxConns = 1
		r := start(t, "", cfg)
		r.enqueue(del("evt_m.0", "crm"))
		if _, err := s.Wait(1, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		// Give up waiting at once, as a crash would, and close the store
		// under the attempt in flight: its ack can no longer land.
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		if err := r.d.Stop(ctx); err == nil {
			t.Fatal("stop returned nil with an attempt in flight")
		}
		r.store.Close()

		s2 := startSink(t, sink.Options{})
		start(t, r.dir, targetFor("crm", s2))
		reqs, err := s2.Wait(1, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if reqs[0].Header(idHeader) != "evt_m.0" {
			t.Fatalf("re-delivered %q", reqs[0].Header(idHeader))
		}
	})
}

func TestReloadSwapsLanes(t *testing.T) {
	down := startSink(t, sink.Options{Status: 503})
	cfg := targetFor("crm", down)
	cfg.Breaker = config.Breaker{Failures: 1, Cooldown: time.Hour}
	r := start(t, "", cfg)
	r.enqueue(del("evt_n.0", "crm"))
	if _, err := down.Wait(1, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	r.waitStats("crm", "retry scheduled", func(st queue.TargetStats) bool { return st.Leased == 0 && st.Depth == 1 })
	if got := r.d.BreakerState("crm"); got != BreakerOpen {
		t.Fatalf("breaker %s, want open", got)
	}

	// The target moves; the config is reloaded with new clients.
	up := startSink(t, sink.Options{})
	cfgs := []config.Target{targetFor("crm", up)}
	set, err := target.NewSet(cfgs)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.d.Reload(ctx, set, cfgs); err != nil {
		t.Fatal(err)
	}
	reqs, err := up.Wait(1, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if reqs[0].Header(idHeader) != "evt_n.0" || r.d.BreakerState("crm") != BreakerClosed {
		t.Fatalf("after reload: %q, breaker %s", reqs[0].Header(idHeader), r.d.BreakerState("crm"))
	}
	r.waitStats("crm", "delivered", settled)
	if down.Count() != 1 {
		t.Fatalf("old target got %d requests, want 1", down.Count())
	}
}
