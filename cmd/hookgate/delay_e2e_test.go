package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookgate/hookgate/internal/sink"
	"github.com/hookgate/hookgate/plugins/plugintest"
)

// TestPluginDelayNeedsAnAsyncRoute runs the stock threshold plugin, which
// delays what it lets through (set_delay), on a sync and an async route of
// the real gateway: the sync route's sender gets 502 plugin_failed saying
// why, and nothing is sent; the async route queues the delivery for later
// and sends nothing now. Both the event-wide delay (no target: the default
// deliveries take it) and an emitted delivery's own delay are checked.
func TestPluginDelayNeedsAnAsyncRoute(t *testing.T) {
	threshold := plugintest.Build(t, "plugins/threshold")
	crm := startSink(t, sink.Options{})
	o := startOps(t, strings.ReplaceAll(fmt.Sprintf(`
[server]
listen = "LISTEN"

[admin]
listen = "ADMIN"

[queue]
path = "queue"
sync = "batch"

[transforms]
cache_dir = "CACHE"

[[target]]
name = "crm"
url = "%[1]s/crm"

[[plugin]]
name = "threshold"
wasm = "%[2]s"

[[route]]
name = "sync-event"
path = "/hooks/sync-event"
mode = "sync"
targets = ["crm"]
transforms = [{ plugin = "threshold", config = { name = "a", key = "user", count = 1, window = "1h", delay = "10m" } }]

[[route]]
name = "sync-emit"
path = "/hooks/sync-emit"
mode = "sync"
targets = ["crm"]
transforms = [{ plugin = "threshold", config = { name = "b", key = "user", count = 1, window = "1h", delay = "10m", target = "crm" } }]

[[route]]
name = "async-event"
path = "/hooks/async-event"
mode = "async"
targets = ["crm"]
transforms = [{ plugin = "threshold", config = { name = "c", key = "user", count = 1, window = "1h", delay = "10m" } }]
`, crm.URL(), threshold), "CACHE", sharedCacheDir()))

	send := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Post(o.base+path, "application/json", strings.NewReader(`{"user":"u1"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, route := range []string{"sync-event", "sync-emit"} {
		status, body := send("/hooks/" + route)
		want := `{"error":{"code":"plugin_failed","message":"a plugin on route \"` + route + `\" asked to delay delivery, which a sync route cannot do: the sender waits for the answer; the operator must make the route async or remove the delay from the plugin"}}`
		if status != 502 || body != want {
			t.Errorf("%s: %d %s; want 502 %s", route, status, body, want)
		}
	}
	if status, body := send("/hooks/async-event"); status != 202 || !strings.Contains(body, `"event_id"`) {
		t.Fatalf("async-event: %d %s; want 202 with the event id", status, body)
	}
	// Queued for ten minutes from now: one delivery waits, none is sent.
	var qa struct {
		Targets map[string]struct {
			Depth int `json:"depth"`
		} `json:"targets"`
	}
	if st := o.call("GET", "/admin/queue", "", &qa); st != 200 || qa.Targets["crm"].Depth != 1 {
		t.Errorf("queue: %d %+v; want one delivery waiting for crm", st, qa)
	}
	time.Sleep(300 * time.Millisecond)
	if n := crm.Count(); n != 0 {
		t.Errorf("the target got %d requests; want none (sync refused, async delayed)", n)
	}
}
