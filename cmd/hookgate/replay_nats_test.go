package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/gateway/queue"
	"github.com/hookgate/hookgate/gateway/queue/natsq"
	"github.com/hookgate/hookgate/internal/natstest"
)

// TestReplayNATS: hookgate replay on the nats backend goes to the shared
// stream straight (no gateway holds it, so no admin API is needed), by
// id, by target and all, and the replayed deliveries are pending again
// for the gateways on the stream.
func TestReplayNATS(t *testing.T) {
	ns := natstest.Start(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.toml")
	text := `
[server]
listen = "127.0.0.1:1"

[queue]
backend = "nats"
[queue.nats]
urls = ["` + ns.URL() + `"]
stream = "replaytest"

[[target]]
name = "crm"
url = "http://127.0.0.1:1/crm"

[[target]]
name = "sms"
url = "http://127.0.0.1:1/sms"

[[route]]
name = "howxm"
path = "/hooks/howxm"
targets = ["crm", "sms"]
`
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	open := func() *natsq.Engine {
		c, err := config.Load(cfg)
		if err != nil {
			t.Fatal(err)
		}
		e, err := natsq.Open(c.Queue.NATS, natsq.Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	e := open()
	for i, id := range []string{"crm-1", "crm-2", "sms-3", "sms-4"} {
		target := id[:3]
		d := delivery.Delivery{ID: []byte(id + ".0"), EventID: []byte(id), Target: target, Route: "howxm",
			Method: []byte("POST"), Body: []byte(`{"n":` + string(rune('0'+i)) + `}`)}
		if err := e.Enqueue([]delivery.Delivery{d}); err != nil {
			t.Fatal(err)
		}
		// A pull consumer may not offer a message the instant the stream
		// stored it (the consumer learns of it asynchronously), so claim
		// until it comes, as the dispatcher's polls do.
		var leased []queue.Leased
		var err error
		for deadline := time.Now().Add(10 * time.Second); len(leased) == 0 && err == nil && time.Now().Before(deadline); {
			if leased, err = e.Claim(nil, target, time.Now(), 1, time.Minute); len(leased) == 0 && err == nil {
				time.Sleep(20 * time.Millisecond)
			}
		}
		if err != nil || len(leased) != 1 {
			t.Fatalf("claim %s: %d: %v", id, len(leased), err)
		}
		if err := e.Dead(leased[0].Ref, delivery.Attempt{At: time.Now(), Status: 400, Error: "status 400"}); err != nil {
			t.Fatal(err)
		}
	}
	e.Close()
	counts := func() map[string][2]int { // target: dead, pending
		e := open()
		defer e.Close()
		out := map[string][2]int{}
		for _, target := range []string{"crm", "sms"} {
			dead, err := e.DeadCount(queue.Filter{Target: target})
			if err != nil {
				t.Fatal(err)
			}
			out[target] = [2]int{dead, e.Stats()[target].Depth}
		}
		return out
	}

	for _, st := range []struct {
		name   string
		args   []string
		stdout string
		want   map[string][2]int
	}{
		{"by id", []string{"--id", "crm-2.0"}, "replayed dead letter crm-2.0; the gateways on the stream send it\n",
			map[string][2]int{"crm": {1, 1}, "sms": {2, 0}}},
		{"by target", []string{"--target", "sms"}, "replayed 2 dead letters for target \"sms\"; the gateways on the stream send them\n",
			map[string][2]int{"crm": {1, 1}, "sms": {0, 2}}},
		{"all", []string{"--all"}, "replayed 1 dead letters for every target and route; the gateways on the stream send them\n",
			map[string][2]int{"crm": {0, 2}, "sms": {0, 2}}},
	} {
		t.Run(st.name, func(t *testing.T) {
			code, out, errOut := runArgs(append([]string{"replay", "--config", cfg}, st.args...)...)
			if code != 0 || out != st.stdout {
				t.Fatalf("exit %d stdout %q stderr %q; want 0 and %q", code, out, errOut, st.stdout)
			}
			if strings.Contains(errOut, "admin") {
				t.Errorf("replay on nats went to an admin API: %s", errOut)
			}
			if got := counts(); !equalCounts(got, st.want) {
				t.Errorf("dead, pending = %v, want %v", got, st.want)
			}
		})
	}

	// NATS gone: the error names the server and what to check.
	ns.Shutdown()
	code, _, errOut := runArgs("replay", "--config", cfg, "--all")
	if code != 1 || !strings.Contains(errOut, "cannot reach "+ns.URL()) || !strings.Contains(errOut, "[queue.nats] urls") {
		t.Errorf("NATS down: exit %d stderr %q", code, errOut)
	}
}

func equalCounts(a, b map[string][2]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestReplayNATSIsNoGateway: while hookgate replay has the stream open it
// is not counted among the gateways (which divide rate limits by their
// number).
func TestReplayNATSIsNoGateway(t *testing.T) {
	ns := natstest.Start(t)
	cfg := config.NATS{URLs: []string{ns.URL()}, Stream: "visitors", Replicas: 1}
	gw, err := natsq.Open(cfg, natsq.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	tool, err := natsq.Open(cfg, natsq.Options{Logger: slog.New(slog.DiscardHandler), Visitor: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tool.Close()
	// Heartbeats come every 2 s; give a counted visitor time to show.
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if n := gw.Gateways(); n != 1 {
			t.Fatalf("the gateway counts %d gateways with a replay tool open, want 1", n)
		}
	}
	if n := tool.Gateways(); n != 1 {
		t.Errorf("the tool reports %d gateways, want 1", n)
	}
}
