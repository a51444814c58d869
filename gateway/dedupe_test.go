package gateway

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/gateway/config"
	"github.com/hookgate/hookgate/internal/sink"
)

func TestDedupeAsync(t *testing.T) {
	howxm, err := os.ReadFile("../testdata/howxm_entry_submitted.json")
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{
		Server:  testServer(),
		Targets: []config.Target{targetAt(t, "crm", unusedURL)},
		Routes: []config.Route{
			{Name: "byheader", Method: "POST", Path: "/h", Mode: config.ModeAsync, Targets: []string{"crm"},
				Dedupe: &config.Dedupe{Header: "Idempotency-Key"}},
			{Name: "howxm", Method: "POST", Path: "/howxm", Mode: config.ModeAsync, Targets: []string{"crm"}, JSON: true,
				Dedupe: &config.Dedupe{JSON: []string{"entry.serial_number"}}},
		},
	}
	q := &memQueue{}
	deps := newDeps(t, cfg)
	deps.Queue = q
	g, base := startGateway(t, cfg, deps)

	// A first copy is answered {"event_id"}, a repeat the same plus
	// "duplicate":true (TestRepeatAnswer).
	accepted := func(a answer) string {
		t.Helper()
		id := a.header.Get("Hookgate-Event-Id")
		if a.status != 202 || a.body != `{"event_id":"`+id+`"}` && a.body != `{"event_id":"`+id+`","duplicate":true}` {
			t.Fatalf("answer %d %s (event id %s), want 202 with the event id", a.status, a.body, id)
		}
		return id
	}
	first := accepted(post(t, base+"/h", `{"n":1}`, map[string]string{"Idempotency-Key": "k1"}))
	again := accepted(post(t, base+"/h", `{"n":1}`, map[string]string{"Idempotency-Key": "k1"}))
	if again != first {
		t.Errorf("the repeat was answered with event id %s, want the first's %s", again, first)
	}
	other := accepted(post(t, base+"/h", `{"n":1}`, map[string]string{"Idempotency-Key": "k2"}))
	noKey := accepted(post(t, base+"/h", `{"n":1}`, nil))
	if other == first || noKey == first {
		t.Error("a different key, or none, was taken for a duplicate")
	}
	if len(q.ds) != 3 {
		t.Errorf("queued %d deliveries, want 3 (the repeat is not delivered)", len(q.ds))
	}

	// Seed 000: Howxm's entry.serial_number, whatever else changes.
	h1 := accepted(post(t, base+"/howxm", string(howxm), nil))
	h2 := accepted(post(t, base+"/howxm", strings.Replace(string(howxm), "{", `{"resent":true,`, 1), nil))
	if h1 != h2 {
		t.Errorf("the same serial number got event ids %s and %s", h1, h2)
	}
	if len(q.ds) != 4 {
		t.Errorf("queued %d deliveries, want 4", len(q.ds))
	}

	// A queue failure forgets the key: the sender's retry is a first copy.
	q.err = ErrQueueFull
	if a := post(t, base+"/h", `{}`, map[string]string{"Idempotency-Key": "k3"}); a.status != 503 {
		t.Fatalf("full queue: %d", a.status)
	}
	q.err = nil
	retry := accepted(post(t, base+"/h", `{}`, map[string]string{"Idempotency-Key": "k3"}))
	if len(q.ds) != 5 {
		t.Errorf("the retry after a failure was not queued (%d deliveries, event %s)", len(q.ds), retry)
	}

	var counts RouteCounts
	for _, c := range g.Counts() {
		if c.Route == "byheader" {
			counts = c
		}
	}
	if counts.Duplicates != 1 || counts.Refused["queue_full"] != 1 {
		t.Errorf("counts = %+v, want 1 duplicate and 1 queue_full", counts)
	}
}

