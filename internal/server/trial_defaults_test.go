package server

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/delivery"
	"github.com/hookgate/hookgate/gateway/config"
)

// chainFunc is a gateway.Chain that runs f: what a plugin does to the
// event and the outcome, without a WASM host.
type chainFunc func(ev *delivery.Event, out *delivery.Outcome)

func (f chainFunc) Run(_ context.Context, ev *delivery.Event, out *delivery.Outcome) error {
	f(ev, out)
	return nil
}

// TestTryDefaultDeliveries: try makes the default deliveries by ingest's
// rule: the query a plugin set shows in the URL, the forwarded headers
// stay with an event-wide delay, the sender's credentials do not.
func TestTryDefaultDeliveries(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.toml")
	text := strings.NewReplacer("LISTEN", "127.0.0.1:1", "ADMIN", "127.0.0.1:2").Replace(asyncConfig("http://127.0.0.1:9"))
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	rc := cfg.Route("queued")
	headers := []delivery.KV{
		{Key: []byte("Content-Type"), Value: []byte("application/json")},
		{Key: []byte("X-Trace"), Value: []byte("7")},
		{Key: []byte("Cookie"), Value: []byte("session=s")},
	}
	chain := chainFunc(func(ev *delivery.Event, out *delivery.Outcome) {
		ev.Query = append(ev.Query[:0], "email=a+b%40c&z=1"...)
		out.NotBefore = ev.ReceivedAt + int64(time.Hour)
	})
	res, err := tryRoute(context.Background(), cfg, rc, chain, headers, []byte("k=v"), []byte(`{"n":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Deliveries) != 1 {
		t.Fatalf("deliveries %+v; want one to crm", res.Deliveries)
	}
	d := res.Deliveries[0]
	if !strings.Contains(d.URL, "email=a+b%40c") || !strings.Contains(d.URL, "z=1") || strings.Contains(d.URL, "k=v") {
		t.Errorf("url %s; want the query the plugin set", d.URL)
	}
	if d.Headers["X-Trace"] != "7" || d.Headers["Content-Type"] != "application/json" || d.Headers["Cookie"] != "" {
		t.Errorf("headers %v; want the forwarded ones (not Cookie)", d.Headers)
	}
	if d.Delay != "1h0m0s" {
		t.Errorf("delay %s; want the event's hour", d.Delay)
	}
}
