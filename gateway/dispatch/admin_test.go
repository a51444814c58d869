package dispatch

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/queue"
	"github.com/hookgate/hookgate/gateway/target"
	"github.com/hookgate/hookgate/internal/sink"
)

func call(t *testing.T, method, url string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: content type %q", method, url, ct)
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s %s: %v: %s", method, url, err, b)
	}
	return resp.StatusCode, v
}

func TestAdminReplayDeliversOnce(t *testing.T) {
	s := startSink(t, sink.Options{Statuses: []int{400, 200, 400, 400}, Status: 200, Body: `{"error":"bad"}`})
	r := start(t, "", targetFor("crm", s))
	mux := http.NewServeMux()
	r.d.Register(mux)
	admin := httptest.NewServer(mux)
	defer admin.Close()

	r.enqueue(del("evt_j.0", "crm"))
	r.waitStats("crm", "dead", func(st queue.TargetStats) bool { return st.Dead == 1 })

	code, v := call(t, "GET", admin.URL+"/admin/dead?target=crm")
	dead, _ := v["dead"].([]any)
	if code != 200 || len(dead) != 1 {
		t.Fatalf("GET /admin/dead: %d %v", code, v)
	}
	dl := dead[0].(map[string]any)
	attempts := dl["attempts"].([]any)
	if dl["id"] != "evt_j.0" || dl["body"] != `{"n":"evt_j.0"}` || len(attempts) != 1 ||
		attempts[0].(map[string]any)["status"] != 400.0 || attempts[0].(map[string]any)["body"] != `{"error":"bad"}` {
		t.Fatalf("dead letter %v", dl)
	}

	code, v = call(t, "POST", admin.URL+"/admin/dead/evt_j.0/replay")
	if code != 200 || v["replayed"] != 1.0 {
		t.Fatalf("replay: %d %v", code, v)
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
	code, v = call(t, "POST", admin.URL+"/admin/dead/evt_j.0/replay")
	if code != 404 || v["error"].(map[string]any)["code"] != "not_found" {
		t.Fatalf("second replay: %d %v", code, v)
	}

	// Replay all of a route.
	r.enqueue(del("evt_k.0", "crm"))
	r.enqueue(del("evt_k.1", "crm"))
	r.waitStats("crm", "dead", func(st queue.TargetStats) bool { return st.Dead == 2 })
	code, v = call(t, "POST", admin.URL+"/admin/dead/replay?route=r&limit=1")
	if code != 200 || v["replayed"] != 1.0 || v["remaining"] != 1.0 {
		t.Fatalf("replay one of a route: %d %v", code, v)
	}
	code, v = call(t, "POST", admin.URL+"/admin/dead/replay?route=r")
	if code != 200 || v["replayed"] != 1.0 || v["remaining"] != 0.0 {
		t.Fatalf("replay the rest of a route: %d %v", code, v)
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

	code, v = call(t, "GET", admin.URL+"/admin/queue")
	crm := v["targets"].(map[string]any)["crm"].(map[string]any)
	if code != 200 || crm["depth"] != 0.0 || crm["dead"] != 0.0 || crm["breaker"] != BreakerClosed || crm["oldest_age"] != "0s" {
		t.Fatalf("GET /admin/queue: %d %v", code, v)
	}
}

func TestAdminErrors(t *testing.T) {
	s := startSink(t, sink.Options{})
	r := start(t, "", targetFor("crm", s))
	mux := http.NewServeMux()
	r.d.Register(mux)
	admin := httptest.NewServer(mux)
	defer admin.Close()
	tests := []struct {
		name, method, path string
		status             int
		code               string
	}{
		{"bad limit", "GET", "/admin/dead?limit=abc", 400, "bad_limit"},
		{"limit too big", "GET", "/admin/dead?limit=100000", 400, "bad_limit"},
		{"bad cursor", "GET", "/admin/dead?cursor=zz", 400, "bad_cursor"},
		{"replay all needs a filter", "POST", "/admin/dead/replay", 400, "no_filter"},
		{"replay all bad limit", "POST", "/admin/dead/replay?all=true&limit=0", 400, "bad_limit"},
		{"unknown id", "POST", "/admin/dead/nope/replay", 404, "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, v := call(t, tt.method, admin.URL+tt.path)
			e, _ := v["error"].(map[string]any)
			if code != tt.status || e["code"] != tt.code || e["message"] == "" {
				t.Fatalf("%s %s: %d %v, want %d %s", tt.method, tt.path, code, v, tt.status, tt.code)
			}
		})
	}
	code, v := call(t, "GET", admin.URL+"/admin/dead")
	if code != 200 || len(v["dead"].([]any)) != 0 {
		t.Fatalf("empty dead list: %d %v", code, v)
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