func TestDedupeSync(t *testing.T) {
	ok := startSink(t, sink.Options{Status: 201, Body: `{"ticket":1}`, Delay: 300 * time.Millisecond})
	failing := startSink(t, sink.Options{Status: 500})
	cfg := &config.Config{
		Server:  testServer(),
		Targets: []config.Target{targetAt(t, "ok", ok.URL()), targetAt(t, "failing", failing.URL())},
		Routes: []config.Route{
			{Name: "s", Method: "POST", Path: "/s", Mode: config.ModeSync, Targets: []string{"ok"},
				Dedupe: &config.Dedupe{Header: "Idempotency-Key"}},
			{Name: "f", Method: "POST", Path: "/f", Mode: config.ModeSync, Targets: []string{"failing"},
				Dedupe: &config.Dedupe{Header: "Idempotency-Key"}},
		},
	}
	_, base := startGateway(t, cfg, newDeps(t, cfg))
	key := map[string]string{"Idempotency-Key": "k1"}

	// A copy that arrives while the first is still with the target.
	done := make(chan answer, 1)
	go func() { done <- post(t, base+"/s", `{}`, key) }()
	waitFor(t, "the first copy to reach the target", func() bool { return ok.Count() == 1 })
	a := post(t, base+"/s", `{}`, key)
	if a.status != 409 || a.errCode != "in_progress" || a.header.Get("Retry-After") != "1" {
		t.Errorf("copy in flight: %d %s Retry-After=%q, want 409 in_progress with Retry-After 1", a.status, a.body, a.header.Get("Retry-After"))
	}
	firstAnswer := <-done
	if firstAnswer.status != 201 {
		t.Fatalf("first copy: %d %s", firstAnswer.status, firstAnswer.body)
	}
	id := firstAnswer.header.Get("Hookgate-Event-Id")
	a = post(t, base+"/s", `{}`, key)
	if a.status != 200 || a.body != `{"event_id":"`+id+`","duplicate":true}` || a.header.Get("Hookgate-Event-Id") != id {
		t.Errorf("repeat: %d %s (%s), want 200 with the first event id %s and duplicate true", a.status, a.body, a.header.Get("Hookgate-Event-Id"), id)
	}
	if n := ok.Count(); n != 1 {
		t.Errorf("the target got %d copies, want 1", n)
	}

	// A target failure is not an acceptance: the retry goes through.
	for i := range 2 {
		if a := post(t, base+"/f", `{}`, key); a.status != 500 {
			t.Errorf("attempt %d: %d %s, want the target's 500 each time", i, a.status, a.body)
		}
	}
	if n := failing.Count(); n != 2 {
		t.Errorf("the failing target got %d attempts, want 2", n)
	}
}

// TestStandardWebhooksReplay: a signed message sent again inside the
// tolerance window is a duplicate through the default dedupe on
// webhook-id that config gives standard-webhooks routes.
func TestStandardWebhooksReplay(t *testing.T) {
	src := `
[server]
listen = "127.0.0.1:0"
[admin]
listen = ""
[[target]]
name = "crm"
url = "` + unusedURL + `"
[[route]]
name = "swh"
path = "/swh"
targets = ["crm"]
verify = { type = "standard-webhooks", secrets = ["whsec_` + whsecKey + `"] }
`
	cfg, err := config.Parse([]byte(src), t.TempDir()+"/config.toml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	q := &memQueue{}
	deps := newDeps(t, cfg)
	deps.Queue = q
	_, base := startGateway(t, cfg, deps)
	now := time.Now().Unix()
	const body = `{"type":"invoice.paid"}`
	h := map[string]string{"webhook-id": "msg_replayed", "webhook-timestamp": strconv.FormatInt(now, 10), "webhook-signature": standardSig("msg_replayed", now, body)}
	a1 := post(t, base+"/swh", body, h)
	a2 := post(t, base+"/swh", body, h)
	id := a1.header.Get("Hookgate-Event-Id")
	if a1.status != 202 || a2.status != 202 || a2.body != `{"event_id":"`+id+`","duplicate":true}` {
		t.Errorf("answers %d %s and %d %s, want 202 and the repeat of %s", a1.status, a1.body, a2.status, a2.body, id)
	}
	if len(q.ds) != 1 {
		t.Errorf("queued %d deliveries, want 1", len(q.ds))
	}
}

// TestReloadKeepsDedupe: a reload with the same dedupe spec keeps what the
// route has seen; a changed spec starts afresh.
func TestReloadKeepsDedupe(t *testing.T) {
	mk := func(ttl time.Duration) *config.Config {
		return &config.Config{
			Server:  testServer(),
			Targets: []config.Target{targetAt(t, "crm", unusedURL)},
			Routes: []config.Route{{Name: "h", Method: "POST", Path: "/h", Mode: config.ModeAsync, Targets: []string{"crm"},
				Dedupe: &config.Dedupe{Header: "Idempotency-Key", TTL: ttl}}},
		}
	}
	q := &memQueue{}
	deps := func(cfg *config.Config) Deps {
		d := newDeps(t, cfg)
		d.Queue = q
		return d
	}
	cfg := mk(time.Hour)
	g, base := startGateway(t, cfg, deps(cfg))
	key := map[string]string{"Idempotency-Key": "k1"}
	first := post(t, base+"/h", `{}`, key).header.Get("Hookgate-Event-Id")

	same := mk(time.Hour)
	if err := g.Reload(same, deps(same)); err != nil {
		t.Fatal(err)
	}
	if got := post(t, base+"/h", `{}`, key).header.Get("Hookgate-Event-Id"); got != first {
		t.Errorf("after a reload with the same spec: event %s, want the duplicate of %s", got, first)
	}
	changed := mk(2 * time.Hour)
	if err := g.Reload(changed, deps(changed)); err != nil {
		t.Fatal(err)
	}
	if got := post(t, base+"/h", `{}`, key).header.Get("Hookgate-Event-Id"); got == first {
		t.Error("after a reload with a changed spec the key was still remembered")
	}
	if len(q.ds) != 2 {
		t.Errorf("queued %d, want 2", len(q.ds))
	}
	for _, c := range g.Counts() {
		if c.Route == "h" && c.Duplicates != 1 {
			t.Errorf("duplicates = %d across reloads, want 1", c.Duplicates)
		}
	}
}
